import Crypto
import Foundation
import KaifangCore
import PostgresNIO
import Storage

/// Where the shared store keeps version files: immutable SQLite files named by the SHA-256 of
/// their bytes, in the database (1 MiB chunks) or in a folder every replica mounts.
enum BlobStore: Sendable {
    case database
    case folder(String)

    static let chunkSize = 1 << 20

    /// Stores the file at `path` unless a file with its hash is already stored.
    /// - Returns: the file's SHA-256 (hex).
    /// - Throws: `KaifangError.runtime` when the file cannot be read or stored.
    func store(path: String, client: PGClient) throws -> String {
        let sha = try VersionCache.sha256(of: path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        switch self {
        case .database:
            try client.transaction { tx in
                guard !(try tx.query("""
                    INSERT INTO blobs (sha256, size, chunks, created_at) VALUES (\(sha), \(size), \(Int((size + Int64(Self.chunkSize) - 1) / Int64(Self.chunkSize))), \(CatalogRules.now()))
                    ON CONFLICT (sha256) DO NOTHING RETURNING sha256
                    """)).isEmpty else { return }
                guard let handle = FileHandle(forReadingAtPath: path) else { throw KaifangError.runtime("cannot read \(path)") }
                defer { try? handle.close() }
                var n = 0
                while let chunk = try handle.read(upToCount: Self.chunkSize), !chunk.isEmpty {
                    try tx.query("INSERT INTO blob_chunks (sha256, n, data) VALUES (\(sha), \(n), \(chunk))")
                    n += 1
                }
            }
        case .folder(let dir):
            let target = (dir as NSString).appendingPathComponent("\(sha).sqlite")
            if !FileManager.default.fileExists(atPath: target) {
                let part = (dir as NSString).appendingPathComponent(".\(sha).\(getpid()).part")
                do {
                    try? FileManager.default.removeItem(atPath: part)
                    try FileManager.default.copyItem(atPath: path, toPath: part)
                    try VersionCache.fsync(part)
                    guard rename(part, target) == 0 else { throw KaifangError.runtime("cannot move \(part) into place: \(String(cString: strerror(errno)))") }
                } catch let e as KaifangError {
                    throw e
                } catch {
                    throw KaifangError.runtime("cannot copy the version file into the shared folder \(dir)", cause: error)
                }
            }
            try client.query("INSERT INTO blobs (sha256, size, chunks, created_at) VALUES (\(sha), \(size), 0, \(CatalogRules.now())) ON CONFLICT (sha256) DO NOTHING")
        }
        return sha
    }

    /// Writes the stored file `sha256` to `target` (the caller checks its hash).
    func fetch(sha256 sha: String, to target: String, client: PGClient) throws {
        switch self {
        case .database:
            guard let chunks = try client.query("SELECT chunks FROM blobs WHERE sha256 = \(sha)").first?.int("chunks") else {
                throw KaifangError.runtime("the store has no version file \(sha.prefix(12))…")
            }
            guard FileManager.default.createFile(atPath: target, contents: nil), let out = FileHandle(forWritingAtPath: target) else {
                throw KaifangError.runtime("cannot write \(target)")
            }
            defer { try? out.close() }
            var n = 0
            while n < chunks {
                let upTo = min(chunks, n + 8)
                let rows = try client.query("SELECT n, data FROM blob_chunks WHERE sha256 = \(sha) AND n >= \(n) AND n < \(upTo) ORDER BY n")
                guard rows.count == upTo - n else { throw KaifangError.runtime("version file \(sha.prefix(12))… is missing chunks in the store") }
                for r in rows { try out.write(contentsOf: try r.data("data")) }
                n = upTo
            }
            try out.synchronize()
        case .folder(let dir):
            let source = (dir as NSString).appendingPathComponent("\(sha).sqlite")
            do {
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: source, toPath: target)
            } catch {
                throw KaifangError.runtime("cannot read version file \(sha.prefix(12))… from the shared folder \(dir)", cause: error)
            }
        }
    }
}

/// A replica's local copies of version files, bounded in bytes, least recently used evicted
/// first. A file's SHA-256 is checked before this process first opens it; one that differs
/// (damaged on disk) is removed and fetched again, and a fetched copy that differs is refused.
final class VersionCache: @unchecked Sendable {
    let folder: URL
    let bound: Int64
    /// `folder`'s path, made once: a request asks for its file's path, and `URL` parses.
    private let folderPath: String
    private let lock = NSLock()
    /// Files checked by this process, with when each was last used.
    private var verified: [String: Date] = [:]
    private var fetching: [String: NSCondition] = [:]

