import Foundation
import GRDBSQLite
import KaifangAPI
import KaifangCore
import Masking
import Publishing
import Storage
import VersionFormat

/// The rows of the published version added or changed since an earlier one (`_since_version`),
/// computed once per pair of versions and kept for the next pages (bounded).
final class SinceCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(key: String, rows: VersionDiff.Rows)] = []
    static let capacity = 8

    func get(_ key: String) -> VersionDiff.Rows? { lock.withLock { entries.first { $0.key == key }?.rows } }

    func put(_ key: String, _ rows: VersionDiff.Rows) {
        lock.withLock {
            entries.removeAll { $0.key == key }
            entries.append((key, rows))
            if entries.count > Self.capacity { entries.removeFirst() }
        }
    }
}

/// What a rows page with `_since_version` serves: the rows to read, and the removed rows.
struct SinceRows {
    let version: Int
    let rows: [Int64]
    let removed: [Int64]
    let base: VersionRecord

    /// The rows after `after` (a cursor's row), at most `count`.
    func page(after: Int64?, count: Int) -> [Int64] {
        var lo = 0, hi = rows.count
        let from = after ?? Int64.min
        while lo < hi {
            let mid = (lo + hi) / 2
            if rows[mid] <= from { lo = mid + 1 } else { hi = mid }
        }
        return Array(rows[lo..<min(rows.count, lo + count)])
    }
}

extension APIHandler {
    /// The rows changed since version `n` for `access`'s published version.
    /// - Throws: `Problem` 400 for a version that does not exist or is not before the published
    ///   one; `KaifangError.conflict` (409) when the versions cannot be compared.
    func sinceRows(_ access: Access, _ n: Int) async throws -> SinceRows {
        let id = access.dataset.id, published = access.version
        guard n <= published.number, let base = try catalog.version(id, n) else {
            throw Problem(status: .badRequest, detail: "_since_version=\(n): '\(id)' has no such version to sync from; the published version is \(published.number) (GET /v1/datasets/\(id) lists the versions)")
        }
        if n == published.number { return SinceRows(version: n, rows: [], removed: [], base: base) }
        let key = "\(id)|\(base.sha256)|\(published.sha256)"
        if let hit = sinceCache.get(key) { return SinceRows(version: n, rows: hit.changedOrAdded, removed: hit.removed, base: base) }
        let (oldPath, newPath) = (try catalog.localFile(base), try catalog.localFile(published))
        let rows = try await StoreThreads.run {
            try VersionDiff.compute(base: base.number, oldPath: oldPath, oldManifest: base.manifest, version: published.number, newPath: newPath,
                                    newManifest: published.manifest, rows: true).1!
        }
        sinceCache.put(key, rows)
        return SinceRows(version: n, rows: rows.changedOrAdded, removed: rows.removed, base: base)
    }

    /// The `since_version`, `removed` and (on a first page, when the caller sees every key field
    /// unmasked and there are at most 10 000) `removed_keys` members of a rows page.
    func sinceMembers(_ since: SinceRows, plan: MaskingPlan, firstPage: Bool) throws -> [UInt8] {
        var out = ByteBuilder(capacity: 64)
        out.append(",\"since_version\":\(since.version),\"removed\":\(since.removed.count)")
        let key = since.base.manifest.primaryKey ?? []
        let visible = !key.isEmpty && key.allSatisfy { name in plan.includedColumns[name].map { plan.columns[$0].operation == .keep } ?? false }
        guard firstPage, visible, since.removed.count <= 10_000 else { return out.array }
        out.append(",\"removed_keys\":[")
        let path = try catalog.localFile(since.base)
        try pool.with(path) { reader in
            var first = true
            for chunk in stride(from: 0, to: since.removed.count, by: 500).map({ Array(since.removed[$0..<min($0 + 500, since.removed.count)]) }) {
                let sql = "SELECT " + key.map(quoteIdentifier).joined(separator: ", ") + " FROM rows WHERE _row IN (" + chunk.map(String.init).joined(separator: ",") + ") ORDER BY _row"
                for row in try reader.query(sql) {
                    if !first { out.append(0x2C) }
                    first = false
                    out.append(0x5B)
                    for (i, cell) in row.enumerated() {
                        if i > 0 { out.append(0x2C) }
                        switch cell {
                        case .null: out.append("null")
                        case .integer(let v): out.append(decimal: v)
                        case .real(let v): out.append(Cell.format(v))
                        case .text(let s): JSONOut.string(s, into: &out)
                        }
                    }
                    out.append(0x5D)
                }
            }
        }
        out.append(0x5D)
        return out.array
    }

    /// Rows of a version file by rowid, each as the JSON object the caller's plan serves.
    func maskedRows(_ version: VersionRecord, plan: MaskingPlan, rows: [Int64]) throws -> [Int64: [UInt8]] {
        guard !rows.isEmpty else { return [:] }
        var q = RowQuery()
        q.columns = plan.columns.indices.filter { plan.columns[$0].included }
        let (sql, args) = q.sql(plan: plan, limit: nil, rows: rows)
        return try pool.with(try catalog.localFile(version)) { reader in
            try reader.withStatement(sql, args) { stmt in
                var encoder = RowEncoder(plan: plan, columns: q.columns, firstColumn: 1, statement: stmt)
                var out: [Int64: [UInt8]] = [:]
                while sqlite3_step(stmt) == SQLITE_ROW {
                    let row = sqlite3_column_int64(stmt, 0)
                    var b = ByteBuilder(capacity: 256)
                    encoder.json(stmt, row: row, into: &b)
                    out[row] = b.array
                }
                return out
            }
        }
    }

