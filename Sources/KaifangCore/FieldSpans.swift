/// The fields of one record as spans of a byte buffer, without copies: field i runs from the
/// end of field i − 1 plus `gap` (the delimiter, or nothing) to `ends[i]`. Valid only while the
/// buffer it points into is (the CSV reader's `withRecord`).
public struct FieldSpans {
    public let base: UnsafePointer<UInt8>
    public let first: Int
    public let gap: Int
    public let ends: UnsafeBufferPointer<Int>

    @inlinable public init(base: UnsafePointer<UInt8>, first: Int, gap: Int, ends: UnsafeBufferPointer<Int>) {
        self.base = base
        self.first = first
        self.gap = gap
        self.ends = ends
    }

    /// Number of fields.
    @inlinable public var count: Int { ends.count }

    /// Field `i`'s bytes.
    @inlinable @inline(__always) public func field(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        let start = i == 0 ? first : ends[i &- 1] &+ gap
        return UnsafeBufferPointer(start: base + start, count: ends[i] &- start)
    }
}

/// CSV encoding (RFC 4180) of values written straight into a `ByteBuilder`.
public enum CSVBytes {
    /// Whether `b` is a byte that forces quoting: comma, quote, CR or LF.
    @inlinable @inline(__always) public static func isSpecial(_ b: UInt8) -> Bool {
        b == 0x2C || b == 0x22 || b == 0x0A || b == 0x0D
    }

    /// One CSV field: `s` as is, or quoted with its quotes doubled when it holds a comma, quote,
    /// CR or LF. Judged byte by byte, so a quote that begins a grapheme cluster (a quote and a
    /// combining mark) is still seen and doubled.
    public static func field(_ s: String) -> String {
        guard s.utf8.contains(where: isSpecial) else { return s }
        var bytes: [UInt8] = [0x22]
        bytes.reserveCapacity(s.utf8.count + 4)
        for b in s.utf8 {
            bytes.append(b)
            if b == 0x22 { bytes.append(0x22) }
        }
        bytes.append(0x22)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Quotes the value that starts at `start` and runs to the end of `out`, when it holds a
    /// comma, quote, CR or LF (values are masked straight into the output, then checked).
    @inlinable @inline(__always)
    public static func quoteTail(_ out: inout ByteBuilder, from start: Int) {
        let p = out.base
        let n = out.count
        var i = start
        // Eight bytes at a time, then the rest one by one.
        while i + 8 <= n {
            let w = SWAR.load(p + i)
            if SWAR.zeroBytes(w ^ 0x2C2C_2C2C_2C2C_2C2C) | SWAR.zeroBytes(w ^ 0x2222_2222_2222_2222)
                | SWAR.zeroBytes(w ^ 0x0A0A_0A0A_0A0A_0A0A) | SWAR.zeroBytes(w ^ 0x0D0D_0D0D_0D0D_0D0D) != 0 {
                quote(&out, from: start)
                return
            }
            i += 8
        }
        while i < n {
            if isSpecial(p[i]) { quote(&out, from: start); return }
            i += 1
        }
    }

    /// Rewrites the tail from `start` quoted, its quotes doubled (the rare case: not inlined).
    @usableFromInline @inline(never)
    static func quote(_ out: inout ByteBuilder, from start: Int) {
        var quotes = 0
        for i in start..<out.count where out[i] == 0x22 { quotes += 1 }
        let n = out.count - start
        // Grow by the two enclosing quotes and one per doubled quote, then move the value
        // into place from its end backwards (the areas overlap).
        let grow = 2 + quotes
        out.append(repeating: 0, count: grow)
        let p = out.base
        var from = start + n - 1
        var to = out.count - 2
        p[out.count - 1] = 0x22
        while from >= start {
            let b = p[from]
            p[to] = b
            to -= 1
            if b == 0x22 { p[to] = 0x22; to -= 1 }
            from -= 1
        }
        p[start] = 0x22
    }
}
