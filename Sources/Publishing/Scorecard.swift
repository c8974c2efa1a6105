import Audit
import Foundation
import KaifangCore
import Masking
import Storage

/// One department's figures at a moment: what the province judges departments by (the open
/// rate by data items, on-demand sharing, timeliness, quality). docs/quality.md defines each.
public struct Scorecard: Codable, Sendable, Equatable {
    public var department: String
    /// Datasets the department has in the catalog at the moment (imported by then).
    public var datasets: Int
    /// Of those, the ones policy says should be opened.
    public var shouldOpen: Int
    /// Data items (fields) of the datasets that should be opened.
    public var items: Int
    /// Items served to someone outside the platform: the dataset published `open` and the field
    /// not suppressed in the public view, or published `conditional` and not suppressed in the
    /// licensed view.
    public var itemsOpened: Int
    /// `itemsOpened / items`; nil without items.
    public var openRate: Double?
    /// Datasets published at the moment.
    public var published: Int
    /// Published datasets neither overdue nor delinquent against their update frequency.
    public var timely: Int
    /// `timely / published`; nil when nothing is published.
    public var timelinessRate: Double?
    /// Applications for the department's datasets decided within the period, and how many approved.
    public var applicationsDecided: Int
    public var applicationsApproved: Int
    /// `applicationsApproved / applicationsDecided`; nil when none was decided.
    public var sharingRate: Double?
    /// Applications waiting for a decision at the moment.
    public var applicationsPending: Int
    /// Mean over published datasets of their published version's mean field completeness.
    public var completeness: Double?
    /// Mean metadata score (points of 405) over the department's datasets.
    public var metadataScore: Double?

    enum CodingKeys: String, CodingKey {
        case department, datasets, items, published, timely, completeness
        case shouldOpen = "should_open", itemsOpened = "items_opened", openRate = "open_rate"
        case timelinessRate = "timeliness_rate", applicationsDecided = "applications_decided"
        case applicationsApproved = "applications_approved", sharingRate = "sharing_rate"
        case applicationsPending = "applications_pending", metadataScore = "metadata_score"
    }

    /// The name a dataset without a department is counted under.
    public static let noDepartment = "（未填部门 no department）"

    /// The figures that are rates, in the order pages chart them, with their titles.
    public static let rates: [(key: String, title: String)] = [
        ("open_rate", "数据项开放率 Open rate by data items"),
        ("timeliness_rate", "按时更新率 Timeliness"),
        ("sharing_rate", "申请满足率 On-demand sharing"),
        ("completeness", "完整性 Completeness"),
    ]

    /// The rate named `key` (one of `rates`).
    public func rate(_ key: String) -> Double? {
        switch key {
        case "open_rate": openRate
        case "timeliness_rate": timelinessRate
        case "sharing_rate": sharingRate
        case "completeness": completeness
        default: nil
        }
    }

