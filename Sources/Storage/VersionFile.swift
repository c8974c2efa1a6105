import KaifangCore
import Crypto
import Foundation
import GRDBSQLite

/// SQLITE_TRANSIENT: tells SQLite to copy bound text before the call returns.
let sqliteTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// Writes one immutable dataset version: a fresh SQLite file with a `rows` table typed after the
/// manifest, filled in one transaction, indexes built after the load, then fsynced. The content
/// SHA-256 is computed over a canonical serialization of the typed values as they are written.
public final class VersionWriter {
    /// The path being written (a temporary file until the catalog commits it).
    public let path: String
    private var db: OpaquePointer?
    private var insert: OpaquePointer?
    private let fields: [FieldSpec]
    private var hasher = SHA256()
    /// Rows written so far.
    public private(set) var rowCount = 0
    private var finished = false

    /// Creates the file and its table.
    /// - Throws: `KaifangError.runtime` when SQLite refuses.
    public init(path: String, manifest: DatasetManifest) throws {
        self.path = path
        self.fields = manifest.fields
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw KaifangError.runtime("cannot create version file \(path): \(msg)")
        }
        let columns = manifest.fields.map { "\(quoteIdentifier($0.name)) \(Self.sqlType($0.type))" }.joined(separator: ", ")
        try exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=8192; PRAGMA cache_size=-16384;")
        try exec("CREATE TABLE rows (_row INTEGER PRIMARY KEY, \(columns))")
        try exec("CREATE TABLE kaifang_version (key TEXT PRIMARY KEY, value TEXT)")
        let manifestJSON = String(decoding: try manifest.jsonData(), as: UTF8.self)
        try exec("INSERT INTO kaifang_version VALUES ('dataset', \(quoteLiteral(manifest.id))), ('manifest', \(quoteLiteral(manifestJSON)))")
        try exec("BEGIN")
        let placeholders = Array(repeating: "?", count: fields.count).joined(separator: ", ")
        let names = fields.map { quoteIdentifier($0.name) }.joined(separator: ", ")
        guard sqlite3_prepare_v2(db, "INSERT INTO rows (\(names)) VALUES (\(placeholders))", -1, &insert, nil) == SQLITE_OK else {
            throw KaifangError.runtime("cannot prepare insert: \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    deinit {
        sqlite3_finalize(insert)
        sqlite3_close(db)
        if !finished { unlink(path) }
    }

    static func sqlType(_ t: FieldType) -> String {
        switch t {
        case .integer, .boolean: "INTEGER"
        case .number: "REAL"
        case .string, .date, .datetime: "TEXT"
        }
    }

    private func exec(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &err) != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(err)
            throw KaifangError.runtime("version file \(path): \(msg)")
        }
    }

    /// The canonical bytes of the row being appended (hashed once per row; bound text points
    /// into it, so SQLite need not copy each value).
    private var rowBytes: [UInt8] = []
    private var textSpans: [(index: Int32, start: Int, count: Int)] = []

    /// Appends one row (one cell per manifest field, in order).
    /// - Throws: `KaifangError.runtime` when SQLite refuses (disk full).
    public func append(_ cells: [Cell]) throws {
        precondition(cells.count == fields.count)
        // The hashed serialization, per cell: a type byte (0 null, 1 integer, 2 real, 3 text),
        // the value (little-endian 8 bytes, or the UTF-8), then 0x1F; 0x1E ends the row.
        rowBytes.removeAll(keepingCapacity: true)
        textSpans.removeAll(keepingCapacity: true)
        for (i, cell) in cells.enumerated() {
            let idx = Int32(i + 1)
            switch cell {
            case .null:
                sqlite3_bind_null(insert, idx)
                rowBytes.append(0x00)
            case .integer(let v):
                sqlite3_bind_int64(insert, idx, v)
                rowBytes.append(0x01)
                withUnsafeBytes(of: v.littleEndian) { rowBytes.append(contentsOf: $0) }
            case .real(let v):
                sqlite3_bind_double(insert, idx, v)
                rowBytes.append(0x02)
                withUnsafeBytes(of: v.bitPattern.littleEndian) { rowBytes.append(contentsOf: $0) }
            case .text(var s):
                rowBytes.append(0x03)
                let start = rowBytes.count
                s.withUTF8 { rowBytes.append(contentsOf: $0) }
                textSpans.append((idx, start, rowBytes.count - start))
            }
            rowBytes.append(0x1F)
        }
        rowBytes.append(0x1E)
        hasher.update(data: rowBytes)
        let rc = rowBytes.withUnsafeBufferPointer { buf -> Int32 in
            let base = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
            for t in textSpans {
                // SQLITE_STATIC: the buffer is not touched until the step below has run.
                sqlite3_bind_text(insert, t.index, base + t.start, Int32(t.count), nil)
            }
            let rc = sqlite3_step(insert)
            sqlite3_reset(insert)
            sqlite3_clear_bindings(insert)
            return rc
        }
        guard rc == SQLITE_DONE else {
            throw KaifangError.runtime("writing version file \(path) failed: \(String(cString: sqlite3_errmsg(db))): check free disk space")
        }
        rowCount += 1
    }

    /// Commits, builds indexes, fsyncs and closes the file.
    /// - Returns: the content SHA-256 (hex).
    /// - Throws: `KaifangError.runtime`.
    public func finish() throws -> String {
        sqlite3_finalize(insert)
        insert = nil
        try exec("COMMIT")
        // Index builds sort: SQLite's sorter merges in worker threads, and with a small cache
        // it spills sorted runs early and merges them in parallel (measured on the 1 M-row
        // residents file: the six indexes about twice as fast as one thread with 16 MiB).
        try exec("PRAGMA threads=\(min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))); PRAGMA cache_size=-4096;")
        for f in fields where f.type != .string || f.semantic == .category {
            try exec("CREATE INDEX \(quoteIdentifier("ix_\(f.name)")) ON rows (\(quoteIdentifier(f.name)), _row)")
        }
        try exec("ANALYZE")
        sqlite3_close(db)
        db = nil
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
        chmod(path, 0o444)
        finished = true
        return hasher.finalize().hexString
    }
}

