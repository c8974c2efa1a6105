import Foundation
import KaifangCore

/// Text encodings Kaifang reads. GBK files are read as GB18030, its superset.
public enum TextEncoding: String, Sendable, CaseIterable {
    case utf8 = "utf-8"
    case gb18030

    /// Parses a `--encoding` value (`auto` is nil).
    /// - Throws: `KaifangError.badInput` naming the accepted values.
    public static func parse(_ s: String) throws -> TextEncoding? {
        switch s.lowercased() {
        case "auto": return nil
        case "utf-8", "utf8": return .utf8
        case "gb18030", "gbk", "gb2312": return .gb18030
        default: throw KaifangError.badInput("--encoding \(s) is not supported: use auto, utf-8 or gb18030 (gbk)")
        }
    }

    /// Guesses a file's encoding from its first MiB: UTF-8 when every byte sequence is valid
    /// UTF-8 (or it starts with a UTF-8 BOM), else GB18030 (what Excel writes for Chinese).
    /// - Throws: `KaifangError.notFound` when the file cannot be read.
    public static func detect(path: String) throws -> TextEncoding {
        let src = try FileByteSource(path: path)
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var n = 0
        while n < buf.count {
            let got = try buf.withUnsafeMutableBytes { try src.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[n...])) }
            if got == 0 { break }
            n += got
        }
        return detect(sample: buf[0..<n])
    }

    /// Guesses the encoding of text that starts with `sample` (the first MiB, or all of it).
    public static func detect(sample: ArraySlice<UInt8>) -> TextEncoding {
        let n = sample.count, b = sample.startIndex
        if n >= 3 && sample[b] == 0xEF && sample[b + 1] == 0xBB && sample[b + 2] == 0xBF { return .utf8 }
        let valid = sample.withUnsafeBufferPointer { ValueParser.validUTF8Prefix($0) }
        // A multi-byte character cut at the end of the sample is not evidence.
        return valid >= n - 3 && (valid == n || sample[b + valid] >= 0xC0) ? .utf8 : .gb18030
    }
}

/// Transcodes GB18030 (GBK) to UTF-8 with iconv while reading, in constant memory.
public final class GB18030Source: ByteSource {
    private let base: any ByteSource
    private let fileName: String
    private var cd: iconv_t
    private var input = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0, end = 0
    private var eof = false
    private var consumed: Int64 = 0
    private var lines = 1

    /// Wraps a source of GB18030 bytes.
    /// - Throws: `KaifangError.runtime` when iconv lacks GB18030.
    public init(_ base: any ByteSource, fileName: String) throws {
        self.base = base
        self.fileName = fileName
        let cd = iconv_open("UTF-8", "GB18030")
        guard cd != iconv_t(bitPattern: -1) else {
            throw KaifangError.runtime("this system's iconv cannot read GB18030: convert the file to UTF-8 first (iconv -f GB18030 -t UTF-8)")
        }
        self.cd = cd!
    }

    deinit { iconv_close(cd) }

    /// Bytes of the original file consumed so far.
    public var bytesRead: Int64 { consumed }

    private var output = [UInt8](repeating: 0, count: 1 << 16)
    private var outStart = 0, outEnd = 0

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        if outStart == outEnd {
            outStart = 0
            outEnd = try transcode()
            if outEnd == 0 { return 0 }
        }
        let n = min(buffer.count, outEnd - outStart)
        output.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + outStart, byteCount: n) }
        outStart += n
        return n
    }

    private func refill() throws {
        if start > 0 {
            input.withUnsafeMutableBytes { p in p.baseAddress!.copyMemory(from: p.baseAddress! + start, byteCount: end - start) }
            end -= start
            start = 0
        }
        if !eof && end < input.count {
            let n = try input.withUnsafeMutableBytes { try base.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[end...])) }
            if n == 0 { eof = true } else { end += n }
        }
    }

    /// Fills the internal output buffer with UTF-8; returns its length (0 at the end).
    private func transcode() throws -> Int {
        while true {
            if start == end { try refill(); if start == end { return 0 } }
            var inLeft = end - start
            var outLeft = output.count
            var failure: Int32 = 0
            input.withUnsafeMutableBytes { inPtr in
                output.withUnsafeMutableBytes { outPtr in
                    var inp: UnsafeMutablePointer<CChar>? = inPtr.baseAddress!.advanced(by: start).assumingMemoryBound(to: CChar.self)
                    var outp: UnsafeMutablePointer<CChar>? = outPtr.baseAddress!.assumingMemoryBound(to: CChar.self)
                    if iconv(cd, &inp, &inLeft, &outp, &outLeft) == -1 { failure = errno }
                }
            }
            let used = (end - start) - inLeft
            start += used
            consumed += Int64(used)
            let out = output.count - outLeft
            for i in 0..<out where output[i] == 0x0A { lines += 1 }
            if out > 0 { return out }
            switch failure {
            case EILSEQ:
                throw KaifangError.badInput("\(fileName):\(lines): byte \(consumed + 1) is not valid GB18030/GBK: check the file's encoding (--encoding utf-8 if it is UTF-8)")
            case EINVAL:
                // A character cut at the end of the input buffer: read more, unless the file ended.
                if eof { throw KaifangError.badInput("\(fileName):\(lines): the file ends inside a GB18030 character: it is truncated") }
                try refill()
            default:
                if used == 0 { try refill(); if start == end { return 0 } }
            }
        }
    }
}
