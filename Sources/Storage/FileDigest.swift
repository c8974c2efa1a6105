import Crypto
import Foundation
import KaifangCore

/// SHA-256 of a file, read in 1 MiB blocks (version files kept in a cache, exported files).
public enum FileDigest {
    /// The file's SHA-256 as lower-case hex, and its size in bytes.
    /// - Throws: `KaifangError.runtime` when the file cannot be read.
    public static func sha256(_ path: String) throws -> (hex: String, bytes: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw KaifangError.runtime("cannot read \(path)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        var bytes = 0
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty {
            hasher.update(data: block)
            bytes += block.count
        }
        return (hasher.finalize().hexString, bytes)
    }
}
