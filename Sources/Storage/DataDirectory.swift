import KaifangCore
import Crypto
import Foundation

/// The data directory's layout (docs/steward-guide.md): `catalog.sqlite`, `secret.key`,
/// `versions/<dataset>/<n>.sqlite`, `jobs/<job id>/`, `rejects/`.
public struct DataDirectory: Sendable {
    /// The root folder.
    public let root: URL

    /// Names a data directory (nothing is created).
    /// The root's path, ending in "/" (joined with relative paths per request without URL work).
    let rootPrefix: String

    public init(path: String) {
        self.root = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
        let p = root.path
        self.rootPrefix = p.hasSuffix("/") ? p : p + "/"
    }

    public var catalogPath: String { root.appendingPathComponent("catalog.sqlite").path }
    public var secretPath: String { root.appendingPathComponent("secret.key").path }
    public var versionsDir: URL { root.appendingPathComponent("versions", isDirectory: true) }
    public var jobsDir: URL { root.appendingPathComponent("jobs", isDirectory: true) }
    public var rejectsDir: URL { root.appendingPathComponent("rejects", isDirectory: true) }
    public var tmpDir: URL { root.appendingPathComponent("tmp", isDirectory: true) }

    /// The file of one dataset version, relative to the root (as stored in the catalog).
    public static func versionRelativePath(dataset: String, number: Int) -> String {
        "versions/\(dataset)/\(number).sqlite"
    }

    /// Absolute path of a relative path stored in the catalog.
    public func absolute(_ relative: String) -> String {
        relative.hasPrefix("/") ? rootPrefix + relative.dropFirst() : rootPrefix + relative
    }

    /// Whether `init` has run here.
    public var isInitialized: Bool { FileManager.default.fileExists(atPath: catalogPath) }

    /// Creates the folders a process works in (temporary files, rejects, jobs) and no secret:
    /// the working directory of a replica of a shared store, which keeps the secret itself.
    /// - Throws: `KaifangError.runtime` when the folder cannot be created.
    public func prepareLocal() throws {
        do {
            for dir in [root, jobsDir, rejectsDir, tmpDir] {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            }
        } catch {
            throw KaifangError.runtime("cannot create the working directory \(root.path): check that its parent exists and is writable", cause: error)
        }
    }

    /// Creates the folders and the platform secret (32 random bytes, mode 0600) if missing.
    /// - Throws: `KaifangError.runtime` when the folder cannot be created.
    public func prepare() throws {
        let fm = FileManager.default
        do {
            for dir in [root, versionsDir, jobsDir, rejectsDir, tmpDir] {
                try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            }
        } catch {
            throw KaifangError.runtime("cannot create the data directory \(root.path): check that its parent exists and is writable", cause: error)
        }
        if !fm.fileExists(atPath: secretPath) {
            var bytes = [UInt8](repeating: 0, count: 32)
            var rng = SystemRandomNumberGenerator()
            for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
            let fd = open(secretPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw KaifangError.runtime("cannot create \(secretPath): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, 32) }
            guard written == 32, fsync(fd) == 0 else { throw KaifangError.runtime("cannot write \(secretPath)") }
        }
    }

    /// The platform secret (for pseudonym keys).
    /// - Throws: `KaifangError.runtime` if the file is missing or not 32 bytes, or readable by others.
    public func secret() throws -> SymmetricKey {
        guard let data = FileManager.default.contents(atPath: secretPath), data.count == 32 else {
            throw KaifangError.runtime("\(secretPath) is missing or damaged: run `kaifang init` on this data directory")
        }
        return SymmetricKey(data: data)
    }

    /// Removes temporary files left by an interrupted import.
    /// Every entry of `tmp/` is named after the process that made it (`<pid>-…`); those of
    /// processes that have ended are removed, those of running ones (an import or a job in
    /// another process) are left alone.
    public func sweepTemporaryFiles() {
        let fm = FileManager.default
        guard let items = try? fm.contentsOfDirectory(atPath: tmpDir.path) else { return }
        for item in items {
            if let pid = Int32(item.prefix { $0.isASCII && $0.isNumber }), item.dropFirst(String(pid).count).first == "-",
               pid == getpid() || kill(pid, 0) == 0 || errno == EPERM {
                continue
            }
            try? fm.removeItem(atPath: tmpDir.appendingPathComponent(item).path)
        }
    }

    /// A fresh name under `tmp/`, owned by this process: `name` or a random one, then `suffix`.
    public func temporaryFile(suffix: String, name: String? = nil) -> String {
        tmpDir.appendingPathComponent("\(getpid())-\(name ?? UUID().uuidString.lowercased())\(suffix)").path
    }
}
