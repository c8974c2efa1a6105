import KaifangCore
import Crypto
import Foundation
import GRDBSQLite

/// SQLITE_TRANSIENT: tells SQLite to copy bound text before the call returns.
public let sqliteTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// Writes one immutable dataset version: a fresh SQLite file with a `rows` table typed after the
/// manifest and an index on each date, number and category field, fsynced. The content SHA-256
/// is computed over a canonical serialization of the typed values as they are written.
///
/// The file is written page by page in SQLite's file format (`BTreeFile.swift`): rows arrive in
/// rowid order and nothing ever updates a version, so the table's leaves are filled and written
/// as rows come, and each index is written from its keys sorted once at the end (gathered as
/// rows arrive) — with the `sqlite_stat1` figures ANALYZE would compute. SQLite then adds the
/// small `kaifang_version` table. An index whose keys mix storage classes or outgrow
/// `indexBudget` is left to SQLite's CREATE INDEX and ANALYZE.
public final class VersionWriter {
    /// The path being written (a temporary file until the catalog commits it).
    public let path: String
    private let manifest: DatasetManifest
    /// The file being written page by page (`VersionEngine.pages`), or
    private let file: PageFile?
    /// the connection SQLite writes it through (`VersionEngine.sqlite`).
    private let viaSQLite: SQLiteRowWriter?
    /// The fields with an index (positions in the manifest).
    private let indexed: [Int]
    /// Everything `append` changes, in one value (one exclusive access per row, not one per
    /// property touched).
    private var rows: RowEncoder
    /// Rows written so far.
    public var rowCount: Int { rows.rowCount }
    private var finished = false

    /// Keys held in memory for the indexes, in bytes (beyond it, SQLite sorts on disk).
    public static let defaultIndexBudget = 1 << 30

    /// Creates the file.
    /// - Parameters:
    ///   - indexBudget: bytes of index keys to hold in memory, over all indexes.
    ///   - engine: who writes the file's bytes (this process's choice unless given).
    /// - Throws: `KaifangError.runtime` when the file cannot be created.
    public init(path: String, manifest: DatasetManifest, indexBudget: Int = VersionWriter.defaultIndexBudget, engine: VersionEngine = .current) throws {
        self.path = path
        self.manifest = manifest
        let indexed = manifest.fields.indices.filter { manifest.fields[$0].type != .string || manifest.fields[$0].semantic == .category }
        self.indexed = indexed
        // Written by SQLite, the rows are only hashed here: SQLite makes the records and indexes.
        rows = RowEncoder(fields: manifest.fields, indexed: engine == .pages ? indexed : [], indexBudget: indexBudget)
        // The statements go into the file's schema as they are: let SQLite check them first.
        var mem: OpaquePointer?
        defer { sqlite3_close(mem) }
        guard sqlite3_open(":memory:", &mem) == SQLITE_OK,
              sqlite3_exec(mem, ([Self.tableSQL(manifest)] + indexed.map { Self.indexSQL(manifest.fields[$0]) }).joined(separator: ";"), nil, nil, nil) == SQLITE_OK else {
            throw KaifangError.runtime("cannot create a table for dataset \(manifest.id): \(mem.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory")")
        }
        switch engine {
        case .pages:
            file = try PageFile(path: path)
            viaSQLite = nil
        case .sqlite:
            file = nil
            viaSQLite = try SQLiteRowWriter(path: path, manifest: manifest)
        }
    }

    deinit {
        if !finished { unlink(path) }
    }

    static func sqlType(_ t: FieldType) -> String {
        switch t {
        case .integer, .boolean: "INTEGER"
        case .number: "REAL"
        case .string, .date, .datetime: "TEXT"
        }
    }

    static func tableSQL(_ m: DatasetManifest) -> String {
        "CREATE TABLE rows (_row INTEGER PRIMARY KEY, \(m.fields.map { "\(quoteIdentifier($0.name)) \(sqlType($0.type))" }.joined(separator: ", ")))"
    }

    static func indexName(_ f: FieldSpec) -> String { "ix_\(f.name)" }

    static func indexSQL(_ f: FieldSpec) -> String {
        "CREATE INDEX \(quoteIdentifier(indexName(f))) ON rows (\(quoteIdentifier(f.name)), _row)"
    }