    /// Every department's figures at `end`, with applications counted over `[start, end)`. The
    /// catalog's state at `end` is read from its history: the datasets imported by then, the
    /// publication in force then (`dataset_events`), that version's quality report and age, the
    /// applications filed and decided by then. Field levels are the dataset's current ones.
    public static func compute(catalog: any CatalogStore, start: Date, end: Date) throws -> [Scorecard] {
        let endStamp = AuditChain.timestamp(end), startStamp = AuditChain.timestamp(start)
        var records: [DatasetRecord] = []
        var cursor: String?
        repeat {
            let page = try catalog.search(DatasetQuery(limit: 100, cursor: cursor, includeUnpublished: true))
            records += page.datasets.map(\.record)
            cursor = page.nextCursor
        } while cursor != nil
        // The last publication or withdrawal of each dataset at or before `end`.
        var inForce: [String: DatasetEvent] = [:]
        for e in try catalog.datasetEvents(dataset: nil, limit: Int.max).sorted(by: { $0.seq < $1.seq }) where e.at <= endStamp {
            inForce[e.dataset] = e
        }
        var cards: [String: Scorecard] = [:]
        var completeness: [String: [Double]] = [:], scores: [String: [Double]] = [:]
        var departmentOf: [String: String] = [:]
        for r in records where r.createdAt <= endStamp {
            let m = r.manifest
            let department = m.department.isEmpty ? noDepartment : m.department
            departmentOf[r.id] = department
            var card = cards[department] ?? Scorecard(department: department)
            card.datasets += 1
            var then = r
            then.tier = nil
            then.publishedVersion = nil
            var version: VersionRecord?
            if let e = inForce[r.id], e.kind == "published", let n = e.version, let v = try catalog.version(r.id, n), v.createdAt <= endStamp {
                then.tier = e.tier
                then.publishedVersion = n
                version = v
            }
            if m.shouldOpen {
                card.shouldOpen += 1
                let counted = OpenItemFigures.items(of: then, version: version)
                card.items += counted.items
                card.itemsOpened += counted.opened
            }
            if let version, let made = AuditChain.date(version.createdAt) {
                card.published += 1
                let state = Freshness.of(frequency: m.updateFrequency, updatedAt: made, now: end)
                if state != .overdue && state != .delinquent { card.timely += 1 }
                if let report = try? QualityReport.of(r.id, version.number, catalog: catalog), !report.fields.isEmpty {
                    completeness[department, default: []].append(report.fields.map(\.completeness).reduce(0, +) / Double(report.fields.count))
                }
            }
            scores[department, default: []].append(Double(MetadataScore.of(then).points))
            cards[department] = card
        }
        for a in try catalog.applications(status: nil) {
            guard let department = departmentOf[a.dataset], a.createdAt <= endStamp else { continue }
            if let decided = a.decidedAt, decided <= endStamp {
                if decided >= startStamp {
                    cards[department]?.applicationsDecided += 1
                    if a.status == "approved" || a.licenseID != nil { cards[department]?.applicationsApproved += 1 }
                }
            } else {
                cards[department]?.applicationsPending += 1
            }
        }
        func mean(_ xs: [Double]?) -> Double? { xs.flatMap { $0.isEmpty ? nil : $0.reduce(0, +) / Double($0.count) } }
        func ratio(_ a: Int, _ b: Int) -> Double? { b == 0 ? nil : Double(a) / Double(b) }
        return cards.values.map { c in
            var c = c
            c.openRate = ratio(c.itemsOpened, c.items)
            c.timelinessRate = ratio(c.timely, c.published)
            c.sharingRate = ratio(c.applicationsApproved, c.applicationsDecided)
            c.completeness = mean(completeness[c.department])
            c.metadataScore = mean(scores[c.department])
            return c
        }.sorted { $0.department < $1.department }
    }

    init(department: String) {
        self.department = department
        datasets = 0; shouldOpen = 0; items = 0; itemsOpened = 0; published = 0; timely = 0
        applicationsDecided = 0; applicationsApproved = 0; applicationsPending = 0
    }
}

/// Calendar months (UTC) as scorecards count them: `YYYY-MM`.
public enum ScorecardMonth {
    /// The month containing `date`.
    public static func of(_ date: Date) -> String { String(AuditChain.timestamp(date).prefix(7)) }

    /// The first instant of `month` and of the month after it.
    /// - Throws: `KaifangError.badInput` for anything but `YYYY-MM`.
    public static func bounds(_ month: String) throws -> (start: Date, end: Date) {
        let parts = month.split(separator: "-")
        guard month.utf8.count == 7, parts.count == 2, let y = Int(parts[0]), let m = Int(parts[1]), (2000...9999).contains(y), (1...12).contains(m),
              let start = AuditChain.date(String(format: "%04d-%02d-01T00:00:00.000Z", y, m)),
              let end = AuditChain.date(m == 12 ? String(format: "%04d-01-01T00:00:00.000Z", y + 1) : String(format: "%04d-%02d-01T00:00:00.000Z", y, m + 1)) else {
            throw KaifangError.badInput("month '\(month)' is not a month: write it YYYY-MM (2026-11)")
        }
        return (start, end)
    }

    /// The month before `month`.
    public static func previous(_ month: String) throws -> String {
        of(try bounds(month).start.addingTimeInterval(-1))
    }
}

/// Monthly snapshots: taken once a month is over, as of its last instant, and never changed.
public enum ScorecardSnapshots {
    /// Takes `month`'s snapshot unless it is kept already.
    /// - Returns: the departments stored (0 when the month was kept before).
    /// - Throws: `KaifangError.badInput` for a month not over at `now`.
    @discardableResult
    public static func take(_ month: String, catalog: any CatalogStore, actor: String, now: Date = Date()) throws -> Int {
        let (start, end) = try ScorecardMonth.bounds(month)
        guard end <= now else {
            throw KaifangError.badInput("month \(month) is not over: a snapshot is taken once its last day has passed (GET /v1/scorecards gives the month so far)")
        }
        if try !catalog.scorecards(month: month).isEmpty { return 0 }
        // The figures as of the month's last instant.
        let cards = try Scorecard.compute(catalog: catalog, start: start, end: end.addingTimeInterval(-0.001))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let figures = try cards.map { (department: $0.department, json: String(decoding: try encoder.encode($0), as: UTF8.self)) }
        return try catalog.recordScorecards(month: month, figures: figures, actor: actor)
    }

