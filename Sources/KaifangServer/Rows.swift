import Foundation
import GRDBSQLite
import Ingest
import KaifangCore
import Masking
import Storage

/// A parsed rows request: filters, fields, sort, limit, cursor (DESIGN §4).
struct RowQuery {
    enum Op: String, CaseIterable { case exact, not, gt, gte, lt, lte, contains, startswith, `in`, isnull }

    struct Filter {
        let column: Int
        let op: Op
        let values: [Cell]
    }

    var filters: [Filter] = []
    var columns: [Int] = []
    var sortColumn: Int?
    var descending = false
    var limit = 100
    var after: (value: Cell, row: Int64)?

    static let maxLimit = 1000

    /// Parses the raw query string against the plan (which says what the caller may see).
    /// - Throws: `Problem` 400 naming the parameter and what to do.
    static func parse(_ query: QueryString, plan: MaskingPlan, declaredLimit: Int?, fields: String?, sort: String?, cursor: String?) throws -> RowQuery {
        for item in query.items where item.key.hasPrefix("_") && !controls.contains(item.key) {
            throw Problem(status: .badRequest, detail: "unknown parameter '\(item.key)': the controls are _fields, _sort, _limit, _cursor; filters are field=value or field__op=value")
        }
        var q = RowQuery()
        let byName = plan.includedColumns
        func column(_ name: String, for purpose: String) throws -> Int {
            guard let i = byName[name] else {
                throw Problem(status: .badRequest, detail: "'\(name)' is not a field you can \(purpose): the fields are \(byName.keys.sorted().joined(separator: ", "))")
            }
            let c = plan.columns[i]
            if c.operation != .keep {
                throw Problem(status: .badRequest, detail: "cannot \(purpose) '\(name)': you see it \(c.action.rawValue == "suppress" ? "suppressed" : "masked (\(c.action.rawValue))"), and a filter or sort on it would reveal the raw value")
            }
            return i
        }
        if let limit = declaredLimit {
            guard (1...maxLimit).contains(limit) else { throw Problem(status: .badRequest, detail: "_limit must be 1–\(maxLimit)") }
            q.limit = limit
        }
        if let fields, !fields.isEmpty {
            for name in fields.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let i = byName[name] else {
                    throw Problem(status: .badRequest, detail: "_fields names '\(name)', which is not a field you can see: the fields are \(byName.keys.sorted().joined(separator: ", "))")
                }
                if !q.columns.contains(i) { q.columns.append(i) }
            }
        } else {
            q.columns = plan.columns.indices.filter { plan.columns[$0].included }
        }
        if let sort, !sort.isEmpty {
            q.descending = sort.hasPrefix("-")
            q.sortColumn = try column(String(q.descending ? sort.dropFirst() : Substring(sort)), for: "sort by")
        }
        for (key, value) in query.items {
            if key.hasPrefix("_") || key.isEmpty { continue }
            var name = key
            var op = Op.exact
            if let (head, tail) = splitOperator(key) {
                name = head
                guard let o = Op(rawValue: tail) else {
                    throw Problem(status: .badRequest, detail: "'\(key)': the operators are \(Op.allCases.map(\.rawValue).joined(separator: " "))")
                }
                op = o
            }
            let c = try column(name, for: "filter on")
            let field = plan.columns[c].field
            var values: [Cell] = []
            switch op {
            case .isnull:
                guard value == "true" || value == "false" || value == "1" || value == "0" else {
                    throw Problem(status: .badRequest, detail: "'\(key)' takes true or false")
                }
                values = [.integer(value == "true" || value == "1" ? 1 : 0)]
            case .in:
                let items = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard !items.isEmpty, items.count <= 100 else { throw Problem(status: .badRequest, detail: "'\(key)' takes 1–100 comma-separated values") }
                values = try items.map { try typed($0, field: field, key: key) }
            case .contains, .startswith:
                values = [.text(value)]
            default:
                values = [try typed(value, field: field, key: key)]
            }
            q.filters.append(Filter(column: c, op: op, values: values))
            if q.filters.count > 20 { throw Problem(status: .badRequest, detail: "at most 20 filters per request") }
        }
        if let cursor, !cursor.isEmpty { q.after = try decodeCursor(cursor, sortColumn: q.sortColumn, descending: q.descending) }
        return q
    }

    /// The controls a rows request takes; any other parameter starting with `_` is refused.
    static let controls: Set<String> = ["_fields", "_sort", "_limit", "_cursor"]

    /// `name__op` split at its first `__`, on bytes; nil when the key has none.
    static func splitOperator(_ key: String) -> (String, String)? {
        let u = Array(key.utf8)
        guard u.count >= 2 else { return nil }
        for i in 0..<(u.count - 1) where u[i] == 0x5F && u[i + 1] == 0x5F {
            return (String(decoding: u[..<i], as: UTF8.self), String(decoding: u[(i + 2)...], as: UTF8.self))
        }
        return nil
    }

    static func typed(_ value: String, field: FieldSpec, key: String) throws -> Cell {
        switch field.type {
        case .integer:
            guard let v = Int64(value.trimmingCharacters(in: .whitespaces)) else { throw Problem(status: .badRequest, detail: "'\(key)': \(field.name) is an integer field; give an integer") }
            return .integer(v)
        case .boolean:
            switch value.lowercased() {
            case "true", "1": return .integer(1)
            case "false", "0": return .integer(0)
            default: throw Problem(status: .badRequest, detail: "'\(key)': \(field.name) is a boolean field; give true or false")
            }
        case .number:
            guard let v = Double(value.trimmingCharacters(in: .whitespaces)), v.isFinite else { throw Problem(status: .badRequest, detail: "'\(key)': \(field.name) is a number field; give a number") }
            return .real(v)
        default:
            return .text(value)
        }
    }

    // MARK: cursor

    /// The cursor (see `RowCursor`).
    static func encodeCursor(sortColumn: Int?, descending: Bool, value: Cell, row: Int64) -> String {
        RowCursor.encode(sortColumn: sortColumn, descending: descending, value: value, row: row)
    }

    static func decodeCursor(_ s: String, sortColumn: Int?, descending: Bool) throws -> (Cell, Int64) {
        guard let decoded = RowCursor.decode(s, sortColumn: sortColumn, descending: descending) else {
            throw Problem(status: .badRequest, detail: "_cursor is not one this server made for this sort: pass the next_cursor of the previous page unchanged, with the same _sort")
        }
        return decoded
    }

    // MARK: SQL

    /// The filters as row-set lookups (`RowSets`): field names with their values, when there is
    /// no sort and every filter is `exact` or `in` on text; nil otherwise.
    func rowSetFilters(plan: MaskingPlan) -> [(field: String, values: [String])]? {
        guard sortColumn == nil, !filters.isEmpty else { return nil }
        var out: [(field: String, values: [String])] = []
        for f in filters {
            guard f.op == .exact || f.op == .in else { return nil }
            var values: [String] = []
            for v in f.values {
                guard case .text(let t) = v else { return nil }
                values.append(t)
            }
            out.append((plan.columns[f.column].field.name, values))
        }
        return out
    }

    /// The SELECT for this query: `_row`, the sort column (if any), then the requested columns.
    /// With `rows` (the matching rows, ascending, from `RowSets`) it reads just those rows,
    /// which already satisfy the filters and the cursor.
    func sql(plan: MaskingPlan, limit: Int?, rows: [Int64]? = nil) -> (String, [Cell]) {
        if let rows {
            var select = "_row"
            for c in columns { select += ", \(quoteIdentifier(plan.columns[c].field.name))" }
            let marks = Array(repeating: "?", count: rows.count).joined(separator: ",")
            return ("SELECT \(select) FROM rows WHERE _row IN (\(marks)) ORDER BY _row", rows.map { .integer($0) })
        }
        var conds: [String] = []
        var args: [Cell] = []
        for f in filters {
            let col = quoteIdentifier(plan.columns[f.column].field.name)
            switch f.op {
            case .exact: conds.append("\(col) = ?"); args += f.values
            case .not: conds.append("\(col) IS NOT ?"); args += f.values
            case .gt: conds.append("\(col) > ?"); args += f.values
            case .gte: conds.append("\(col) >= ?"); args += f.values
            case .lt: conds.append("\(col) < ?"); args += f.values
            case .lte: conds.append("\(col) <= ?"); args += f.values
            case .contains, .startswith:
                let text = f.values[0].text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
                conds.append("\(col) LIKE ? ESCAPE '\\'")
                args.append(.text(f.op == .contains ? "%\(text)%" : "\(text)%"))
            case .in:
                conds.append("\(col) IN (\(Array(repeating: "?", count: f.values.count).joined(separator: ", ")))"); args += f.values
            case .isnull:
                conds.append(f.values[0] == .integer(1) ? "\(col) IS NULL" : "\(col) IS NOT NULL")
            }
        }
        var order = "_row"
        var select = "_row"
        if let s = sortColumn {
            let col = quoteIdentifier(plan.columns[s].field.name)
            select += ", \(col)"
            order = descending ? "\(col) DESC, _row DESC" : "\(col), _row"
            if let after {
                if after.value == .null {
                    // NULLs sort first ascending, last descending.
                    conds.append(descending ? "(\(col) IS NULL AND _row < ?)" : "((\(col) IS NULL AND _row > ?) OR \(col) IS NOT NULL)")
                    args.append(.integer(after.row))
                } else {
                    conds.append(descending ? "((\(col), _row) < (?, ?) OR \(col) IS NULL)" : "(\(col), _row) > (?, ?)")
                    args += [after.value, .integer(after.row)]
                }
            }
        } else if let after {
            conds.append("_row > ?")
            args.append(.integer(after.row))
        }
        for c in columns { select += ", \(quoteIdentifier(plan.columns[c].field.name))" }
        var sql = "SELECT \(select) FROM rows"
        if !conds.isEmpty { sql += " WHERE " + conds.joined(separator: " AND ") }
        sql += " ORDER BY \(order)"
        if let limit { sql += " LIMIT \(limit)" }
        return (sql, args)
    }
}