    func getVersionChanges(_ input: Operations.GetVersionChanges.Input) async throws -> Operations.GetVersionChanges.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let id = input.path.id, n = input.path.n
        let access = try Access.resolve(id, caller: caller, catalog: catalog, stewardship: stewardship, plans: plans)
        guard n <= access.version.number || access.view == .steward, let version = try catalog.version(id, n) else {
            throw Problem(status: .notFound, detail: "'\(id)' has no published version \(n): GET /v1/datasets/\(id) lists the versions")
        }
        guard n > 1, let base = try catalog.version(id, n - 1) else {
            throw Problem(status: .notFound, detail: "version \(n) of '\(id)' is its first: it has no earlier version to change from")
        }
        let store = catalog
        guard let diff = try await StoreThreads.run({ try VersionDiff.of(id, n, catalog: store) }) else {
            throw Problem(status: .notFound, detail: "version \(n) of '\(id)' is its first: it has no earlier version to change from")
        }
        // Each side through the caller's plan for that version (its own fields and policy).
        let after = try Access.make(access.dataset, version, access.view, access.license, stewardship, plans: plans).plan
        let before = try Access.make(access.dataset, base, access.view, access.license, stewardship, plans: plans).plan
        let newRows = try maskedRows(version, plan: after, rows: diff.exampleAdded + diff.exampleChanged.map(\.after))
        let oldRows = try maskedRows(base, plan: before, rows: diff.exampleRemoved + diff.exampleChanged.map(\.before))
        var out = ByteBuilder(capacity: 1024)
        func list(_ rows: [Int64], _ from: [Int64: [UInt8]]) {
            out.append(0x5B)
            for (i, r) in rows.compactMap({ from[$0] }).enumerated() {
                if i > 0 { out.append(0x2C) }
                out.append(contentsOf: r)
            }
            out.append(0x5D)
        }
        out.append("{\"added\":")
        list(diff.exampleAdded, newRows)
        out.append(",\"removed\":")
        list(diff.exampleRemoved, oldRows)
        out.append(",\"changed\":[")
        for (i, c) in diff.exampleChanged.enumerated() {
            if i > 0 { out.append(0x2C) }
            out.append("{\"before\":"); out.append(contentsOf: oldRows[c.before] ?? Array("{}".utf8))
            out.append(",\"after\":"); out.append(contentsOf: newRows[c.after] ?? Array("{}".utf8)); out.append(0x7D)
        }
        out.append("]}")
        let examples = try JSONDecoder().decode(Components.Schemas.VersionChanges.ExamplesPayload.self, from: Data(out.array))
        let served = newRows.count + oldRows.count
        let detail = Self.readEventDetail(version: n, view: access.view.rawValue, rows: served,
                                          fields: after.columns.filter(\.included).map { ($0.field.name, $0.action.rawValue) },
                                          requestID: caller.requestID, license: access.license?.id)
        try await auditBatcher.record(.init(actor: caller.actor, action: "changes.read", dataset: id, canonicalDetail: detail))
        return .ok(.init(body: .json(.init(
            dataset: id, version: n, base: diff.base, primaryKey: diff.primaryKey, view: .init(rawValue: access.view.rawValue) ?? ._public,
            rowsBefore: diff.rowsBefore, rowsAfter: diff.rowsAfter, added: diff.added, removed: diff.removed, changed: diff.changed,
            unchanged: diff.unchanged, duplicateKeys: diff.duplicateKeys, fieldsAdded: diff.fieldsAdded, fieldsRemoved: diff.fieldsRemoved,
            fieldsRetyped: diff.fieldsRetyped, examples: examples))))
    }
}

extension APIHandler {
    /// A version's quality report: the published version's for anyone, others' for stewards and
    /// the owning department.
    func getVersionQuality(_ input: Operations.GetVersionQuality.Input) async throws -> Operations.GetVersionQuality.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let id = input.path.id, n = input.path.n
        guard let record = try catalog.dataset(id), caller.actsFor(record) || (record.isPublished && record.publishedVersion == n),
              try catalog.version(id, n) != nil else {
            throw Problem(status: .notFound, detail: "no quality report of version \(n) of '\(id)' for you: the published version's is public (GET /v1/datasets/\(id) names it), others' are for stewards and the dataset's department")
        }
        let catalog = self.catalog
        let r = try await StoreThreads.run { try QualityReport.of(id, n, catalog: catalog) }
        typealias S = Components.Schemas.QualityReport
        return .ok(.init(body: .json(S(
            dataset: r.dataset, version: r.version, valid: r.valid,
            stats: .init(rows: r.stats.rows, fields: r.stats.fields, rejectedRows: r.stats.rejectedRows),
            fields: r.fields.map { .init(name: $0.name, _type: $0.type, present: $0.present, completeness: $0.completeness,
                                         distinct: $0.distinct, distinctExact: $0.distinctExact, refused: $0.refused) },
            primaryKey: r.primaryKey.map { .init(fields: $0.fields, duplicateKeys: $0.duplicateKeys, duplicateRows: $0.duplicateRows) }))))
    }
}
