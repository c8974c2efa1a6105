import CArchive
import Foundation
import KaifangCore

/// Bytes already read from a stream (a sample taken to detect its encoding), then the rest of it.
public final class PrefixedByteSource: ByteSource {
    private let prefix: [UInt8]
    private var offset = 0
    private let rest: any ByteSource

    public init(prefix: [UInt8], rest: any ByteSource) {
        self.prefix = prefix; self.rest = rest
    }

    /// Reads up to `count` bytes of `source` (fewer only at its end) and returns them with a
    /// source that gives them again, then the rest.
    public static func sample(_ source: any ByteSource, count: Int) throws -> (sample: [UInt8], source: PrefixedByteSource) {
        var buf = [UInt8](repeating: 0, count: count)
        var n = 0
        while n < count {
            let got = try buf.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[n...])) }
            if got == 0 { break }
            n += got
        }
        buf.removeSubrange(n...)
        return (buf, PrefixedByteSource(prefix: buf, rest: source))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if offset < prefix.count {
            let n = min(buffer.count, prefix.count - offset)
            prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        }
        return try rest.read(into: buffer)
    }
}

/// A gzip stream (RFC 1952) inflated while reading, with libarchive, in constant memory. The
/// compressed bytes come from another source (an upload's), so whatever that source throws
/// (a stream cut short) reaches the reader.
public final class GzipByteSource: ByteSource {
    private var archive: OpaquePointer?
    private let name: String
    fileprivate let base: any ByteSource
    /// Compressed bytes handed to libarchive (which reads them after the callback returns, so
    /// they live in memory of their own).
    fileprivate let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    fileprivate var baseError: (any Error)?

    /// - Throws: `KaifangError.badInput` when the stream is not gzip.
    public init(_ base: any ByteSource, name: String) throws {
        self.base = base
        self.name = name
        guard let a = archive_read_new() else { throw KaifangError.runtime("libarchive: out of memory") }
        archive_read_support_filter_gzip(a)
        archive_read_support_format_raw(a)
        archive = a
        let opened = archive_read_open(a, Unmanaged.passUnretained(self).toOpaque(), nil, { _, context, out in
            let me = Unmanaged<GzipByteSource>.fromOpaque(context!).takeUnretainedValue()
            do {
                let n = try me.base.read(into: me.input)
                out!.pointee = UnsafeRawPointer(me.input.baseAddress)
                return n
            } catch {
                me.baseError = error
                return -1
            }
        }, nil)
        var entry: OpaquePointer?
        guard opened == ARCHIVE_OK, archive_read_next_header(a, &entry) == ARCHIVE_OK, archive_filter_code(a, 0) == ARCHIVE_FILTER_GZIP else {
            if let e = baseError { throw e }
            throw KaifangError.badInput("\(name) is not gzip: send it without Content-Encoding, or compress it with gzip")
        }
    }

    deinit {
        archive_read_free(archive)
        input.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = archive_read_data(archive, buffer.baseAddress, buffer.count)
        if n < 0 {
            if let e = baseError { throw e }
            throw Bundle.error(archive, "\(name): the gzip stream is damaged")
        }
        return n
    }
}