extension RowQuery {
    /// What a page wrote: rows, whether more follow, the last row's sort value and rowid (for
    /// the cursor), cells masked.
    struct Page {
        var count = 0
        var more = false
        var last: (Cell, Int64) = (.null, 0)
        var maskedCells = 0
    }

    /// Writes the page's rows in row order from the file's pages: the rows after the cursor, or
    /// `rows` (ascending, from the row sets) when given. Nil when a value needs SQLite's own
    /// conversion (`RowEncoder.value`) or a column is not in the table: read it through SQLite.
    /// - Throws: `KaifangError.runtime` when the file is damaged.
    func pageFromFile(_ table: TableFile, plan: MaskingPlan, rows: [Int64]?, into out: inout ByteBuilder) throws -> Page? {
        var positions: [Int] = []
        var texts: [Bool] = []
        for c in columns {
            guard let at = table.columns[plan.columns[c].field.name] else { return nil }
            positions.append(at)
            texts.append(table.declaredText[at])
        }
        var encoder = RowEncoder(plan: plan, columns: columns, texts: texts)
        var cursor = TableCursor(table)
        var page = Page()
        // One row: false when it needs SQLite.
        func emit() throws -> Bool {
            try cursor.load()
            if page.count > 0 { out.append(0x2C) }
            guard encoder.json(cursor, positions: positions, row: cursor.rowid, into: &out) else { return false }
            page.last = (.null, cursor.rowid)
            page.count += 1
            return true
        }
        if let rows {
            for r in rows {
                guard try cursor.seek(r), cursor.rowid == r else { continue }
                if page.count == limit { page.more = true; break }
                guard try emit() else { return nil }
            }
        } else {
            // After the cursor's row (as `_row > ?`), or from the first row.
            let from = after?.row ?? Int64.min
            guard from < Int64.max else { return page }
            var found = try cursor.seek(after == nil ? Int64.min : from + 1)
            while found {
                if page.count == limit { page.more = true; break }
                guard try emit() else { return nil }
                found = try cursor.next()
            }
        }
        page.maskedCells = encoder.maskedCells
        return page
    }
}

