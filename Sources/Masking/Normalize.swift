import KaifangCore

/// Byte-level normalization before validation: full-width digits and letters become ASCII,
/// and (for numbers) spaces and hyphens inside are dropped. Works on UTF-8 bytes.
public enum Normalize {
    /// Full-width forms: U+FF01…U+FF5E map to U+0021…U+007E (UTF-8 EF BC 81…EF BD 9E);
    /// U+3000 (ideographic space) maps to a space.
    @inline(__always)
    static func foldedASCII(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt8, Int)? {
        guard i + 3 <= b.count else { return nil }
        let b0 = b[i], b1 = b[i + 1], b2 = b[i + 2]
        if b0 == 0xEF && b1 == 0xBC && b2 >= 0x81 && b2 <= 0xBF { return (b2 - 0x81 + 0x21, 3) } // U+FF01…U+FF3F
        if b0 == 0xEF && b1 == 0xBD && b2 >= 0x80 && b2 <= 0x9E { return (b2 - 0x80 + 0x60, 3) } // U+FF40…U+FF5E
        if b0 == 0xE3 && b1 == 0x80 && b2 == 0x80 { return (0x20, 3) } // U+3000
        return nil
    }

    /// Whether `fold` would change the bytes (a full-width form, an ideographic space, or
    /// spaces at either end). Most values need nothing, and skip the copy.
    @inline(__always)
    public static func needsFold(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = b.first, let last = b.last else { return false }
        if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 || last == 0x0D || last == 0x0A { return true }
        // Any 0xEF or 0xE3 byte (lead bytes of the full-width forms and the ideographic space),
        // eight bytes at a time.
        let base = b.baseAddress!
        var i = 0
        while i + 8 <= b.count {
            let w = SWAR.load(base + i)
            if SWAR.zeroBytes(w ^ 0xEFEF_EFEF_EFEF_EFEF) | SWAR.zeroBytes(w ^ 0xE3E3_E3E3_E3E3_E3E3) != 0 { return true }
            i += 8
        }
        while i < b.count {
            if base[i] == 0xEF || base[i] == 0xE3 { return true }
            i += 1
        }
        return false
    }

    /// Calls `body` with the folded bytes: the input itself when nothing needs folding, else
    /// `scratch` after `fold`.
    @inline(__always)
    public static func withFolded<R>(_ b: UnsafeBufferPointer<UInt8>, scratch: inout ByteBuilder, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if !needsFold(b) { return body(b) }
        fold(b, into: &scratch)
        return body(scratch.bytes)
    }

    /// Folds full-width forms to ASCII and trims ASCII and ideographic spaces at both ends.
    public static func fold(_ b: UnsafeBufferPointer<UInt8>, into out: inout ByteBuilder) {
        out.removeAll()
        var i = 0
        while i < b.count {
            let c = b[i]
            if c >= 0xE3, i + 3 <= b.count, let (a, n) = foldedASCII(b, i) {
                out.append(a); i += n
            } else {
                out.append(c); i += 1
            }
        }
        var lead = 0
        while lead < out.count && (out[lead] == 0x20 || out[lead] == 0x09) { lead += 1 }
        out.removeFirst(lead)
        var n = out.count
        while n > 0 && (out[n - 1] == 0x20 || out[n - 1] == 0x09 || out[n - 1] == 0x0D || out[n - 1] == 0x0A) { n -= 1 }
        out.truncate(to: n)
    }

    /// Folds full-width forms and drops every space, tab and hyphen: for numbers written
    /// `138 1234 5678`, `138-1234-5678` or `１３８１２３４５６７８`.
    public static func compact(_ b: UnsafeBufferPointer<UInt8>, into out: inout ByteBuilder) {
        out.removeAll()
        var i = 0
        while i < b.count {
            let c = b[i]
            var a = c
            var n = 1
            if c >= 0xE3, i + 3 <= b.count, let (f, len) = foldedASCII(b, i) { a = f; n = len }
            else if c == 0xE2, i + 3 <= b.count, b[i + 1] == 0x80, b[i + 2] >= 0x90 && b[i + 2] <= 0x95 { a = 0x2D; n = 3 } // ‐ ‑ ‒ – — ―
            if a != 0x20 && a != 0x09 && a != 0x2D { out.append(a) }
            i += n
        }
    }

    /// `compact` for a String (tests, CLI).
    public static func compact(_ s: String) -> [UInt8] {
        var out = ByteBuilder()
        var copy = s
        copy.withUTF8 { compact($0, into: &out) }
        return out.array
    }
}
