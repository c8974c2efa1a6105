import Foundation
import KaifangCore
import Masking

/// Buffered output to a file descriptor (standard output), flushed in 256 KiB writes.
public final class ByteSink {
    private let fd: Int32
    public private(set) var buffer: [UInt8] = []
    /// Bytes written so far.
    public private(set) var written: Int64 = 0

    public init(fileDescriptor: Int32) {
        self.fd = fileDescriptor
        buffer.reserveCapacity(1 << 18)
    }

    @inline(__always) public func append(_ b: UInt8) { buffer.append(b) }
    @inline(__always) public func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) { buffer.append(contentsOf: bytes) }
    @inline(__always) public func append(contentsOf bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    /// Writes out the buffer when it is large.
    @inline(__always) public func flushIfFull() throws { if buffer.count >= 1 << 18 { try flush() } }

    /// Writes out the buffer.
    /// - Throws: `KaifangError.runtime` when the write fails (a closed pipe).
    public func flush() throws {
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        try pending.withUnsafeBufferPointer { try writeOut($0) }
    }

    /// Writes `bytes` straight to the descriptor, after what is buffered (for callers that
    /// fill their own buffer in a hot loop).
    /// - Throws: `KaifangError.runtime` when the write fails (a closed pipe).
    public func write(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        try flush()
        try writeOut(bytes)
    }

    private func writeOut(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, base + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw KaifangError.runtime("write failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        written += Int64(bytes.count)
    }
}

/// Streams a CSV file through a masking plan (`kaifang mask`): constant memory, UTF-8 bytes in,
/// UTF-8 bytes out. Columns are matched to fields by header (name or title); columns a
/// license does not grant are dropped; a header column that is no field is refused.
public enum CSVMasker {
    /// Masks `reader`'s rows into `sink`.
    /// - Returns: the number of data rows written.
    /// - Throws: `KaifangError.badInput` for a header that does not match the manifest or a
    ///   malformed CSV; `.runtime` when output fails.
    @discardableResult
    public static func run(reader: CSVReader, plan: MaskingPlan, manifest: DatasetManifest, sink: ByteSink) throws -> Int {
        guard try reader.next() else {
            throw KaifangError.badInput("\(reader.fileName): the file is empty: it needs a header line")
        }
        // For each output column: the CSV column it reads and the plan column it applies.
        var mapping: [(csv: Int, plan: Int)] = []
        var seen = Set<Int>()
        for col in 0..<reader.fieldCount {
            let header = reader.string(col)
            guard let fi = manifest.fields.firstIndex(where: { $0.matches(header: header) }) else {
                throw KaifangError.badInput("\(reader.fileName):\(reader.position(ofField: col)): header column \(col + 1) '\(header)' is not a field of the manifest: the mask refuses columns it has no rule for")
            }
            guard seen.insert(fi).inserted else {
                throw KaifangError.badInput("\(reader.fileName):\(reader.position(ofField: col)): field '\(manifest.fields[fi].name)' appears twice in the header")
            }
            if plan.columns[fi].included { mapping.append((col, fi)) }
        }
        // The hot loop writes into a local buffer (no class property, so no exclusivity or
        // uniqueness checks per byte) and masks each value straight into it; the header too.
        var out = ByteBuilder(capacity: (1 << 18) + (1 << 16))
        for (i, m) in mapping.enumerated() {
            if i > 0 { out.append(0x2C) }
            let mark = out.count
            out.append(manifest.fields[m.plan].name)
            CSVBytes.quoteTail(&out, from: mark)
        }
        out.append(0x0A)
        var scratch = MaskScratch()
        var typed = ByteBuilder(capacity: 64)
        let masker = CSVLineMasker(plan: plan, columns: mapping.map { ($0.csv, $0.plan) })
        // Fields read in place from a comma-separated file hold no byte that forces quoting.
        let commaSeparated = reader.delimiter == 0x2C
        var rows = 0
        let width = reader.fieldCount
        while try reader.next() {
            rows += 1
            if reader.fieldCount != width {
                throw KaifangError.badInput("\(reader.fileName):\(reader.recordLine): expected \(width) columns as in the header, found \(reader.fieldCount)")
            }
            let clean = commaSeparated && reader.readInPlace
            reader.withRecord { record in
                masker.append(record, cleanInput: clean, row: Int64(rows), scratch: &scratch, typed: &typed, into: &out)
            }
            if out.count >= 1 << 18 {
                try sink.write(out.bytes)
                out.removeAll()
            }
        }
        try sink.write(out.bytes)
        try sink.flush()
        return rows
    }
}