/// Quotes an SQL identifier.
public func quoteIdentifier(_ name: String) -> String {
    name.utf8.contains(0x22) ? "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : "\"" + name + "\""
}

/// Quotes an SQL string literal.
public func quoteLiteral(_ s: String) -> String {
    "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
}

/// A read-only connection to one dataset version file.
public final class VersionReader {
    /// The raw SQLite connection (read-only, query-only).
    public private(set) var db: OpaquePointer?
    /// The file.
    public let path: String

    /// Opens a version file read-only.
    ///
    /// `immutable` (for committed version files, which nothing writes again) opens it with
    /// SQLite's `immutable=1`: no file lock and no change-counter read per statement.
    /// - Throws: `KaifangError.runtime` when the file is missing or damaged.
    public init(path: String, immutable: Bool = false) throws {
        self.path = path
        let opened: Int32
        if immutable {
            // A file: URI; every byte but unreserved ones and '/' percent-encoded.
            var uri: [UInt8] = Array("file:".utf8)
            for b in path.utf8 {
                switch b {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "/"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"):
                    uri.append(b)
                default:
                    uri.append(UInt8(ascii: "%")); uri.append(contentsOf: Array([b].hexString.utf8))
                }
            }
            uri.append(contentsOf: Array("?immutable=1".utf8))
            opened = sqlite3_open_v2(String(decoding: uri, as: UTF8.self), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nil)
        } else {
            opened = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil)
        }
        guard opened == SQLITE_OK else {
            sqlite3_close(db)
            throw KaifangError.runtime("cannot open version file \(path)")
        }
        sqlite3_exec(db, "PRAGMA query_only=1", nil, nil, nil)
    }

    deinit {
        for stmt in statements.values { sqlite3_finalize(stmt) }
        sqlite3_close(db)
    }

    /// Prepared statements of this connection by SQL text (the rows API asks the same few
    /// shapes again and again; preparing one costs as much as stepping a page).
    private var statements: [String: OpaquePointer] = [:]

    /// Runs `body` with the prepared statement for `sql` with `bindings` bound, from this
    /// connection's cache; resets it afterwards. Not reentrant for the same `sql`.
    /// - Throws: `KaifangError.runtime` with SQLite's message.
    public func withStatement<T>(_ sql: String, _ bindings: [Cell], _ body: (OpaquePointer) throws -> T) throws -> T {
        let stmt: OpaquePointer
        if let s = statements[sql] {
            stmt = s
        } else {
            var p: OpaquePointer?
            guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &p, nil) == SQLITE_OK, let p else {
                throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(db)))")
            }
            if statements.count >= 64 {
                for old in statements.values { sqlite3_finalize(old) }
                statements.removeAll(keepingCapacity: true)
            }
            statements[sql] = p
            stmt = p
        }
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        Self.bind(stmt, bindings)
        return try body(stmt)
    }

    /// Binds `bindings` to the parameters of `stmt` in order.
    public static func bind(_ stmt: OpaquePointer?, _ bindings: [Cell]) {
        for (i, b) in bindings.enumerated() {
            let idx = Int32(i + 1)
            switch b {
            case .null: sqlite3_bind_null(stmt, idx)
            case .integer(let v): sqlite3_bind_int64(stmt, idx, v)
            case .real(let v): sqlite3_bind_double(stmt, idx, v)
            case .text(let s): sqlite3_bind_text(stmt, idx, s, -1, sqliteTransient)
            }
        }
    }

    /// Runs a query and returns all rows as cells (for small results: previews, tests).
    /// - Throws: `KaifangError.runtime` with SQLite's message.
    public func query(_ sql: String, _ bindings: [Cell] = []) throws -> [[Cell]] {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else {
            throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(stmt) }
        Self.bind(stmt, bindings)
        var out: [[Cell]] = []
        let n = sqlite3_column_count(stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(db)))") }
            var row: [Cell] = []
            row.reserveCapacity(Int(n))
            for c in 0..<n { row.append(Self.cell(stmt, c)) }
            out.append(row)
        }
        return out
    }

    /// The cell in column `c` of the current row of `stmt`.
    public static func cell(_ stmt: OpaquePointer?, _ c: Int32) -> Cell {
        switch sqlite3_column_type(stmt, c) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(stmt, c))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(stmt, c))
        default:
            guard let p = sqlite3_column_text(stmt, c) else { return .null }
            let len = Int(sqlite3_column_bytes(stmt, c))
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: len), as: UTF8.self))
        }
    }

    /// Streams rows (cells in the order of `columns`) without holding them all.
    /// - Parameters:
    ///   - every: keep one row in `every` (a deterministic sample; 1 keeps all).
    ///   - limit: stop after this many rows.
    /// - Throws: `KaifangError.runtime` with SQLite's message.
    public func forEachRow(columns: [String], every: Int = 1, limit: Int? = nil, _ body: (Int64, [Cell]) throws -> Void) throws {
        var stmt: OpaquePointer?
        let cols = columns.map(quoteIdentifier).joined(separator: ", ")
        var sql = "SELECT _row, \(cols) FROM rows"
        if every > 1 { sql += " WHERE _row % \(every) = 1" }
        sql += " ORDER BY _row"
        if let limit { sql += " LIMIT \(limit)" }
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else {
            throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(stmt) }
        var row: [Cell] = Array(repeating: .null, count: columns.count)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(db)))") }
            for c in 0..<columns.count { row[c] = Self.cell(stmt, Int32(c + 1)) }
            try body(sqlite3_column_int64(stmt, 0), row)
        }
    }

    /// Number of rows.
    public func rowCount() throws -> Int {
        if case .integer(let n)? = try query("SELECT count(*) FROM rows").first?.first { return Int(n) }
        return 0
    }
}
