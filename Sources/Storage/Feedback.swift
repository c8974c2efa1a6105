import Audit
import Foundation
import KaifangCore

/// How an error report (纠错) is closed.
public enum ReportResolution: String, Sendable, CaseIterable, Codable {
    /// Corrected in a later version (named).
    case fixed
    case notAnError = "not_an_error"
    case wontFix = "wont_fix"
}

public enum ReportStatus: String, Sendable, CaseIterable, Codable {
    case open, closed, withdrawn
}

/// An error report as filed: on a dataset, optionally one of its fields, and optionally a row of
/// a version (its primary key's value, or `#N` for the N-th row).
public struct NewErrorReport: Sendable, Equatable {
    public var dataset: String
    public var field: String?
    public var version: Int?
    public var row: String?
    public var text: String
    /// The day by which the department answers (`YYYY-MM-DD`).
    public var due: String
    public var filerKey: String

    public init(dataset: String, field: String?, version: Int?, row: String?, text: String, due: String, filerKey: String) {
        self.dataset = dataset; self.field = field; self.version = version; self.row = row; self.text = text; self.due = due; self.filerKey = filerKey
    }
}

/// An error report and, once closed, its resolution.
public struct ErrorReportRecord: Sendable, Equatable {
    public var id: Int64
    public var dataset: String
    /// The dataset's department when the report was filed: the one that answers.
    public var department: String
    public var field: String?
    public var version: Int?
    public var row: String?
    public var text: String
    public var status: ReportStatus
    public var filedBy: String
    public var filedAt: String
    public var due: String
    public var resolution: ReportResolution?
    /// For `fixed`: the version that corrects it.
    public var fixedVersion: Int?
    public var answer: String?
    public var closedAt: String?
    public var closedBy: String?

    package init(id: Int64, dataset: String, department: String, field: String?, version: Int?, row: String?, text: String, status: ReportStatus,
                 filedBy: String, filedAt: String, due: String, resolution: ReportResolution?, fixedVersion: Int?, answer: String?,
                 closedAt: String?, closedBy: String?) {
        self.id = id; self.dataset = dataset; self.department = department; self.field = field; self.version = version; self.row = row
        self.text = text; self.status = status; self.filedBy = filedBy; self.filedAt = filedAt; self.due = due; self.resolution = resolution
        self.fixedVersion = fixedVersion; self.answer = answer; self.closedAt = closedAt; self.closedBy = closedBy
    }

    /// Still open after the end of its due day, as of `today`.
    public func isOverdue(today: String) -> Bool { status == .open && today > due }
    /// Whether it was closed by the end of its due day (nil while open or withdrawn).
    public var closedOnTime: Bool? { status == .closed ? closedAt.map { String($0.prefix(10)) <= due } : nil }
}

/// What closes a report: a resolution with an answer (by the department), or a withdrawal (by its filer).
public enum ReportClosing: Sendable, Equatable {
    case resolve(ReportResolution, answer: String, fixedVersion: Int?)
    case withdraw
}

/// One key's rating of a dataset (好差评): 1–5 stars and a comment; the key changes it, never
/// removes it.
public struct RatingRecord: Sendable, Equatable {
    public var dataset: String
    public var keyID: String
    public var stars: Int
    public var comment: String?
    public var createdAt: String
    public var updatedAt: String

    package init(dataset: String, keyID: String, stars: Int, comment: String?, createdAt: String, updatedAt: String) {
        self.dataset = dataset; self.keyID = keyID; self.stars = stars; self.comment = comment; self.createdAt = createdAt; self.updatedAt = updatedAt
    }
}

extension CatalogRules {
    public static let ratingCommentLimit = 500
    public static let reportRowLimit = 200

    /// Checks a new report against its dataset's manifest and versions, returning it trimmed.
    /// - Throws: `KaifangError.badInput` naming the field (an unknown field lists the dataset's),
    ///   `.notFound` for a version not there.
    package static func checkReport(_ r: NewErrorReport, manifest: DatasetManifest, versionExists: (Int) throws -> Bool) throws -> NewErrorReport {
        var c = r
        c.text = try requestText(r.text, what: "text")
        if let f = r.field?.trimmingCharacters(in: .whitespaces), !f.isEmpty {
            guard let spec = manifest.fields.first(where: { $0.name == f || $0.title == f }) else {
                throw KaifangError.badInput("field '\(f)' is not a field of '\(r.dataset)': its fields are \(manifest.fields.map(\.name).joined(separator: ", "))")
            }
            c.field = spec.name
        } else {
            c.field = nil
        }
        if let v = r.version {
            guard try versionExists(v) else { throw noVersion(r.dataset, v) }
        }
        if let row = r.row?.trimmingCharacters(in: .whitespaces), !row.isEmpty {
            guard r.version != nil else { throw KaifangError.badInput("row names a row of a version: give version too") }
            c.row = try requestText(row, what: "row", limit: reportRowLimit)
        } else {
            c.row = nil
        }
        try calendarDay(r.due, what: "due")
        return c
    }