    /// Appends one row (one cell per manifest field, in order).
    /// - Throws: `KaifangError.runtime` when the disk refuses, or a cell's kind cannot be stored
    ///   in its column.
    public func append(_ cells: [Cell]) throws {
        try rows.append(cells, file: file)
        try viaSQLite?.append(rowid: rows.rowCount, cells)
    }

    /// Builds each index whose keys were gathered: its root page and its number of distinct
    /// keys (nil for one left to SQLite).
    static func buildIndexes(_ keys: inout [IndexKeyCollector], file: PageFile) throws -> [(UInt32, Int)?] {
        /// Each index's keys and result, touched by one worker only.
        final class Slots: @unchecked Sendable {
            var keys: UnsafeMutableBufferPointer<IndexKeyCollector>
            var results: UnsafeMutableBufferPointer<Result<(UInt32, Int)?, any Error>>
            init(_ keys: [IndexKeyCollector]) {
                self.keys = .allocate(capacity: keys.count)
                _ = self.keys.initialize(from: keys)
                results = .allocate(capacity: keys.count)
                results.initialize(repeating: .success(nil))
            }
            deinit {
                keys.deinitialize().deallocate()
                results.deinitialize().deallocate()
            }
        }
        let slots = Slots(keys)
        keys = []
        DispatchQueue.concurrentPerform(iterations: slots.keys.count) { k in
            guard slots.keys[k].kind != .abandoned else { return }
            slots.results[k] = Result {
                var tree = IndexTreeWriter()
                var entry: [UInt8] = []
                let distinct = try slots.keys[k].forEachEntry { key, row, isLast in
                    // The record (key, _row, rowid): _row is the rowid, which every index entry
                    // of a rowid table ends with as well.
                    entry.removeAll(keepingCapacity: true)
                    let tk = key.serialType, tr = RecordValue.integer(row).serialType
                    let typesLength = SQLiteVarint.length(tk) + 2 * SQLiteVarint.length(tr)
                    RecordEncoder.appendHeaderSize(typesLength: typesLength, to: &entry)
                    SQLiteVarint.append(tk, to: &entry)
                    SQLiteVarint.append(tr, to: &entry)
                    SQLiteVarint.append(tr, to: &entry)
                    key.appendBody(tk, to: &entry)
                    RecordValue.integer(row).appendBody(tr, to: &entry)
                    RecordValue.integer(row).appendBody(tr, to: &entry)
                    try entry.withUnsafeBufferPointer { try tree.append(record: $0, isLast: isLast, file: file) }
                }
                slots.keys[k] = IndexKeyCollector(budget: 0)
                return (try tree.finish(file: file), distinct)
            }
        }
        return try slots.results.map { try $0.get() }
    }

    /// Writes the indexes and the schema, fsyncs and closes the file.
    /// - Returns: the content SHA-256 (hex).
    /// - Throws: `KaifangError.runtime`.
    public func finish() throws -> String {
        let fields = manifest.fields, rowCount = rows.rowCount
        var stats: [(String, String)] = []
        var leftToSQLite: [FieldSpec] = []
        var rowSets: [(field: String, sets: [(value: [UInt8], rows: [UInt32])])] = []
        var db: OpaquePointer?
        defer { if viaSQLite == nil { sqlite3_close(db) } }
        if let file {
            try finishPages(file, stats: &stats, leftToSQLite: &leftToSQLite, rowSets: &rowSets)
            guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
                throw KaifangError.runtime("cannot open version file \(path)")
            }
        } else if let viaSQLite {
            // SQLite holds the rows in its open transaction; it builds every index.
            db = viaSQLite.db
            leftToSQLite = indexed.map { fields[$0] }
        }
        func exec(_ sql: String) throws { try execute(sql, on: db, file: path) }
        let manifestJSON = String(decoding: try manifest.jsonData(), as: UTF8.self)
        if viaSQLite == nil { try exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN") }
        try exec("CREATE TABLE kaifang_version (key TEXT PRIMARY KEY, value TEXT)")
        try exec("INSERT INTO kaifang_version VALUES ('dataset', \(quoteLiteral(manifest.id))), ('manifest', \(quoteLiteral(manifestJSON)))")
        try exec("ANALYZE kaifang_version")
        try exec(RowSets.schema)
        if !leftToSQLite.isEmpty {
            try exec("PRAGMA threads=\(min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))); PRAGMA cache_size=-4096;")
            for field in leftToSQLite {
                try exec(Self.indexSQL(field))
                try exec("ANALYZE \(quoteIdentifier(Self.indexName(field)))")
            }
        }
        if let viaSQLite {
            for f in indexed where fields[f].semantic == .category {
                if let sets = try viaSQLite.rowSets(fields[f]) { rowSets.append((fields[f].name, sets)) }
            }
        }
        for r in rowSets { try RowSets.write(db, field: r.field, sets: r.sets, rowCount: rowCount) }
        for (index, stat) in stats {
            try exec("INSERT INTO sqlite_stat1 VALUES ('rows', \(quoteLiteral(index)), \(quoteLiteral(stat)))")
        }
        try exec("COMMIT")
        if viaSQLite == nil {
            sqlite3_close(db)
            db = nil
        }
        viaSQLite?.close()
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
        chmod(path, 0o444)
        finished = true
        return rows.hasher.finalize().hexString
    }

