import Foundation
import KaifangCore

/// What a department owes on its duty list (责任清单): to open a dataset (publish it `open` or
/// `conditional`) or to share it (publish it at any tier, `restricted` included: partners then
/// compute over it in the sandbox).
public enum DutyKind: String, Sendable, CaseIterable, Codable {
    case open, share

    /// The tiers that fulfil it.
    public var tiers: [Tier] { self == .open ? [.open, .conditional] : [.open, .conditional, .restricted] }
}

/// One entry of a department's duty list, with when (if ever) the dataset was first published at
/// a tier that fulfils it. Entries are withdrawn, never deleted.
public struct DutyRecord: Sendable, Equatable {
    public var id: Int64
    public var department: String
    /// The dataset that answers it (it may not be in the catalog yet).
    public var dataset: String
    public var kind: DutyKind
    /// What the data is, as the list names it.
    public var title: String
    /// `YYYY-MM-DD`: fulfilled on or before the end of that day (UTC) is on time.
    public var due: String
    public var createdAt: String
    public var createdBy: String
    public var withdrawnAt: String?
    public var withdrawnReason: String?
    /// The first publication at a tier of `kind.tiers`, from the catalog's history.
    public var fulfilledAt: String?

    package init(id: Int64, department: String, dataset: String, kind: DutyKind, title: String, due: String, createdAt: String, createdBy: String,
                 withdrawnAt: String?, withdrawnReason: String?, fulfilledAt: String?) {
        self.id = id; self.department = department; self.dataset = dataset; self.kind = kind; self.title = title; self.due = due
        self.createdAt = createdAt; self.createdBy = createdBy; self.withdrawnAt = withdrawnAt; self.withdrawnReason = withdrawnReason
        self.fulfilledAt = fulfilledAt
    }

    /// Where it stood at the end of `today` (`YYYY-MM-DD`): what happened after that day does
    /// not count.
    public func state(today: String) -> DutyState {
        if let w = withdrawnAt, String(w.prefix(10)) <= today { return .withdrawn }
        if let f = fulfilledAt, String(f.prefix(10)) <= today { return String(f.prefix(10)) <= due ? .done : .doneLate }
        return today > due ? .late : .due
    }
}

public enum DutyState: String, Sendable, CaseIterable {
    /// Not yet fulfilled, and not past its date.
    case due
    /// Past its date and not fulfilled.
    case late
    case done
    /// Fulfilled after its date.
    case doneLate = "done_late"
    case withdrawn
}

extension CatalogRules {
    /// Checks a new duty's fields.
    /// - Throws: `KaifangError.badInput` naming the field and what it takes.
    package static func checkDuty(dataset: String, title: String, due: String) throws -> String {
        guard DatasetManifest.isValidID(dataset) else {
            throw KaifangError.badInput("--dataset '\(dataset)' is not a dataset id: 1–64 lower-case letters, digits, '-' or '_'")
        }
        let t = title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty, t.count <= 200 else { throw KaifangError.badInput("--title must be 1–200 characters: what data the department owes") }
        try calendarDay(due, what: "--due")
        return t
    }

    /// Checks that `day` is a real calendar day written `YYYY-MM-DD`.
    /// - Throws: `KaifangError.badInput` naming `what`.
    package static func calendarDay(_ day: String, what: String) throws {
        let parts = day.split(separator: "-")
        var c = DateComponents()
        c.year = parts.count == 3 ? Int(parts[0]) : nil
        c.month = parts.count == 3 ? Int(parts[1]) : nil
        c.day = parts.count == 3 ? Int(parts[2]) : nil
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        guard day.count == 10, c.isValidDate(in: cal) else {
            throw KaifangError.badInput("\(what) '\(day)' is not a calendar day: write YYYY-MM-DD, e.g. 2027-03-31")
        }
    }

    /// The SQL of a duty row with its fulfilment: the first publication of its dataset at a tier
    /// of its kind (`dataset_events`). The same text runs on both stores.
    package static let dutySelect = """
        SELECT d.*, (SELECT min(e.at) FROM dataset_events e WHERE e.dataset_id = d.dataset_id AND e.kind = 'published'
                     AND (e.tier IN ('open', 'conditional') OR (d.kind = 'share' AND e.tier = 'restricted'))) AS fulfilled_at
        FROM duties d
        """
}
