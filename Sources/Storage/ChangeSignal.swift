import Foundation
import Synchronization

/// `catalog.changes` in the data directory: a file that grows by one byte after every committed
/// catalog write except read events, in whichever process made it (the server, a CLI command).
/// A reader that caches what it read from the catalog notes the file's mark (device, inode,
/// size, change time) *before* reading, and trusts its copy only while the mark is unchanged.
///
/// Why: the catalog is in WAL mode and the server commits read events all the time; after any
/// commit by another connection, SQLite drops a reader's page cache, so the one lookup every
/// request makes (the publication stamp) cost 3–5× a cached read. A `stat` costs a system call.
///
/// Order makes it safe: the writer commits, then appends; a command returns only after both.
/// A reader that sees an old mark therefore either reads before the command returned, or sees
/// a new mark and reads again. If the append fails the file is removed, and with no file
/// nothing is cached (every lookup reads the catalog) until the next write creates it again.
final class ChangeSignal: Sendable {
    struct Mark: Equatable {
        let device: UInt64, inode: UInt64, size: Int64, changedSeconds: Int, changedNanos: Int
    }

    let path: String
    /// The file, kept open: `fstat` on it saves the path walk of a `stat` on every request. A
    /// file removed or replaced since (its link count drops to zero) is opened again by path.
    private let descriptor = Mutex<Int32>(-1)

    init(path: String) { self.path = path }

    deinit { descriptor.withLock { if $0 >= 0 { close($0) } } }

    /// The file's current mark; nil when it cannot be read.
    func mark() -> Mark? {
        descriptor.withLock { fd -> Mark? in
            var st = stat()
            if fd >= 0, fstat(fd, &st) == 0, st.st_nlink > 0 { return Self.mark(st) }
            if fd >= 0 { close(fd) }
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, fstat(fd, &st) == 0 else { return nil }
            return Self.mark(st)
        }
    }

    private static func mark(_ st: stat) -> Mark {
        Mark(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
             changedSeconds: Int(st.st_ctim.tv_sec), changedNanos: Int(st.st_ctim.tv_nsec))
    }

    /// Appends one byte (creating the file if needed); on failure removes the file.
    func bump() {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        var ok = false
        if fd >= 0 {
            var newline: UInt8 = 0x0A
            while true {
                let n = write(fd, &newline, 1)
                if n == 1 { ok = true; break }
                if n < 0 && errno == EINTR { continue }
                break
            }
            close(fd)
        }
        if !ok { unlink(path) }
    }
}

/// Values read from the catalog, each kept with the `ChangeSignal` mark seen before it was
/// read: a copy is used only while the mark is the same.
final class SignalledCache<Value: Sendable>: Sendable {
    private let entries = Mutex<[String: (mark: ChangeSignal.Mark, value: Value)]>([:])
    private let limit: Int

    init(limit: Int = 4_096) { self.limit = limit }

    /// The cached value of `key` if read under `mark`, else `read()`'s (cached under `mark`).
    func value(_ key: String, mark: ChangeSignal.Mark?, read: () throws -> Value) rethrows -> Value {
        guard let mark else { return try read() }
        if let hit = entries.withLock({ $0[key] }), hit.mark == mark { return hit.value }
        let value = try read()
        entries.withLock { e in
            if e.count >= limit { e.removeAll(keepingCapacity: true) }
            e[key] = (mark, value)
        }
        return value
    }
}
