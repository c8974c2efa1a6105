import Foundation
import Storage
import VersionFormat

/// Keeps read-only connections to version files for reuse across requests (opening a file per
/// request costs more than the query of a page). At most `perFile` idle connections per file.
/// Only committed version files come here (they are never written again), so connections are
/// opened `immutable`.
package final class VersionPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [String: [VersionReader]] = [:]
    private let perFile: Int

    package init(perFile: Int = 8) { self.perFile = perFile }

    /// Runs `body` with a connection to `path`, returning it to the pool afterwards.
    package func with<T>(_ path: String, _ body: (VersionReader) throws -> T) throws -> T {
        let reader = try checkout(path)
        defer { checkin(reader) }
        return try body(reader)
    }

    package func checkout(_ path: String) throws -> VersionReader {
        lock.lock()
        if var list = idle[path], let r = list.popLast() {
            idle[path] = list
            lock.unlock()
            return r
        }
        lock.unlock()
        return try VersionReader(path: path, immutable: true)
    }

    package func checkin(_ reader: VersionReader) {
        lock.lock()
        defer { lock.unlock() }
        var list = idle[reader.path, default: []]
        if list.count < perFile { list.append(reader) }
        idle[reader.path] = list
    }
}
