import Foundation
import GRDBSQLite
import KaifangCore
import Synchronization

/// Who writes and reads the bytes of version files. `pages` (the default): Kaifang writes the
/// table and index pages itself (`BTreeFile.swift`) and serves pages in row order straight
/// from them (`TableFile`); `sqlite` (`kaifang --sqlite-only`): SQLite alone writes every byte
/// (INSERT, CREATE INDEX, ANALYZE) and answers every read, with no row sets used in serving —
/// the way to take Kaifang's own format code out of the path. Files are equivalent either way:
/// the same schema, rows, statistics and row sets, each passing `PRAGMA integrity_check`, and
/// either engine serves the other's files.
public enum VersionEngine: Sendable, Equatable {
    case pages
    case sqlite

    private static let chosen = Mutex<VersionEngine>(.pages)

    /// The engine of this process (set once at start from `--sqlite-only`).
    public static var current: VersionEngine {
        get { chosen.withLock { $0 } }
        set { chosen.withLock { $0 = newValue } }
    }
}

/// A version file's rows written through SQLite alone: one INSERT per row in one transaction,
/// then the indexes by CREATE INDEX and their statistics by ANALYZE (`VersionWriter.finish`).
final class SQLiteRowWriter {
    let db: OpaquePointer
    private var insert: OpaquePointer?
    private let path: String

    init(path: String, manifest: DatasetManifest) throws {
        self.path = path
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let handle else {
            sqlite3_close(handle)
            throw KaifangError.runtime("cannot create version file \(path)")
        }
        db = handle
        // The page size Kaifang's own writer uses.
        try exec("PRAGMA page_size=\(PageFile.pageSize); PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN")
        try exec(VersionWriter.tableSQL(manifest))
        let marks = Array(repeating: "?", count: manifest.fields.count + 1).joined(separator: ", ")
        guard sqlite3_prepare_v3(db, "INSERT INTO rows VALUES (\(marks))", -1, UInt32(SQLITE_PREPARE_PERSISTENT), &insert, nil) == SQLITE_OK else {
            throw failure()
        }
    }

    private var closed = false

    deinit { close() }

    /// Closes the connection (after the writer's COMMIT).
    func close() {
        guard !closed else { return }
        closed = true
        sqlite3_finalize(insert)
        insert = nil
        sqlite3_close(db)
    }

    func failure() -> KaifangError {
        KaifangError.runtime("version file \(path): \(String(cString: sqlite3_errmsg(db)))")
    }

    func exec(_ sql: String) throws { try execute(sql, on: db, file: path) }

    /// Inserts row `rowid`; the column affinities store each value as the page writer does.
    func append(rowid: Int, _ cells: [Cell]) throws {
        sqlite3_reset(insert)
        sqlite3_bind_int64(insert, 1, Int64(rowid))
        for (i, cell) in cells.enumerated() {
            let at = Int32(i + 2)
            switch cell {
            case .null: sqlite3_bind_null(insert, at)
            case .integer(let v): sqlite3_bind_int64(insert, at, v)
            case .real(let d): if d.isNaN { sqlite3_bind_null(insert, at) } else { sqlite3_bind_double(insert, at, d) }
            case .text(var s):
                s.withUTF8 { b in
                    if let p = b.baseAddress {
                        _ = sqlite3_bind_text(insert, at, UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self), Int32(b.count), sqliteTransient)
                    } else {
                        _ = sqlite3_bind_text(insert, at, "", 0, sqliteTransient)
                    }
                }
            }
        }
        guard sqlite3_step(insert) == SQLITE_DONE else { throw failure() }
    }

    /// The row sets of a category field, read back from the table: as the page writer gathers
    /// them (text values only, at most `RowSets.maxValues` of them), nil otherwise.
    func rowSets(_ field: FieldSpec) throws -> [(value: [UInt8], rows: [UInt32])]? {
        let column = quoteIdentifier(field.name)
        let shape = try query("SELECT count(*) FILTER (WHERE typeof(\(column)) = 'text'), count(*) FILTER (WHERE typeof(\(column)) IN ('integer', 'real', 'blob')), count(DISTINCT \(column)) FROM rows")
        guard shape[0] > 0, shape[1] == 0, shape[2] <= RowSets.maxValues else { return nil }
        var stmt: OpaquePointer?
        defer { sqlite3_finalize(stmt) }
        guard sqlite3_prepare_v2(db, "SELECT \(column), _row FROM rows WHERE \(column) IS NOT NULL ORDER BY \(column), _row", -1, &stmt, nil) == SQLITE_OK else { throw failure() }
        var sets: [(value: [UInt8], rows: [UInt32])] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure() }
            let p = sqlite3_column_text(stmt, 0)
            let value = p.map { Array(UnsafeBufferPointer(start: $0, count: Int(sqlite3_column_bytes(stmt, 0)))) } ?? []
            let row = UInt32(sqlite3_column_int64(stmt, 1))
            if sets.last?.value == value { sets[sets.count - 1].rows.append(row) } else { sets.append((value, [row])) }
        }
        return sets
    }

    private func query(_ sql: String) throws -> [Int] {
        var stmt: OpaquePointer?
        defer { sqlite3_finalize(stmt) }
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, sqlite3_step(stmt) == SQLITE_ROW else { throw failure() }
        return (0..<sqlite3_column_count(stmt)).map { Int(sqlite3_column_int64(stmt, $0)) }
    }
}

/// Runs SQL statements on a version file being written.
/// - Throws: `KaifangError.runtime` naming the file, with SQLite's message.
func execute(_ sql: String, on db: OpaquePointer?, file path: String) throws {
    var err: UnsafeMutablePointer<CChar>?
    if sqlite3_exec(db, sql, nil, nil, &err) != SQLITE_OK {
        let msg = err.map { String(cString: $0) } ?? "unknown error"
        sqlite3_free(err)
        throw KaifangError.runtime("version file \(path): \(msg)")
    }
}
