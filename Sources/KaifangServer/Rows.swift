import Foundation
import GRDBSQLite
import KaifangCore
import Masking
import Publishing
import Storage
import VersionFormat

/// A parsed rows request: filters, fields, sort, limit, cursor (docs/api-guide.md).
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
            throw Problem(status: .badRequest, detail: "unknown parameter '\(item.key)': the controls are _fields, _sort, _limit, _cursor, _since_version; filters are field=value or field__op=value")
        }
        var q = RowQuery()
        let byName = plan.includedColumns
        func column(_ name: String, for purpose: String) throws -> Int {
            guard let i = byName[name] else {
                throw Problem(status: .badRequest, detail: "'\(name)' is not a field you can \(purpose): the fields are \(byName.keys.sorted().joined(separator: ", "))")
            }
            let c = plan.columns[i]
            if case .fingerprint = c.operation {
                throw Problem(status: .badRequest, detail: "cannot \(purpose) '\(name)': your copy of it carries your license's fingerprint (a change within its tolerance), and a filter or sort on the stored value would reveal it; \(purpose == "sort by" ? "sort" : "filter") the rows on your side")
            }
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
    static let controls: Set<String> = ["_fields", "_sort", "_limit", "_cursor", "_since_version"]

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