    /// Writes the table's last pages, the indexes from their gathered keys and the schema page;
    /// gives back the statistics, the indexes left to SQLite and the row sets.
    private func finishPages(_ file: PageFile, stats: inout [(String, String)], leftToSQLite: inout [FieldSpec],
                             rowSets: inout [(field: String, sets: [(value: [UInt8], rows: [UInt32])])]) throws {
        let tableRoot = try rows.table.finish(file: file)
        let fields = manifest.fields, rowCount = rows.rowCount
        var schema: [(type: String, name: String, table: String, root: UInt32, sql: String)] = [("table", "rows", "rows", tableRoot, Self.tableSQL(manifest))]
        // Row sets of the category fields, from the index keys (which the index build consumes).
        for (k, f) in rows.indexed.enumerated() where fields[f].semantic == .category {
            if let sets = rows.keys[k].rowSets(maxValues: RowSets.maxValues) { rowSets.append((fields[f].name, sets)) }
        }
        // The indexes are independent: sort and write them on every core (their pages
        // interleave in the file, which SQLite does not mind).
        let built = try Self.buildIndexes(&rows.keys, file: file)
        for (k, f) in rows.indexed.enumerated() {
            let field = fields[f]
            guard let (root, distinct) = built[k] else { leftToSQLite.append(field); continue }
            schema.append(("index", Self.indexName(field), "rows", root, Self.indexSQL(field)))
            if let stat = IndexKeyCollector.stat(rows: rowCount, distinct: distinct) { stats.append((Self.indexName(field), stat)) }
        }
        try writeSchema(schema, file: file)
    }
}

/// The per-row work of a version writer: the content hash, the table record, the index keys.
struct RowEncoder {
    enum Affinity { case integer, real, text }
    let fields: [FieldSpec]
    let affinities: [Affinity]
    /// Indexed fields (positions in `fields`) and their keys.
    let indexed: [Int]
    var keys: [IndexKeyCollector]
    var table = TableTreeWriter()
    var hasher = SHA256()
    private(set) var rowCount = 0

    init(fields: [FieldSpec], indexed: [Int], indexBudget: Int) {
        self.fields = fields
        affinities = fields.map {
            switch $0.type {
            case .integer, .boolean: .integer
            case .number: .real
            case .string, .date, .datetime: .text
            }
        }
        self.indexed = indexed
        keys = indexed.map { _ in IndexKeyCollector(budget: indexBudget / max(1, indexed.count)) }
        record.reserveCapacity(4096)
    }

    /// The hashed serialization of the row being appended, the record's serial types and body.
    private var rowBytes: [UInt8] = []
    private var record: [UInt8] = []
    private var types: [UInt64] = []
    private var body: [UInt8] = []

