import Audit
import Foundation
import GRDBSQLite
import HTTPTypes
import KaifangAPI
import KaifangCore
import NIOCore
import Masking
import OpenAPIRuntime
import Publishing
import Storage
import VersionFormat

extension APIHandler {
    /// The typed handler (direct calls, e.g. tests): the same bytes as the HTTP route, decoded.
    func getRows(_ input: Operations.GetRows.Input) async throws -> Operations.GetRows.Output {
        let page = try await rowsBody(id: input.path.id, limit: input.query._limit, fields: input.query._fields, sort: input.query._sort, cursor: input.query._cursor,
                                      sinceVersion: input.query._sinceVersion, ifNoneMatch: input.headers.ifNoneMatch)
        guard let body = page.body else {
            return .notModified(.init(headers: .init(eTag: page.tag, cacheControl: page.cacheControl)))
        }
        return .ok(.init(headers: .init(eTag: page.tag, cacheControl: page.cacheControl),
                         body: .json(try JSONDecoder().decode(Components.Schemas.RowsPage.self, from: Data(body.readableBytesView)))))
    }

    /// A page of rows as served: the JSON bytes (nil when `If-None-Match` named the page's
    /// tag: 304), its entity tag and `Cache-Control`.
    struct RowsAnswer {
        var body: ByteBuffer?
        var tag: String
        var cacheControl: String
    }