/// Byte-level JSON output.
enum JSONOut {
    @inline(__always)
    static func string(_ b: UnsafeBufferPointer<UInt8>, into out: inout ByteBuilder) { JSONBytes.appendString(b, to: &out) }

    static func string(_ s: String, into out: inout ByteBuilder) { JSONBytes.appendString(s, to: &out) }

    static func raw(_ s: String, into out: inout ByteBuilder) { out.append(s) }
}

/// Reads rows from a prepared statement and writes them masked, as JSON objects or CSV lines.
struct RowEncoder: ~Copyable {
    let plan: MaskingPlan
    let columns: [Int]
    /// Offset of the first data column in the statement (after `_row` and the sort column).
    let firstColumn: Int32
    var scratch = MaskScratch()
    var masked = ByteBuilder(capacity: 256)
    var digits = ByteBuilder(capacity: 24)
    var maskedCells = 0

    /// Per requested column: whether its value is served as stored (no masking).
    let keeps: [Bool]

    /// The `"name":` prefixes of the columns, JSON-escaped once, in one array (`nameEnds[k]`
    /// ends column k's): one buffer access per row instead of an array retained per cell.
    let nameBytes: [UInt8]
    let nameEnds: [Int]

    /// Per requested column: declared TEXT in the file, so every value is TEXT or NULL (the
    /// column's affinity stores numbers as text) and `sqlite3_column_type` can be skipped.
    let texts: [Bool]