    /// Appends one row: one pass over the cells writes the hashed serialization, the record's
    /// serial types and body, and the index keys, each value read in place.
    mutating func append(_ cells: [Cell], file: PageFile?) throws {
        precondition(cells.count == fields.count)
        // The hashed serialization, per cell: a type byte (0 null, 1 integer, 2 real, 3 text),
        // the value (little-endian 8 bytes, or the UTF-8), then 0x1F; 0x1E ends the row.
        rowBytes.removeAll(keepingCapacity: true)
        body.removeAll(keepingCapacity: true)
        types.removeAll(keepingCapacity: true)
        // The record: _row (the rowid) is stored as NULL, then each cell as its column's
        // affinity makes SQLite store it.
        types.append(0)
        var typesLength = 1
        var k = 0
        for i in 0..<cells.count {
            let indexedHere = k < indexed.count && indexed[k] == i
            switch cells[i] {
            case .null:
                rowBytes.append(0x00)
                store(.null, indexedHere ? k : nil, &typesLength)
            case .integer(let v):
                rowBytes.append(0x01)
                withUnsafeBytes(of: v.littleEndian) { rowBytes.append(contentsOf: $0) }
                if affinities[i] == .text {
                    var s = String(v)
                    s.withUTF8 { store(.text($0), indexedHere ? k : nil, &typesLength) }
                } else {
                    store(.integer(v), indexedHere ? k : nil, &typesLength)
                }
            case .real(let d):
                rowBytes.append(0x02)
                withUnsafeBytes(of: d.bitPattern.littleEndian) { rowBytes.append(contentsOf: $0) }
                if d.isNaN {
                    store(.null, indexedHere ? k : nil, &typesLength)
                } else if affinities[i] == .integer && d == d.rounded(.towardZero) && abs(d) < 9.2e18 {
                    store(.integer(Int64(d)), indexedHere ? k : nil, &typesLength)
                } else if affinities[i] == .text {
                    throw mismatch(cells[i], i)
                } else {
                    store(.real(d), indexedHere ? k : nil, &typesLength)
                }
            case .text(let s):
                guard affinities[i] == .text else { throw mismatch(cells[i], i) }
                rowBytes.append(0x03)
                let inPlace: Void? = s.utf8.withContiguousStorageIfAvailable { b in
                    rowBytes.append(contentsOf: b)
                    store(.text(b), indexedHere ? k : nil, &typesLength)
                }
                if inPlace == nil {
                    var copy = s
                    copy.withUTF8 { b in
                        rowBytes.append(contentsOf: b)
                        store(.text(b), indexedHere ? k : nil, &typesLength)
                    }
                }
            }
            rowBytes.append(0x1F)
            if indexedHere { k += 1 }
        }
        rowBytes.append(0x1E)
        hasher.update(data: rowBytes)

        record.removeAll(keepingCapacity: true)
        RecordEncoder.appendHeaderSize(typesLength: typesLength, to: &record)
        for t in types { SQLiteVarint.append(t, to: &record) }
        record.append(contentsOf: body)
        rowCount += 1
        if let file { try record.withUnsafeBufferPointer { try table.append(rowid: Int64(rowCount), record: $0, file: file) } }
    }

    /// Adds a value as stored: its serial type, its body, its index key.
    @inline(__always)
    private mutating func store(_ v: RecordValue, _ index: Int?, _ typesLength: inout Int) {
        let t = v.serialType
        types.append(t)
        typesLength += SQLiteVarint.length(t)
        v.appendBody(t, to: &body)
        if let index { keys[index].add(v) }
    }

    private func mismatch(_ cell: Cell, _ i: Int) -> KaifangError {
        KaifangError.runtime("internal: a \(cell.kindName) value for the \(VersionWriter.sqlType(fields[i].type)) field '\(fields[i].name)'")
    }
}

extension Cell {
    var kindName: String {
        switch self {
        case .null: "null"
        case .integer: "integer"
        case .real: "real"
        case .text: "text"
        }
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

    /// The fields with row sets in this file and their chunk counts (`RowSets.fields`), once read.
    var rowSetFields: [String: Int64]?

    /// The `rows` table read from the file's pages (`TableFile`), opened on first use; nil when
    /// the file is not one that reader handles.
    public func rowsTable() -> TableFile? {
        if !tableOpened {
            tableOpened = true
            table = TableFile(path: path, db: db)
        }
        return table
    }
    private var table: TableFile?
    private var tableOpened = false

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