    init(folder: URL, bound: Int64) {
        self.folder = folder
        self.bound = bound
        folderPath = folder.path
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func path(_ sha: String) -> String { folderPath + "/" + sha + ".sqlite" }

    /// Whether `sha` was checked by this process and its file is still there (one `access`
    /// call: every request asks it), marking it used. The caller holds `lock`.
    private func hit(_ sha: String, at target: String) -> Bool {
        guard verified[sha] != nil, access(target, F_OK) == 0 else { return false }
        verified[sha] = Date()
        return true
    }

    /// The local path of file `sha`, verified, fetched with `fetch` first when needed.
    func file(sha256 sha: String, fetch: (String) throws -> Void) throws -> String {
        let target = path(sha)
        lock.lock()
        if hit(sha, at: target) {
            lock.unlock()
            return target
        }
        // One fetch per file at a time in this process.
        while let busy = fetching[sha] {
            lock.unlock()
            busy.lock(); _ = busy.wait(until: Date().addingTimeInterval(1)); busy.unlock()
            lock.lock()
            if hit(sha, at: target) { lock.unlock(); return target }
        }
        let mine = NSCondition()
        fetching[sha] = mine
        lock.unlock()
        defer {
            lock.lock(); fetching[sha] = nil; lock.unlock()
            mine.lock(); mine.broadcast(); mine.unlock()
        }
        if FileManager.default.fileExists(atPath: target) {
            if (try? Self.sha256(of: target)) == sha {
                remember(sha)
                return target
            }
            // Damaged since it was cached: fetch it again.
            try? FileManager.default.removeItem(atPath: target)
        }
        let part = folder.appendingPathComponent(".\(sha).\(getpid()).part").path
        try? FileManager.default.removeItem(atPath: part)
        do {
            try fetch(part)
            guard try Self.sha256(of: part) == sha else {
                throw KaifangError.runtime("the store's copy of version file \(sha.prefix(12))… does not match its hash: it is not served")
            }
            guard rename(part, target) == 0 else { throw KaifangError.runtime("cannot move a fetched version file into \(folder.path)") }
        } catch {
            try? FileManager.default.removeItem(atPath: part)
            throw error
        }
        remember(sha)
        evict(keeping: sha)
        return target
    }

    /// Takes in a file this process just wrote and hashed (an import), so it is not fetched back.
    func adopt(path source: String, sha256 sha: String) throws {
        let target = path(sha)
        if !FileManager.default.fileExists(atPath: target) {
            if link(source, target) != 0 {
                try? FileManager.default.copyItem(atPath: source, toPath: target)
            }
        }
        guard FileManager.default.fileExists(atPath: target) else { return }
        remember(sha)
        evict(keeping: sha)
    }

    private func remember(_ sha: String) {
        lock.lock(); verified[sha] = Date(); lock.unlock()
    }

    /// Removes least recently used files until the cache is within its bound (never `keeping`).
    /// A file still open keeps being readable (its pages stay until closed).
    func evict(keeping: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        var files: [(sha: String, size: Int64, used: Date)] = []
        var total: Int64 = 0
        lock.lock()
        for name in names where name.hasSuffix(".sqlite") {
            let sha = String(name.dropLast(7))
            let attrs = try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)
            let size = (attrs?[.size] as? Int64) ?? 0
            total += size
            files.append((sha, size, verified[sha] ?? (attrs?[.modificationDate] as? Date) ?? .distantPast))
        }
        lock.unlock()
        guard total > bound else { return }
        for f in files.sorted(by: { $0.used < $1.used }) where f.sha != keeping {
            try? FileManager.default.removeItem(atPath: path(f.sha))
            lock.lock(); verified[f.sha] = nil; lock.unlock()
            total -= f.size
            if total <= bound { break }
        }
    }

    /// SHA-256 of a file (hex).
    static func sha256(of path: String) throws -> String { try FileDigest.sha256(path).hex }

    static func fsync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KaifangError.runtime("cannot open \(path) to sync it") }
        defer { close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw KaifangError.runtime("cannot sync \(path): \(String(cString: strerror(errno)))") }
    }
}