    init(plan: MaskingPlan, columns: [Int], firstColumn: Int32, statement: OpaquePointer?) {
        self.init(plan: plan, columns: columns, firstColumn: firstColumn, texts: columns.indices.map { k in
            sqlite3_column_decltype(statement, firstColumn + Int32(k)).map { strcasecmp($0, "TEXT") == 0 } ?? false
        })
    }

    /// For rows read from the file's pages (`json(_:positions:row:into:)`): `texts` says per
    /// requested column whether it is declared TEXT.
    init(plan: MaskingPlan, columns: [Int], firstColumn: Int32 = 0, texts: [Bool]) {
        self.plan = plan; self.columns = columns; self.firstColumn = firstColumn
        self.keeps = columns.map { plan.columns[$0].operation == .keep }
        self.texts = texts
        var bytes = ByteBuilder()
        var ends: [Int] = []
        for c in columns {
            JSONOut.string(plan.columns[c].field.name, into: &bytes)
            bytes.append(0x3A)
            ends.append(bytes.count)
        }
        self.nameBytes = bytes.array
        self.nameEnds = ends
    }

    /// Calls `body` with the bytes of the statement's column as text (nil for NULL), then masks it.
    @inline(__always)
    mutating func value(_ stmt: OpaquePointer?, _ k: Int, row: Int64, _ body: (UnsafeBufferPointer<UInt8>?, Bool) -> Void) {
        let sc = firstColumn + Int32(k)
        let planColumn = columns[k]
        if texts[k] {
            guard let p = sqlite3_column_text(stmt, sc) else { body(nil, false); return }
            let bytes = UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, sc)))
            if keeps[k] { body(bytes, false); return }
            maskText(bytes, planColumn, row: row, body)
            return
        }
        let type = sqlite3_column_type(stmt, sc)
        if type == SQLITE_NULL { body(nil, false); return }
        let keep = keeps[k]
        if type == SQLITE_FLOAT && keep {
            var text = Cell.format(sqlite3_column_double(stmt, sc))
            text.withUTF8 { body($0, true) }
            return
        }
        if type == SQLITE_FLOAT {
            masked.removeAll()
            if let kept = plan.applyNumber(column: planColumn, sqlite3_column_double(stmt, sc), into: &masked) {
                maskedCells += 1
                if kept { body(masked.bytes, false) } else { body(nil, false) }
                return
            }
        }
        guard let p = sqlite3_column_text(stmt, sc) else { body(nil, false); return }
        let bytes = UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, sc)))
        if keep { body(bytes, type == SQLITE_INTEGER); return }
        maskText(bytes, planColumn, row: row, body)
    }

    @inline(__always)
    private mutating func maskText(_ bytes: UnsafeBufferPointer<UInt8>, _ planColumn: Int, row: Int64, _ body: (UnsafeBufferPointer<UInt8>?, Bool) -> Void) {
        maskedCells += 1
        masked.removeAll()
        if plan.apply(column: planColumn, bytes, row: row, scratch: &scratch, into: &masked) {
            body(masked.bytes, false)
        } else {
            body(nil, false)
        }
    }

    /// The same for a value read from the file's pages (`TableCursor`), as SQLite would hand it
    /// out; false when only SQLite's own conversion renders it (a real in a TEXT column, a real
    /// that a text mask needs): the caller then reads the page through SQLite.
    @inline(__always)
    mutating func value(_ v: StoredValue, _ k: Int, row: Int64, _ body: (UnsafeBufferPointer<UInt8>?, Bool) -> Void) -> Bool {
        switch v {
        case .null:
            body(nil, false)
        case .text(let bytes):
            if keeps[k] { body(bytes, false) } else { maskText(bytes, columns[k], row: row, body) }
        case .integer(let i):
            // SQLite's text of an integer: its decimal digits (in their own buffer: a mask
            // writes into `masked`).
            digits.removeAll()
            digits.append(decimal: i)
            if keeps[k] { body(digits.bytes, !texts[k]) } else { maskText(digits.bytes, columns[k], row: row, body) }
        case .real(let d):
            if texts[k] { return false }
            if keeps[k] {
                var text = Cell.format(d)
                text.withUTF8 { body($0, true) }
            } else {
                masked.removeAll()
                guard let kept = plan.applyNumber(column: columns[k], d, into: &masked) else { return false }
                maskedCells += 1
                if kept { body(masked.bytes, false) } else { body(nil, false) }
            }
        }
        return true
    }

    @inline(__always)
    private func appendName(_ k: Int, into out: inout ByteBuilder) {
        if k > 0 { out.append(0x2C) }
        nameBytes.withUnsafeBufferPointer { n in
            out.append(contentsOf: UnsafeBufferPointer(rebasing: n[(k == 0 ? 0 : nameEnds[k - 1])..<nameEnds[k]]))
        }
    }

    @inline(__always)
    private static func appendValue(_ bytes: UnsafeBufferPointer<UInt8>?, numeric: Bool, into out: inout ByteBuilder) {
        guard let bytes else { out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]); return }
        if numeric { out.append(contentsOf: bytes) } else { JSONOut.string(bytes, into: &out) }
    }

    /// Appends the current row as a JSON object.
    mutating func json(_ stmt: OpaquePointer?, row: Int64, into out: inout ByteBuilder) {
        out.append(0x7B)
        for k in 0..<columns.count {
            appendName(k, into: &out)
            value(stmt, k, row: row) { bytes, numeric in Self.appendValue(bytes, numeric: numeric, into: &out) }
        }
        out.append(0x7D)
    }

    /// Appends the cursor's current row (loaded) as a JSON object; `positions` are the record
    /// positions of the requested columns. False when a value needs SQLite (see `value`).
    mutating func json(_ cursor: borrowing TableCursor, positions: [Int], row: Int64, into out: inout ByteBuilder) -> Bool {
        out.append(0x7B)
        for k in 0..<columns.count {
            appendName(k, into: &out)
            let done = value(cursor.value(positions[k]), k, row: row) { bytes, numeric in Self.appendValue(bytes, numeric: numeric, into: &out) }
            if !done { return false }
        }
        out.append(0x7D)
        return true
    }

    /// Appends the current row as a CSV line.
    mutating func csv(_ stmt: OpaquePointer?, row: Int64, into out: inout ByteBuilder) {
        for k in 0..<columns.count {
            if k > 0 { out.append(0x2C) }
            value(stmt, k, row: row) { bytes, _ in
                guard let bytes else { return }
                var needs = false
                for b in bytes where b == 0x2C || b == 0x22 || b == 0x0A || b == 0x0D { needs = true; break }
                if !needs { out.append(contentsOf: bytes); return }
                out.append(0x22)
                for b in bytes { if b == 0x22 { out.append(0x22) }; out.append(b) }
                out.append(0x22)
            }
        }
        out.append(0x0A)
    }
}

/// Runs statements on a version connection.
enum Statement {
    static func prepare(_ db: OpaquePointer?, _ sql: String, _ args: [Cell]) throws -> OpaquePointer? {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else {
            throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(db)))")
        }
        VersionReader.bind(stmt, args)
        return stmt
    }
}
