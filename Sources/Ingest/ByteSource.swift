import KaifangCore
import Foundation

/// A stream of bytes read in chunks: a file, standard input, or bytes in memory.
public protocol ByteSource: AnyObject {
    /// Reads up to `count` bytes into `buffer` at `offset`; returns 0 at the end.
    /// - Throws: `KaifangError.runtime` when the read fails.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Reads a file descriptor (a file or a pipe) with `read(2)`.
public final class FileByteSource: ByteSource {
    private let fd: Int32
    private let owned: Bool
    /// The file's size when known (for progress), else nil.
    public let size: Int64?
    /// Bytes read so far.
    public private(set) var bytesRead: Int64 = 0

    /// Opens a file for reading.
    /// - Throws: `KaifangError.notFound` when the file cannot be opened.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw KaifangError.notFound("\(path): cannot open the file (\(String(cString: strerror(errno)))): check the path")
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw KaifangError.badInput("\(path) is a directory: give a file")
        }
        self.fd = fd
        self.owned = true
        self.size = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? Int64(st.st_size) : nil
    }

    /// Wraps a descriptor the caller owns (standard input).
    public init(fileDescriptor: Int32) {
        self.fd = fileDescriptor
        self.owned = false
        self.size = nil
    }

    deinit { if owned { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { bytesRead += Int64(n); return n }
            if errno == EINTR { continue }
            throw KaifangError.runtime("read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// Bytes already in memory (tests, small uploads, bundle members).
public final class MemoryByteSource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0

    /// Wraps bytes.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    /// Wraps a string's UTF-8.
    public convenience init(_ string: String) { self.init(Array(string.utf8)) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        if n <= 0 { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }
}