    /// A report after `closing`, checking who may close it and how.
    /// - Throws: `KaifangError.forbidden` (a withdrawal not by the filer), `.conflict` (closed
    ///   already), `.badInput` (an answer missing, a fix naming no later version).
    package static func closed(_ r: ErrorReportRecord, _ closing: ReportClosing, keyID: String, actor: String, now: String,
                               latestVersion: Int?) throws -> ErrorReportRecord {
        if case .withdraw = closing, r.filedBy != keyID {
            throw KaifangError.forbidden("only the key that filed report \(r.id) withdraws it")
        }
        guard r.status == .open else { throw KaifangError.conflict("report \(r.id) is \(r.status.rawValue) already") }
        var n = r
        n.closedAt = now
        n.closedBy = actor
        switch closing {
        case .withdraw:
            n.status = .withdrawn
        case .resolve(let resolution, let answer, let fixed):
            n.status = .closed
            n.resolution = resolution
            n.answer = try requestText(answer, what: "text (the answer)")
            if resolution == .fixed {
                guard let fixed else { throw KaifangError.badInput("a fix names the version that corrects it: give version") }
                guard let latest = latestVersion, fixed <= latest else { throw noVersion(r.dataset, fixed) }
                if let v = r.version, fixed <= v {
                    throw KaifangError.badInput("version \(fixed) does not come after the reported version \(v): name the version that corrects it")
                }
                n.fixedVersion = fixed
            }
        }
        return n
    }

    /// Checks a rating.
    /// - Throws: `KaifangError.badInput` for stars outside 1–5 or a comment over the limit.
    package static func checkRating(stars: Int, comment: String?) throws -> String? {
        guard (1...5).contains(stars) else { throw KaifangError.badInput("stars is \(stars): give 1 (poor) to 5 (excellent)") }
        guard let c = comment?.trimmingCharacters(in: .whitespacesAndNewlines), !c.isEmpty else { return nil }
        guard c.count <= ratingCommentLimit else { throw KaifangError.badInput("comment has \(c.count) characters: at most \(ratingCommentLimit) are taken") }
        return c
    }

    package static func unknownReport(_ id: Int64) -> KaifangError {
        KaifangError.notFound("no error report \(id): `GET /v1/datasets/{id}/reports` (or `kaifang report list`) shows them")
    }
}

/// Error reports and ratings of one department's datasets (or the platform's, `department` "").
public struct FeedbackFigures: Sendable, Equatable {
    public var department: String
    public var reports = 0
    public var closed = 0
    public var closedOnTime = 0
    public var overdue = 0
    public var ratings = 0
    public var starsTotal = 0

    public init(department: String) { self.department = department }

    /// Closed on time over closed and overdue; nil when both are 0.
    public var onTimeRate: Double? { closed + overdue == 0 ? nil : Double(closedOnTime) / Double(closed + overdue) }
    public var meanStars: Double? { ratings == 0 ? nil : Double(starsTotal) / Double(ratings) }

    /// The platform's first, then each department's by name; ratings count toward their
    /// dataset's department (`departmentOf`).
    public static func of(_ reports: [ErrorReportRecord], ratings: [RatingRecord], departmentOf: (String) -> String?, today: String) -> [FeedbackFigures] {
        var all = FeedbackFigures(department: "")
        var by: [String: FeedbackFigures] = [:]
        func add(_ department: String, _ change: (inout FeedbackFigures) -> Void) {
            change(&all)
            var d = by[department] ?? FeedbackFigures(department: department)
            change(&d)
            by[department] = d
        }
        for r in reports where r.status != .withdrawn {
            add(r.department) { f in
                f.reports += 1
                if let onTime = r.closedOnTime {
                    f.closed += 1
                    if onTime { f.closedOnTime += 1 }
                } else if r.isOverdue(today: today) {
                    f.overdue += 1
                }
            }
        }
        for rating in ratings {
            add(departmentOf(rating.dataset) ?? "") { f in f.ratings += 1; f.starsTotal += rating.stars }
        }
        return [all] + by.keys.sorted().map { by[$0]! }
    }
}
