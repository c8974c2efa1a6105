import Audit
import Foundation
import KaifangCore

public enum ShowcaseStatus: String, Sendable, CaseIterable, Codable {
    case pending, approved, refused, withdrawn
}

/// An application or research result built on the platform's data (应用场景), as registered:
/// the datasets it uses and the licenses it holds on them.
public struct NewShowcase: Sendable, Equatable {
    public var title: String
    public var description: String
    public var url: String?
    public var datasets: [String]
    public var licenses: [String]
    public var filerKey: String

    public init(title: String, description: String, url: String?, datasets: [String], licenses: [String], filerKey: String) {
        self.title = title; self.description = description; self.url = url; self.datasets = datasets; self.licenses = licenses; self.filerKey = filerKey
    }
}

/// A registered showcase; shown publicly once a steward approves it, and counted toward the
/// scenario KPI of each department whose dataset it uses.
public struct ShowcaseRecord: Sendable, Equatable {
    public var id: Int64
    public var title: String
    public var description: String
    public var url: String?
    public var datasets: [String]
    public var licenses: [String]
    public var status: ShowcaseStatus
    public var filedBy: String
    public var filedAt: String
    public var decidedBy: String?
    public var decidedAt: String?
    public var reason: String?

    package init(id: Int64, title: String, description: String, url: String?, datasets: [String], licenses: [String], status: ShowcaseStatus,
                 filedBy: String, filedAt: String, decidedBy: String?, decidedAt: String?, reason: String?) {
        self.id = id; self.title = title; self.description = description; self.url = url; self.datasets = datasets; self.licenses = licenses
        self.status = status; self.filedBy = filedBy; self.filedAt = filedAt; self.decidedBy = decidedBy; self.decidedAt = decidedAt; self.reason = reason
    }
}

/// A steward's decision on a pending showcase, or its filer's withdrawal.
public enum ShowcaseDecision: Sendable, Equatable {
    case approve
    case refuse(reason: String)
    case withdraw
}

extension CatalogRules {
    public static let showcaseDatasetsLimit = 20

    /// Checks a showcase's texts, address and lists (the store checks that each dataset is
    /// published and each license is the filer's, on one of them), returning it trimmed.
    /// - Throws: `KaifangError.badInput` naming the field.
    package static func checkShowcase(_ s: NewShowcase) throws -> NewShowcase {
        var c = s
        c.title = try requestText(s.title, what: "title", limit: requestTitleLimit)
        c.description = try requestText(s.description, what: "description")
        if let u = s.url?.trimmingCharacters(in: .whitespaces), !u.isEmpty {
            guard u.count <= 500, let url = URL(string: u), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false else {
                throw KaifangError.badInput("url '\(u.prefix(80))' is not an http(s) address: give where the application or result is, e.g. https://example.org/app")
            }
            c.url = u
        } else {
            c.url = nil
        }
        var seen = Set<String>()
        c.datasets = s.datasets.map { $0.trimmingCharacters(in: .whitespaces) }.filter { seen.insert($0).inserted }
        guard !c.datasets.isEmpty, c.datasets.count <= showcaseDatasetsLimit else {
            throw KaifangError.badInput("datasets lists \(c.datasets.count): name the 1–\(showcaseDatasetsLimit) datasets it uses")
        }
        for d in c.datasets where !DatasetManifest.isValidID(d) {
            throw KaifangError.badInput("datasets: '\(d.prefix(64))' is not a dataset id")
        }
        seen = []
        c.licenses = s.licenses.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && seen.insert($0).inserted }
        guard c.licenses.count <= showcaseDatasetsLimit else { throw KaifangError.badInput("licenses lists \(c.licenses.count): at most \(showcaseDatasetsLimit)") }
        return c
    }

    /// Checks that each license is the filer's and on one of the showcase's datasets.
    /// - Throws: `KaifangError.badInput` naming the license.
    package static func checkShowcaseLicenses(_ s: NewShowcase, _ license: (String) throws -> LicenseRecord?) throws {
        for id in s.licenses {
            guard let l = try license(id), l.keyID == s.filerKey else {
                throw KaifangError.badInput("license '\(id.prefix(64))' is not one of your key's: GET /v1/licenses lists them")
            }
            guard s.datasets.contains(l.dataset) else {
                throw KaifangError.badInput("license '\(id)' is on '\(l.dataset)', which datasets does not list: add it, or leave the license out")
            }
        }
    }

    /// The showcase after `decision`, checking it may come now and from whom.
    /// - Throws: `KaifangError.forbidden` (a withdrawal not by the filer), `.conflict` (decided).
    package static func decided(_ s: ShowcaseRecord, _ decision: ShowcaseDecision, keyID: String, actor: String, now: String) throws -> ShowcaseRecord {
        if case .withdraw = decision, s.filedBy != keyID {
            throw KaifangError.forbidden("only the key that registered showcase \(s.id) withdraws it")
        }
        guard s.status == .pending else { throw KaifangError.conflict("showcase \(s.id) is \(s.status.rawValue) already") }
        var n = s
        n.decidedAt = now
        n.decidedBy = actor
        switch decision {
        case .approve: n.status = .approved
        case .refuse(let reason): n.status = .refused; n.reason = try requestText(reason, what: "reason")
        case .withdraw: n.status = .withdrawn
        }
        return n
    }

    package static func unknownShowcase(_ id: Int64) -> KaifangError {
        KaifangError.notFound("no showcase \(id): `GET /v1/showcases` (or `kaifang showcase list`) shows them")
    }
}

/// Showcases approved and pending, for the platform (`department` "") and each department whose
/// datasets they use.
public struct ShowcaseFigures: Sendable, Equatable {
    public var department: String
    public var approved = 0
    public var pending = 0

    public init(department: String) { self.department = department }

    public static func of(_ showcases: [ShowcaseRecord], departmentOf: (String) -> String?) -> [ShowcaseFigures] {
        var all = ShowcaseFigures(department: "")
        var by: [String: ShowcaseFigures] = [:]
        for s in showcases where s.status == .approved || s.status == .pending {
            let approved = s.status == .approved
            if approved { all.approved += 1 } else { all.pending += 1 }
            for d in Set(s.datasets.compactMap(departmentOf)) {
                var f = by[d] ?? ShowcaseFigures(department: d)
                if approved { f.approved += 1 } else { f.pending += 1 }
                by[d] = f
            }
        }
        return [all] + by.keys.sorted().map { by[$0]! }
    }
}