    /// The CSV of kept months: a header, then one row per month and department (rates as
    /// decimals, empty when there was nothing to count).
    public static func csv(_ months: [(month: String, takenAt: String, card: Scorecard)]) -> String {
        var out = "month,taken_at,department,datasets,should_open,items,items_opened,open_rate,published,timely,timeliness_rate,"
            + "applications_decided,applications_approved,sharing_rate,applications_pending,completeness,metadata_score\n"
        func number(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "" }
        for (month, takenAt, c) in months {
            let cells = [month, takenAt, CSVBytes.field(c.department), String(c.datasets), String(c.shouldOpen), String(c.items), String(c.itemsOpened),
                         number(c.openRate), String(c.published), String(c.timely), number(c.timelinessRate), String(c.applicationsDecided),
                         String(c.applicationsApproved), number(c.sharingRate), String(c.applicationsPending), number(c.completeness),
                         c.metadataScore.map { String(format: "%.1f", $0) } ?? ""]
            out += cells.joined(separator: ",") + "\n"
        }
        return out
    }

    /// The kept snapshots, decoded, oldest month first.
    public static func history(catalog: any CatalogStore, month: String? = nil) throws -> [(month: String, takenAt: String, card: Scorecard)] {
        try catalog.scorecards(month: month).map { s in
            (s.month, s.takenAt, try JSONDecoder().decode(Scorecard.self, from: Data(s.figuresJSON.utf8)))
        }
    }
}

/// The open rate counted by data items (数据项开放率) at the moment: the fields of datasets that
/// should open, and of those the ones served outside the platform. The platform's figures
/// (`department` "") come first, then each department with a dataset that should open.
public struct OpenItemFigures: Sendable, Equatable {
    public var department: String
    public var shouldOpen = 0
    public var items = 0
    public var itemsOpened = 0
    /// `itemsOpened / items`; nil without items.
    public var openRate: Double? { items == 0 ? nil : Double(itemsOpened) / Double(items) }

    public init(department: String) { self.department = department }

    /// A dataset's items and, of those, the ones served outside the platform, with `record`'s
    /// tier and published version (`version`): the served view's columns when published (public
    /// view for `open`, licensed view for `conditional`, none for `restricted`), the manifest's
    /// fields when not.
    public static func items(of record: DatasetRecord, version: VersionRecord?) -> (items: Int, opened: Int) {
        guard let version, let tier = record.tier else { return (record.manifest.fields.count, 0) }
        let audience: Audience = tier == .open ? .publicView : .licensee(licenseID: "scorecard", fields: nil)
        let plan = ServingPlan.build(dataset: record, version: version, audience: audience, keys: nil)
        let opened = tier == .restricted ? 0 : plan.columns.filter { $0.included && $0.action != .suppress }.count
        return (plan.columns.count, opened)
    }

    /// Every department's figures from the catalog as it is.
    public static func current(catalog: any CatalogStore) throws -> [OpenItemFigures] {
        var platform = OpenItemFigures(department: "")
        var byDepartment: [String: OpenItemFigures] = [:]
        var cursor: String?
        repeat {
            let page = try catalog.search(DatasetQuery(limit: 100, cursor: cursor, includeUnpublished: true))
            for d in page.datasets where d.record.manifest.shouldOpen {
                let r = d.record
                let version = try r.publishedVersion.flatMap { try catalog.version(r.id, $0) }
                let counted = items(of: r, version: version)
                let department = r.manifest.department.isEmpty ? Scorecard.noDepartment : r.manifest.department
                for key in ["", department] {
                    var f = key.isEmpty ? platform : byDepartment[key] ?? OpenItemFigures(department: key)
                    f.shouldOpen += 1
                    f.items += counted.items
                    f.itemsOpened += counted.opened
                    if key.isEmpty { platform = f } else { byDepartment[key] = f }
                }
            }
            cursor = page.nextCursor
        } while cursor != nil
        return [platform] + byDepartment.values.sorted { $0.department < $1.department }
    }
}
