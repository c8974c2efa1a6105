import Audit
import Crypto
import Foundation
import KaifangCore

/// What every store decides the same way, whatever holds the data: input checks and their
/// messages, identifiers and key digests, serialized forms, search words and cursors. The
/// embedded and the shared store both call these, so their behaviour cannot drift.
package enum CatalogRules {
    /// A time as the catalog stores it (ISO 8601 UTC, milliseconds).
    package static func now() -> String { AuditChain.timestamp() }

    // MARK: Freshness

    /// A SQL expression (the same in SQLite and PostgreSQL) giving a dataset's `Freshness` at
    /// `now` from its update frequency (`d`) and its published version's time (`v`, joined on
    /// the published version); NULL when unpublished. The cut-offs are literals made here, so the
    /// expression carries no caller text.
    package static func freshnessSQL(now: Date) -> String {
        var out = "(CASE WHEN d.published_version IS NULL OR v.created_at IS NULL THEN NULL"
        for f in UpdateFrequency.allCases {
            guard let t = f.thresholds else { continue }
            func cut(_ age: Double) -> String { "'" + AuditChain.timestamp(now.addingTimeInterval(-age)) + "'" }
            out += " WHEN d.update_frequency = '\(f.rawValue)' THEN CASE WHEN v.created_at > \(cut(t.due)) THEN 'fresh'"
                + " WHEN v.created_at > \(cut(t.overdue)) THEN 'due' WHEN v.created_at > \(cut(t.delinquent)) THEN 'overdue' ELSE 'delinquent' END"
        }
        return out + " ELSE 'unscheduled' END)"
    }

    /// The join `freshnessSQL` reads the published version's time through.
    package static let publishedVersionJoin = " LEFT JOIN versions v ON v.dataset_id = d.id AND v.number = d.published_version"

    // MARK: Coverage

    /// The `dataset_divisions` rows of a manifest: each declared code with its city (nil for the
    /// province) and, for a county, the county.
    package static func divisionRows(_ m: DatasetManifest) -> [(code: String, city: String?, county: String?)] {
        (m.spatial ?? []).compactMap(Divisions.named).map { ($0.code, $0.cityCode, $0.level == .county ? $0.code : nil) }
    }

    // MARK: Search filters and facets

    /// One filter of a catalog search: the facet it narrows, its SQL condition with one `?` for
    /// its value (the same in SQLite and PostgreSQL, which numbers the placeholder), the value.
    package struct SearchFilter: Sendable {
        package let facet: String
        package let condition: String
        package let value: String
    }

    /// The facets a catalog search counts, in the order a page lists them.
    package static let facets = ["department", "tier", "topic", "freshness", "city", "county"]

    /// The filters of a query, in `facets` order.
    package static func searchFilters(_ q: DatasetQuery) -> [SearchFilter] {
        var out: [SearchFilter] = []
        if let d = q.department { out.append(.init(facet: "department", condition: "d.department = ?", value: d)) }
        if let t = q.tier { out.append(.init(facet: "tier", condition: "d.tier = ?", value: t.rawValue)) }
        if let t = q.topic { out.append(.init(facet: "topic", condition: "d.topic = ?", value: t)) }
        if let f = q.freshness { out.append(.init(facet: "freshness", condition: "\(freshnessSQL(now: q.now)) = ?", value: f.rawValue)) }
        for (facet, value) in [("city", q.city), ("county", q.county)] {
            guard let value else { continue }
            out.append(.init(facet: facet, condition: "EXISTS (SELECT 1 FROM dataset_divisions gf WHERE gf.dataset_id = d.id AND gf.\(facet) = ?)", value: value))
        }
        return out
    }

    /// What a facet groups by, and the join it needs (cities and counties come from the
    /// dataset's declared divisions, so a dataset counts once under each city it covers).
    package static func facetSQL(_ facet: String, now: Date) -> (value: String, join: String) {
        switch facet {
        case "freshness": return (freshnessSQL(now: now), "")
        case "city", "county": return ("g.\(facet)", " JOIN dataset_divisions g ON g.dataset_id = d.id")
        default: return ("d.\(facet)", "")
        }
    }

    // MARK: Manifests

    package static func decodeManifest(_ json: String) throws -> DatasetManifest {
        try DatasetManifest.decode(Data(json.utf8), source: "catalog")
    }

    package static func manifestJSON(_ m: DatasetManifest) throws -> String {
        String(decoding: try m.jsonData(), as: UTF8.self)
    }

    package static func noDataset(_ id: String) -> KaifangError {
        .notFound("no dataset '\(id)' in the catalog: `kaifang dataset list` shows the ids")
    }

    // MARK: Search

    /// The words of a search: spaces (ASCII and ideographic) and control characters separate
    /// them (a NUL inside a full-text phrase ends it early).
    package static func searchWords(_ q: String?) -> [Substring] {
        guard let q = q?.trimmingCharacters(in: .whitespaces), !q.isEmpty else { return [] }
        return q.split(whereSeparator: { $0 == " " || $0 == "　" || $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } })
    }

    /// The text a dataset is found by: id, title, description, department, topic and every
    /// field's name and title.
    package static func searchText(_ m: DatasetManifest) -> String {
        ([m.id, m.title, m.description, m.department, m.topic] + m.fields.flatMap { [$0.name, $0.title ?? ""] }).joined(separator: " ")
    }

    /// The offset a search cursor stands for.
    /// - Throws: `KaifangError.badInput` for a cursor this server did not make.
    package static func searchOffset(_ cursor: String?) throws -> Int {
        guard let cursor, !cursor.isEmpty else { return 0 }
        guard let data = Data(base64Encoded: cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + String(repeating: "=", count: (4 - cursor.count % 4) % 4)),
              let text = String(data: data, encoding: .utf8), text.hasPrefix("o:"), let o = Int(text.dropFirst(2)), o >= 0 else {
            throw KaifangError.badInput("cursor is not one this server made: pass the next_cursor of the previous page unchanged")
        }
        return o
    }

    package static func searchCursor(offset: Int) -> String {
        Data("o:\(offset)".utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A page's size: 1–100.
    package static func pageSize(_ limit: Int) -> Int { min(max(limit, 1), 100) }

    // MARK: Keys

    /// A key's name, trimmed.
    /// - Throws: `KaifangError.badInput` for an empty or overlong name.
    package static func keyName(_ name: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 200 else {
            throw KaifangError.badInput("--name must be 1–200 characters: say who the key is for")
        }
        return trimmed
    }

    /// A new key: its public id and the whole key `kf_<id>_<secret>`, shown once.
    package static func newKey() -> (id: String, key: String) {
        var rng = SystemRandomNumberGenerator()
        let id = (0..<8).map { _ in String(UInt8.random(in: 0...15, using: &rng), radix: 16) }.joined()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        return (id, "kf_\(id)_\(secret)")
    }

    /// What is stored of a key: its SHA-256.
    package static func hashKey(_ key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).hexString
    }

    /// The id part of a presented key, or nil when it is not shaped like a key.
    package static func keyID(_ presented: String) -> String? {
        let parts = presented.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "kf", parts[1].count == 8, parts[2].count == 64 else { return nil }
        return String(parts[1])
    }

    /// Whether a presented key matches a stored digest (constant time over the digests).
    package static func matches(_ presented: String, storedHash: String) -> Bool {
        let given = hashKey(presented)
        var diff: UInt8 = 0
        for (a, b) in zip(storedHash.utf8, given.utf8) { diff |= a ^ b }
        return diff == 0 && storedHash.utf8.count == given.utf8.count
    }

    // MARK: Applications and licenses

    /// An application's purpose, trimmed.
    /// - Throws: `KaifangError.badInput` for a short purpose or a duration out of range.
    package static func applicationPurpose(_ purpose: String, durationDays: Int) throws -> String {
        let trimmed = purpose.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count >= 10 else {
            throw KaifangError.badInput("purpose must say what the data is for in at least 10 characters (用途)")
        }
        guard (1...366).contains(durationDays) else { throw KaifangError.badInput("duration_days must be 1–366") }
        return trimmed
    }

    /// Fields an application or approval names that the dataset does not have.
    /// - Throws: `KaifangError.badInput` naming the first.
    package static func checkFields(_ fields: [String], of manifest: DatasetManifest, listing: Bool) throws {
        if let unknown = fields.first(where: { manifest.field(named: $0) == nil }) {
            throw KaifangError.badInput("field '\(unknown)' is not a field of '\(manifest.id)'" + (listing ? ": its fields are \(manifest.fields.map(\.name).joined(separator: ", "))" : ""))
        }
    }

    package static func newLicenseID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "lic_" + (0..<10).map { _ in String(UInt8.random(in: 0...15, using: &rng), radix: 16) }.joined()
    }

    package static func fieldsJSON(_ f: [String]) -> String { JSONValue.array(f.map(JSONValue.string)).canonical }
    package static func fields(_ json: String) -> [String] { (try? JSONDecoder().decode([String].self, from: Data(json.utf8))) ?? [] }

    // MARK: Jobs

    package static func encodeDetail(_ d: JobDetail) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(d)) ?? Data("{}".utf8), as: UTF8.self)
    }

    package static func decodeDetail(_ json: String) -> JobDetail {
        (try? JSONDecoder().decode(JobDetail.self, from: Data(json.utf8))) ?? JobDetail()
    }

    package static func encodeDatasets(_ d: [JobDataset]) -> String {
        String(decoding: (try? JSONEncoder().encode(d)) ?? Data("[]".utf8), as: UTF8.self)
    }

    package static func decodeDatasets(_ json: String) -> [JobDataset] {
        (try? JSONDecoder().decode([JobDataset].self, from: Data(json.utf8))) ?? []
    }

    package static func formatEpsilon(_ e: Double) -> String { String(format: "%g", e) }

    /// The refusal of a job whose ε would overrun a dataset's monthly budget.
    package static func budgetExhausted(dataset: String, used: Double, monthly: Double, asked: Double) -> KaifangError {
        .forbidden("the ε budget for '\(dataset)' is exhausted this month: used \(formatEpsilon(used)) of \(formatEpsilon(monthly)), this job asks \(formatEpsilon(asked)); it renews on the 1st (UTC)")
    }

    /// The audit detail of a job's submission.
    package static func submissionDetail(_ job: JobRecord) -> [String: JSONValue] {
        var detail: [String: JSONValue] = [
            "job": .string(job.id), "mode": .string(job.mode), "sql_sha256": .string(job.detail.sqlSHA256 ?? ""),
            "datasets": .array(job.datasets.map { .string("\($0.id)@\($0.version)") }), "dry_run": .bool(job.dryRun),
        ]
        if let eps = job.epsilon { detail["epsilon"] = .string(formatEpsilon(eps)) }
        return detail
    }

    /// Why a recovered job is failed instead of queued again.
    package static func notRetried(attempts: Int) -> String {
        "the worker stopped while the job ran, \(attempts) times: it is not retried again"
    }

    // MARK: Sources

    /// - Throws: `KaifangError.badInput` for a URL that is not http(s) or an interval under a minute.
    package static func checkSource(url: String, intervalSeconds: Int) throws {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil else {
            throw KaifangError.badInput("--url must be an http(s) URL")
        }
        guard intervalSeconds >= 60 else { throw KaifangError.badInput("--every must be at least 1m") }
    }

    // MARK: Audit

    /// Recomputes a chain streamed through `each` (which hands every stored event, in seq order,
    /// to the verifier it is given and stops at the first break) and checks it against anchors
    /// kept outside it, each named by where it was kept: an anchor beyond the stored head means
    /// the newest events were deleted; a different hash at the anchor's event means the chain
    /// was rewritten.
    package static func verify(anchors: [(source: String, seq: Int64, hash: String)],
                               each: (inout AuditChain.Verifier) throws -> AuditChain.Verdict?) rethrows -> AuditChain.Verdict {
        var verifier = AuditChain.Verifier(remembering: Set(anchors.map(\.seq)))
        if let broken = try each(&verifier) { return broken }
        let last = verifier.nextSeq - 1
        for a in anchors.sorted(by: { $0.seq < $1.seq }) {
            if a.seq > last {
                return .broken(seq: last + 1, reason: "events after \(last) were deleted: \(a.source) records event \(a.seq)")
            }
            if let stored = verifier.remembered[a.seq], stored != a.hash {
                return .broken(seq: a.seq, reason: "event \(a.seq)'s hash differs from \(a.source): the chain was rewritten at or before it")
            }
        }
        return verifier.verdict
    }

    /// What an event adds to its dataset's reads of the day (`read_counts`, `/v1/stats`): 1 for
    /// a served read, −1 for one withheld (`withheld(_:)`), 0 for anything else.
    package static func readCount(_ action: String) -> Int {
        switch action {
        case "rows.read", "export.read": 1
        case "rows.withheld", "export.withheld": -1
        default: 0
        }
    }

    /// The event that says a recorded read was not served after all (`rows.read` →
    /// `rows.withheld`): a shared-store replica commits a read's event before it learns of a
    /// change that refuses it. It takes its read back out of the counts.
    package static func withheld(_ readAction: String) -> String { readAction.replacingOccurrences(of: ".read", with: ".withheld") }
}
