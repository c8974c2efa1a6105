import Foundation

/// Byte-level parsers for the field types of a manifest. They never echo the value they refuse:
/// reasons describe what was expected, so no sensitive value reaches an error message.
public enum ValueParser {
    /// Length of the longest valid UTF-8 prefix of `bytes`; equals `bytes.count` when all valid.
    public static func validUTF8Prefix(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 0
        let n = bytes.count
        guard let base = UnsafeRawPointer(bytes.baseAddress) else { return 0 }
        while i < n {
            // Eight ASCII bytes at a time.
            while i + 8 <= n && base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
            guard i < n else { break }
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            var need = 0
            var minCode: UInt32 = 0
            var code: UInt32 = 0
            if b & 0xE0 == 0xC0 { need = 1; code = UInt32(b & 0x1F); minCode = 0x80 }
            else if b & 0xF0 == 0xE0 { need = 2; code = UInt32(b & 0x0F); minCode = 0x800 }
            else if b & 0xF8 == 0xF0 { need = 3; code = UInt32(b & 0x07); minCode = 0x10000 }
            else { return i }
            if i + need >= n { return i } // truncated sequence
            var j = 1
            while j <= need {
                let c = bytes[i + j]
                if c & 0xC0 != 0x80 { return i }
                code = (code << 6) | UInt32(c & 0x3F)
                j += 1
            }
            if code < minCode || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF) { return i }
            i += need + 1
        }
        return n
    }

    @inline(__always)
    public static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// The bytes without leading and trailing ASCII spaces and tabs.
    @inline(__always)
    public static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var s = 0, e = bytes.count
        while s < e && isSpace(bytes[s]) { s += 1 }
        while e > s && isSpace(bytes[e - 1]) { e -= 1 }
        return UnsafeBufferPointer(rebasing: bytes[s..<e])
    }

    /// Parses an integer: optional sign, ASCII digits.
    public static func integer(_ raw: UnsafeBufferPointer<UInt8>) -> Int64? {
        let b = trimmed(raw)
        guard !b.isEmpty else { return nil }
        var i = 0
        var negative = false
        if b[0] == 0x2D || b[0] == 0x2B { negative = b[0] == 0x2D; i = 1 }
        guard i < b.count else { return nil }
        var v: Int64 = 0
        while i < b.count {
            let d = b[i] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(Int64(d)) : m.addingReportingOverflow(Int64(d))
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        return v
    }

    /// Exact powers of ten as doubles (10^22 is the largest exact one).
    static let powersOfTen: [Double] = (0...22).map { (0..<$0).reduce(1.0) { r, _ in r * 10 } }

    /// Parses a finite decimal number (`-12.5`, `3e4`).
    public static func number(_ raw: UnsafeBufferPointer<UInt8>) -> Double? {
        let b = trimmed(raw)
        guard !b.isEmpty, b.count < 64 else { return nil }
        if let v = plainDecimal(b) { return v }
        for c in b {
            let ok = (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x2D || c == 0x2B || c == 0x65 || c == 0x45
            if !ok { return nil }
        }
        guard let v = Double(String(decoding: b, as: UTF8.self)), v.isFinite else { return nil }
        return v
    }

    /// `[sign]digits[.digits]` with fewer than 2^53 as the digits' integer and at most 22
    /// decimals: one exact integer divided by an exact power of ten, a single correctly rounded
    /// operation — the same double `strtod` gives. Nil for anything else (the general path).
    @inline(__always)
    static func plainDecimal(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
        var i = 0
        var negative = false
        if b[0] == 0x2D || b[0] == 0x2B { negative = b[0] == 0x2D; i = 1 }
        var mantissa: UInt64 = 0
        var digits = 0, decimals = 0
        var dot = false, anyDigit = false
        while i < b.count {
            let c = b[i]
            let d = c &- 0x30
            if d < 10 {
                guard digits < 16 else { return nil }
                mantissa = mantissa * 10 + UInt64(d)
                if mantissa != 0 { digits += 1 }
                if dot { decimals += 1 }
                anyDigit = true
            } else if c == 0x2E && !dot {
                dot = true
            } else {
                return nil
            }
            i += 1
        }
        guard anyDigit, mantissa < 1 << 53, decimals <= 22 else { return nil }
        let v = Double(mantissa) / powersOfTen[decimals]
        return negative ? -v : v
    }

    /// Parses a boolean: true/false, 1/0, yes/no, 是/否 (case-insensitive).
    public static func boolean(_ raw: UnsafeBufferPointer<UInt8>) -> Bool? {
        let s = String(decoding: trimmed(raw), as: UTF8.self).lowercased()
        switch s {
        case "true", "1", "yes", "y", "t", "是": return true
        case "false", "0", "no", "n", "f", "否": return false
        default: return nil
        }
    }

    /// Whether y-m-d is a real calendar date (proleptic Gregorian).
    public static func isValidDate(year: Int, month: Int, day: Int) -> Bool {
        guard year >= 1 && year <= 9999, month >= 1 && month <= 12, day >= 1 else { return false }
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return day <= (leap ? 29 : 28)
        case 4, 6, 9, 11: return day <= 30
        default: return day <= 31
        }
    }

    @inline(__always)
    static func digits(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ count: Int) -> Int? {
        guard from + count <= b.count else { return nil }
        var v = 0
        for i in from..<(from + count) {
            let d = b[i] &- 0x30
            guard d < 10 else { return nil }
            v = v * 10 + Int(d)
        }
        return v
    }

    /// Whether ten bytes are a real calendar date written `YYYY-MM-DD` (no String made).
    @inlinable @inline(__always)
    public static func isISODate(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 10, let p = b.baseAddress else { return false }
        // `YYYY-MM-` in one word: the dashes in place, the six other bytes digits.
        let w = SWAR.load(p)
        let dashes: UInt64 = 0xFF << 32 | 0xFF << 56
        guard w & dashes == 0x2D << 32 | 0x2D << 56, SWAR.allDigits(w & ~dashes | 0x30 << 32 | 0x30 << 56) else { return false }
        let d1 = p[8] &- 0x30, d2 = p[9] &- 0x30
        guard d1 < 10, d2 < 10 else { return false }
        let y = Int(p[0] &- 0x30) * 1000 + Int(p[1] &- 0x30) * 100 + Int(p[2] &- 0x30) * 10 + Int(p[3] &- 0x30)
        let m = Int(p[5] &- 0x30) * 10 + Int(p[6] &- 0x30)
        let d = Int(d1) * 10 + Int(d2)
        // Days 1–28 of months 1–12 in years 1–9999 are always real: no calendar needed.
        if d >= 1 && d <= 28 && m >= 1 && m <= 12 && y >= 1 { return true }
        return isValidDate(year: y, month: m, day: d)
    }

    /// Parses a date `YYYY-MM-DD`, `YYYY/MM/DD` or `YYYYMMDD` into ISO `YYYY-MM-DD`.
    public static func date(_ raw: UnsafeBufferPointer<UInt8>) -> String? {
        let b = trimmed(raw)
        guard let (y, m, d, used) = datePart(b), used == b.count else { return nil }
        return isoDate(y, m, d)
    }

    /// `YYYY-MM-DD` (year 0–9999), written as bytes into a small string (no allocation).
    static func isoDate(_ y: Int, _ m: Int, _ d: Int) -> String {
        precondition((0...9999).contains(y) && (0...99).contains(m) && (0...99).contains(d))
        let t: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
            UInt8(0x30 + y / 1000), UInt8(0x30 + y / 100 % 10), UInt8(0x30 + y / 10 % 10), UInt8(0x30 + y % 10), 0x2D,
            UInt8(0x30 + m / 10), UInt8(0x30 + m % 10), 0x2D, UInt8(0x30 + d / 10), UInt8(0x30 + d % 10))
        return withUnsafeBytes(of: t) { String(decoding: $0, as: UTF8.self) }
    }

    static func datePart(_ b: UnsafeBufferPointer<UInt8>) -> (Int, Int, Int, Int)? {
        guard let y = digits(b, 0, 4) else { return nil }
        var used = 0
        var m = 0, d = 0
        if b.count >= 10, b[4] == 0x2D || b[4] == 0x2F, b[7] == b[4], let mm = digits(b, 5, 2), let dd = digits(b, 8, 2) {
            m = mm; d = dd; used = 10
        } else if b.count >= 8, let mm = digits(b, 4, 2), let dd = digits(b, 6, 2), b.count == 8 || !(b[8] >= 0x30 && b[8] <= 0x39) {
            m = mm; d = dd; used = 8
        } else {
            return nil
        }
        guard isValidDate(year: y, month: m, day: d) else { return nil }
        return (y, m, d, used)
    }

    /// Parses a datetime `YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|±HH:MM]` into ISO 8601 with a `T`.
    public static func datetime(_ raw: UnsafeBufferPointer<UInt8>) -> String? {
        let b = trimmed(raw)
        guard let (y, m, d, used) = datePart(b), used == 10 else { return nil }
        var out = isoDate(y, m, d)
        if b.count == 10 { return out + "T00:00:00" }
        guard b[10] == 0x54 || b[10] == 0x20, let hh = digits(b, 11, 2), hh < 24, b.count >= 16, b[13] == 0x3A,
              let mi = digits(b, 14, 2), mi < 60 else { return nil }
        var i = 16
        var ss = 0
        if i < b.count && b[i] == 0x3A {
            guard let s = digits(b, i + 1, 2), s < 61 else { return nil }
            ss = s; i += 3
        }
        var frac = ""
        if i < b.count && b[i] == 0x2E {
            var j = i + 1
            while j < b.count && b[j] >= 0x30 && b[j] <= 0x39 { j += 1 }
            guard j > i + 1 else { return nil }
            frac = String(decoding: UnsafeBufferPointer(rebasing: b[i..<j]), as: UTF8.self)
            i = j
        }
        var zone = ""
        if i < b.count {
            if b[i] == 0x5A && i + 1 == b.count { zone = "Z" }
            else if (b[i] == 0x2B || b[i] == 0x2D), let zh = digits(b, i + 1, 2), zh <= 14 {
                var zm = 0
                if i + 3 < b.count, b[i + 3] == 0x3A, let z = digits(b, i + 4, 2), i + 6 == b.count { zm = z }
                else if i + 3 < b.count, let z = digits(b, i + 3, 2), i + 5 == b.count { zm = z }
                else if i + 3 != b.count { return nil }
                guard zm < 60 else { return nil }
                func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
                zone = (b[i] == 0x2B ? "+" : "-") + p2(zh) + ":" + p2(zm)
            } else { return nil }
        }
        func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        out += "T" + p2(hh) + ":" + p2(mi) + ":" + p2(ss) + frac + zone
        return out
    }
}
