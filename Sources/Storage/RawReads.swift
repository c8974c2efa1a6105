import Foundation
import GRDBSQLite
import KaifangCore
import VersionFormat

/// Read-only SQLite connections to the catalog, without GRDB, for the one lookup every API
/// request makes (the publication stamp): `VersionReader`s (read-only, query-only, with their
/// cache of prepared statements) on the catalog file. GRDB's pool costs several times the
/// query itself there (a dispatch queue hop and a pool checkout per read). Connections are made
/// on demand and kept, at most `limit`.
final class RawReads: @unchecked Sendable {
    private let path: String
    private let limit: Int
    private let lock = NSLock()
    private var idle: [VersionReader] = []

    init(path: String, limit: Int = 8) {
        self.path = path
        self.limit = limit
    }

    /// Runs `body` with `sql` prepared and `text` bound to its parameters in order; the
    /// statement is reset afterwards.
    func withStatement<T>(_ sql: String, _ text: [String], _ body: (OpaquePointer) throws -> T) throws -> T {
        let reader = try checkout()
        defer { checkin(reader) }
        return try reader.withStatement(sql, text.map { .text($0) }, body)
    }

    /// The text of column `i` of the current row, nil for NULL.
    static func text(_ stmt: OpaquePointer, _ i: Int32) -> String? {
        let cell = VersionReader.cell(stmt, i)
        return cell == .null ? nil : cell.text
    }

    private func checkout() throws -> VersionReader {
        if let r = lock.withLock({ idle.popLast() }) { return r }
        let reader: VersionReader
        do { reader = try VersionReader(path: path) } catch { throw KaifangError.runtime("cannot open the catalog \(path)") }
        // The writer may hold the WAL index briefly (a checkpoint restarting the log).
        sqlite3_busy_timeout(reader.db, 10_000)
        return reader
    }

    private func checkin(_ reader: VersionReader) {
        lock.withLock { if idle.count < limit { idle.append(reader) } }
    }
}