    /// A page of masked rows as JSON bytes, in the response's buffer (the `GET /v1/datasets/{id}/rows` route serves them as they are).
    /// `query` is the request's query string when the caller parsed it already.
    func rowsBody(id: String, limit: Int?, fields: String?, sort: String?, cursor: String?, sinceVersion: Int? = nil, query: QueryString? = nil,
                  ifNoneMatch: String? = nil) async throws -> RowsAnswer {
        let caller = Caller.current
        try limiter.admit(caller)
        let (access, tag, notModified) = try await conditionalRead("rows", id: id, caller: caller, ifNoneMatch: ifNoneMatch,
                                                                   request: [caller.rawQuery, limit.map(String.init) ?? "", fields ?? "", sort ?? "", cursor ?? ""])
        let cacheControl = EntityTag.cacheControl(access.view)
        if notModified { return RowsAnswer(body: nil, tag: tag, cacheControl: cacheControl) }
        let q = try RowQuery.parse(query ?? QueryString(caller.rawQuery), plan: access.plan, declaredLimit: limit, fields: fields, sort: sort, cursor: cursor)
        let path = try catalog.localFile(access.version)
        let plan = access.plan
        // Rows changed since a version: those rows, in row order, with what was removed.
        var since: (rows: SinceRows, members: [UInt8])?
        if let n = sinceVersion {
            guard n >= 1 else { throw Problem(status: .badRequest, detail: "_since_version must be a version number (1 or more)") }
            guard q.filters.isEmpty, q.sortColumn == nil else {
                throw Problem(status: .badRequest, detail: "_since_version combines with _fields, _limit and _cursor only: the rows changed since a version come in row order; filter them on your side")
            }
            let rows = try await sinceRows(access, n)
            since = (rows, try sinceMembers(rows, plan: plan, firstPage: q.after == nil))
        }
        let (body, count, maskedCells) = try pool.with(path) { reader -> (ByteBuffer, Int, Int) in
            // Equality filters on category fields: the matching rows from the row sets, then
            // only those rows read; anything else: SQLite's plan over the indexes.
            var rows: [Int64]?
            if let since {
                rows = since.rows.page(after: q.after?.row, count: q.limit + 1)
            } else if configuration.pageReader, let sets = q.rowSetFilters(plan: plan) {
                rows = try RowSets.matching(reader, sets, after: q.after?.row ?? 0, want: q.limit + 1)
            }
            // Written straight into the response's buffer while it fits (nearly always: room for
            // 40 bytes a cell); a page that outgrows it moves into the builder's own storage and
            // is copied into it at the end (through an array: rare, so not worth a second path).
            let estimate = 256 + q.limit * 40 * max(q.columns.count, 1)
            var buffer = ByteBufferAllocator().buffer(capacity: estimate)
            var spilled: [UInt8]?
            var page: RowQuery.Page?
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: estimate) { raw -> Int in
                var out = ByteBuilder(borrowing: raw.bindMemory(to: UInt8.self).baseAddress!, capacity: raw.count)
                JSONOut.raw("{\"dataset\":", into: &out); JSONOut.string(access.dataset.id, into: &out)
                JSONOut.raw(",\"version\":\(access.version.number),\"view\":\"\(access.view.rawValue)\",\"fields\":[", into: &out)
                for (i, c) in q.columns.enumerated() { if i > 0 { out.append(0x2C) }; JSONOut.string(plan.columns[c].field.name, into: &out) }
                JSONOut.raw("],\"masked_fields\":[", into: &out)
                var first = true
                for c in q.columns where plan.columns[c].operation.changesValue && !plan.columns[c].operation.keepsType {
                    if !first { out.append(0x2C) }
                    first = false
                    JSONOut.string(plan.columns[c].field.name, into: &out)
                }
                if access.view == .licensed {
                    JSONOut.raw("],\"fingerprinted_fields\":[", into: &out)
                    first = true
                    for c in q.columns where plan.columns[c].operation.keepsType && plan.columns[c].operation != .keep {
                        if !first { out.append(0x2C) }
                        first = false
                        JSONOut.string(plan.columns[c].field.name, into: &out)
                    }
                }
                JSONOut.raw("],\"rows\":[", into: &out)
                let start = out.count
                // In row order with no filter but the row sets': straight from the file's pages.
                if configuration.pageReader, q.sortColumn == nil, rows != nil || q.filters.isEmpty, let table = reader.rowsTable() {
                    page = try q.pageFromFile(table, plan: plan, rows: rows, into: &out)
                    if page == nil { out.truncate(to: start) }
                }
                if page == nil {
                    let (sql, args) = rows.map { q.sql(plan: plan, limit: nil, rows: $0) } ?? q.sql(plan: plan, limit: q.limit + 1)
                    page = try reader.withStatement(sql, args) { stmt -> RowQuery.Page in
                        var encoder = RowEncoder(plan: plan, columns: q.columns, firstColumn: q.sortColumn == nil ? 1 : 2, statement: stmt)
                        var p = RowQuery.Page()
                        while true {
                            let rc = sqlite3_step(stmt)
                            if rc == SQLITE_DONE { break }
                            guard rc == SQLITE_ROW else { throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(reader.db)))") }
                            if p.count == q.limit { p.more = true; break }
                            let rowID = sqlite3_column_int64(stmt, 0)
                            if p.count > 0 { out.append(0x2C) }
                            encoder.json(stmt, row: rowID, into: &out)
                            p.last = (q.sortColumn == nil ? .null : VersionReader.cell(stmt, 1), rowID)
                            p.count += 1
                        }
                        p.maskedCells = encoder.maskedCells
                        return p
                    }
                }
                let p = page ?? RowQuery.Page()
                out.append(0x5D)
                if let since { out.append(contentsOf: since.members) }
                if p.more {
                    JSONOut.raw(",\"next_cursor\":", into: &out)
                    JSONOut.string(RowQuery.encodeCursor(sortColumn: q.sortColumn, descending: q.descending, value: p.last.0, row: p.last.1), into: &out)
                }
                out.append(0x7D)
                if out.isBorrowed { return out.count }
                spilled = out.array
                return 0
            }
            if let spilled { buffer.writeBytes(spilled) }
            let p = page ?? RowQuery.Page()
            return (buffer, p.count, p.maskedCells)
        }
        metrics.served(rows: count, maskedCells: maskedCells)
        try await recordRead(access, caller: caller, action: "rows.read", rows: count, columns: q.columns)
        return RowsAnswer(body: body, tag: tag, cacheControl: cacheControl)
    }

    func exportRows(_ input: Operations.ExportRows.Input) async throws -> Operations.ExportRows.Output {
        let caller = Caller.current
        let id = input.path.id
        try limiter.admit(caller)
        let format = input.query.format ?? .csv
        let (access, tag, notModified) = try await conditionalRead("export", id: id, caller: caller, ifNoneMatch: input.headers.ifNoneMatch, request: [format.rawValue])
        let headers = Operations.ExportRows.Output.Ok.Headers(eTag: tag, cacheControl: EntityTag.cacheControl(access.view))
        if notModified { return .notModified(.init(headers: .init(eTag: tag, cacheControl: headers.cacheControl))) }
        try checkExportQuota(caller)
        let columns = access.plan.columns.indices.filter { access.plan.columns[$0].included }
        let producer = try ExportProducer(pool: pool, path: try catalog.localFile(access.version), plan: access.plan,
                                          columns: columns, jsonl: format == .jsonl) { [metrics] rows, masked in metrics.served(rows: rows, maskedCells: masked) }
        try await recordRead(access, caller: caller, action: "export.read", rows: access.version.rowCount, columns: columns)
        // What was served, once all of it was: the export's provenance (docs/provenance.md).
        var provenance: [String: JSONValue] = [
            "version": .int(Int64(access.version.number)), "version_sha256": .string(access.version.sha256),
            "view": .string(access.view.rawValue), "format": .string(format.rawValue), "request_id": .string(caller.requestID),
            "fingerprinted": .array(access.plan.fingerprintedFields.map { .string($0) }),
        ]
        if let license = access.license?.id { provenance["license"] = .string(license) }
        let (batcher, actor, dataset) = (auditBatcher, caller.actor, access.dataset.id)
        let sequence = ExportSequence(producer: producer) { [provenance] summary in
            var detail = provenance
            detail["sha256"] = .string(summary.sha256)
            detail["bytes"] = .int(Int64(summary.bytes))
            detail["rows"] = .int(Int64(summary.rows))
            _ = try await batcher.record(.init(actor: actor, action: "export.provenance", dataset: dataset, detail: detail))
        }
        let body = HTTPBody(sequence, length: .unknown, iterationBehavior: .single)
        switch format {
        case .csv: return .ok(.init(headers: headers, body: .csv(body)))
        case .jsonl: return .ok(.init(headers: headers, body: .applicationXNdjson(body)))
        }
    }

    /// The caller's access to `id`'s rows, the response's entity tag, and whether
    /// `If-None-Match` names it (304). Access is checked first: a revoked license is refused,
    /// never answered 304. A 304 serves no row, so it is not recorded as a read; with a shared
    /// store it is given only under the store's current change mark, resolving again when the
    /// mark moved (the replica's caches may predate a change).
    func conditionalRead(_ kind: String, id: String, caller: Caller, ifNoneMatch: String?, request: [String]) async throws -> (Access, String, Bool) {
        var access = try Access.resolve(id, caller: caller, catalog: catalog, stewardship: stewardship, plans: plans)
        var tag = EntityTag.of(kind, access, request: request)
        guard EntityTag.matches(ifNoneMatch, tag) else { return (access, tag, false) }
        if try await catalog.confirmCurrent() { return (access, tag, true) }
        access = try Access.resolve(id, caller: caller, catalog: catalog, stewardship: stewardship, plans: plans)
        tag = EntityTag.of(kind, access, request: request)
        return (access, tag, EntityTag.matches(ifNoneMatch, tag))
    }

    /// The audit event of a served read: dataset, version, view, fields with actions, rows, key, request id.
    func recordRead(_ access: Access, caller: Caller, action: String, rows: Int, columns: [Int]) async throws {
        let detail = Self.readEventDetail(version: access.version.number, view: access.view.rawValue, rows: rows,
                                          fields: columns.map { (access.plan.columns[$0].field.name, access.plan.columns[$0].action.rawValue) },
                                          requestID: caller.requestID, license: access.license?.id)
        let committed = try await auditBatcher.record(.init(actor: caller.actor, action: action, dataset: access.dataset.id, canonicalDetail: detail))
        // With a shared store, this read was resolved under the last change mark the replica
        // had seen; if the batch holding its event committed under a later one (a change —
        // a revocation — came in between), resolve it again before answering. Refused then,
        // the read is not served, and the chain, which already holds its event, says so.
        if catalog.isShared, let scope = CatalogReadScope.current, !scope.confirm(committed) {
            do {
                let again = try Access.resolve(access.dataset.id, caller: try revalidated(caller), catalog: catalog, stewardship: stewardship, plans: plans)
                guard again.version == access.version, again.view == access.view, again.license?.id == access.license?.id,
                      again.dataset.updatedAt == access.dataset.updatedAt else {
                    throw Problem(status: .conflict, detail: "'\(access.dataset.id)' or your access to it changed while this request was served: send it again")
                }
            } catch {
                try await auditBatcher.record(.init(actor: caller.actor, action: CatalogRules.withheld(action), dataset: access.dataset.id,
                                                    detail: Self.withheldDetail(requestID: caller.requestID, error: error)))
                throw error
            }
        }
        if let usage = RequestUsage.current {
            usage.dataset = access.dataset.id
            usage.rows = Int64(rows)
            usage.export = action == "export.read"
        }
    }

    /// The detail of a `rows.withheld` or `export.withheld` event: the read it answers (by
    /// request id) and the status the request was refused with.
    static func withheldDetail(requestID: String, error: any Error) -> [String: JSONValue] {
        let status: Int
        switch error {
        case let p as Problem: status = p.status
        case let k as KaifangError: status = Int(Problem.status(of: k.kind).code)
        default: status = 500
        }
        return ["request_id": .string(requestID), "status": .int(Int64(status))]
    }

    /// The caller with their key checked again (after a change: a revoked key is refused).
    func revalidated(_ caller: Caller) throws -> Caller {
        guard let key = caller.key else { return caller }
        guard let current = try catalog.keys(account: key.accountID).first(where: { $0.id == key.id }), current.isActive else {
            throw Problem(status: .unauthorized, detail: "the API key is unknown or revoked: ask a steward for a new key, or call without Authorization to read open data anonymously")
        }
        if let reason = current.suspension { throw AuthMiddleware<AppRequestContext>.suspended(reason) }
        return caller
    }

    /// A read event's detail in the chain's canonical form (`JSONValue.canonicalBytes`: keys in
    /// UTF-8 order, no spaces), written straight from the values — no dictionary per request.
    /// `fields` are distinct names.
    static func readEventDetail(version: Int, view: String, rows: Int, fields: [(name: String, action: String)], requestID: String, license: String?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + fields.count * 40)
        out.append(contentsOf: #"{"fields":{"#.utf8)
        for (i, f) in fields.sorted(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }).enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONValue.writeString(f.name, into: &out)
            out.append(0x3A)
            JSONValue.writeString(f.action, into: &out)
        }
        out.append(0x7D)
        if let license {
            out.append(contentsOf: #","license":"#.utf8)
            JSONValue.writeString(license, into: &out)
        }
        out.append(contentsOf: #","request_id":"#.utf8)
        JSONValue.writeString(requestID, into: &out)
        out.append(contentsOf: #","rows":"#.utf8)
        out.append(contentsOf: String(rows).utf8)
        out.append(contentsOf: #","version":"#.utf8)
        out.append(contentsOf: String(version).utf8)
        out.append(contentsOf: #","view":"#.utf8)
        JSONValue.writeString(view, into: &out)
        out.append(0x7D)
        return out
    }

    /// Exports per key per UTC day (the key's account tier's quota, else the server's), counted
    /// from the audit log (so a restart resets nothing); an export withheld is not counted.
    func checkExportQuota(_ caller: Caller) throws {
        let limit = caller.key.map { $0.limits?.exportsPerDay ?? configuration.exportsPerDay } ?? configuration.anonymousExportsPerDay
        guard limit > 0 else { return }
        let today = String(AuditChain.timestamp().prefix(10))
        let actor = caller.key == nil ? "anonymous:\(caller.remote)" : caller.actor
        let used = try catalog.countEvents(actor: actor, action: "export.read", since: today)
            - catalog.countEvents(actor: actor, action: CatalogRules.withheld("export.read"), since: today)
        if used >= limit {
            throw Problem(status: .tooManyRequests, detail: "the daily export quota (\(limit)) is used up; it resets at 00:00 UTC. Page through GET /v1/datasets/{id}/rows instead, or ask a steward for a higher quota")
        }
    }
}

