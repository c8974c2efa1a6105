import Foundation
import GRDBSQLite
import KaifangCore

/// Read-only SQLite connections to the catalog, without GRDB, for the one lookup every API
/// request makes (the publication stamp). Each is one autocommit SELECT on a prepared statement
/// kept per connection; GRDB's pool costs several times the query itself there (a dispatch
/// queue hop and a pool checkout per read). Connections are made on demand and kept, at most
/// `limit`.
final class RawReads: @unchecked Sendable {
    private final class Connection {
        let db: OpaquePointer
        var statements: [String: OpaquePointer] = [:]
        init(db: OpaquePointer) { self.db = db }
        deinit {
            for s in statements.values { sqlite3_finalize(s) }
            sqlite3_close(db)
        }
    }

    private let path: String
    private let limit: Int
    private let lock = NSLock()
    private var idle: [Connection] = []

    init(path: String, limit: Int = 8) {
        self.path = path
        self.limit = limit
    }

    /// Runs `body` with `sql` prepared and `text` bound to its parameters in order; the
    /// statement is reset afterwards.
    func withStatement<T>(_ sql: String, _ text: [String], _ body: (OpaquePointer) throws -> T) throws -> T {
        let c = try checkout()
        defer { checkin(c) }
        let stmt: OpaquePointer
        if let s = c.statements[sql] {
            stmt = s
        } else {
            var p: OpaquePointer?
            guard sqlite3_prepare_v3(c.db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &p, nil) == SQLITE_OK, let p else {
                throw KaifangError.runtime("catalog read failed: \(String(cString: sqlite3_errmsg(c.db)))")
            }
            c.statements[sql] = p
            stmt = p
        }
        defer { sqlite3_reset(stmt); sqlite3_clear_bindings(stmt) }
        for (i, t) in text.enumerated() { sqlite3_bind_text(stmt, Int32(i + 1), t, -1, sqliteTransient) }
        return try body(stmt)
    }

    /// The text of column `i` of the current row, nil for NULL.
    static func text(_ stmt: OpaquePointer, _ i: Int32) -> String? {
        guard let p = sqlite3_column_text(stmt, i) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, i))), as: UTF8.self)
    }

    private func checkout() throws -> Connection {
        if let c = lock.withLock({ idle.popLast() }) { return c }
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            sqlite3_close(db)
            throw KaifangError.runtime("cannot open the catalog \(path)")
        }
        sqlite3_busy_timeout(db, 10_000)
        return Connection(db: db)
    }

    private func checkin(_ c: Connection) {
        lock.withLock { if idle.count < limit { idle.append(c) } }
    }
}
