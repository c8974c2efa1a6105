/// JSON string literals written on UTF-8 bytes: `"` and `\` escaped, `\n \r \t` short, other
/// controls as `\u00xx` (lower-case hex), everything else as it is. One escaper for the rows
/// API, the cursor and the audit chain's canonical form (whose hashes depend on these bytes).
public enum JSONBytes {
    /// Written straight into the buffer: room for the plain case (`n + 2` bytes) is made once,
    /// each clean word of eight is stored as it was loaded, and only an escape makes room again.
    public static func appendString(_ b: UnsafeBufferPointer<UInt8>, to out: inout ByteBuilder) {
        let n = b.count
        guard n > 0, let base = b.baseAddress else { out.append(0x22); out.append(0x22); return }
        if out._count + n + 2 > out._capacity { out.grow(toHold: out._count + n + 2) }
        // Invariant: the room left is at least what remains of the input plus the closing quote,
        // so a word stored at `o` (with eight input bytes left) stays inside the buffer.
        var dst = out._base
        var o = out._count
        dst[o] = 0x22
        o += 1
        var i = 0
        while i < n {
            if i + 8 <= n {
                // Eight bytes at a time: the lowest byte below 0x20, or equal to '"' or '\',
                // is the lowest set high bit (higher ones may be false); none → all plain.
                let w = SWAR.load(base + i)
                UnsafeMutableRawPointer(dst + o).storeBytes(of: w, as: UInt64.self)
                let hit = SWAR.bytesBelow(w, 0x20) | SWAR.zeroBytes(w ^ 0x2222_2222_2222_2222) | SWAR.zeroBytes(w ^ 0x5C5C_5C5C_5C5C_5C5C)
                if hit == 0 { i += 8; o += 8; continue }
                // The bytes before the first hit are already in place.
                let k = SWAR.firstByte(hit)
                i += k
                o += k
            }
            let c = base[i]
            i += 1
            if c >= 0x20 && c != 0x22 && c != 0x5C { dst[o] = c; o += 1; continue }
            // An escape (up to six bytes): room for it, the rest and the closing quote.
            out._count = o
            if o + 6 + (n - i) + 1 > out._capacity { out.grow(toHold: o + 6 + (n - i) + 1) }
            dst = out._base
            dst[o] = 0x5C
            switch c {
            case 0x22: dst[o + 1] = 0x22; o += 2
            case 0x5C: dst[o + 1] = 0x5C; o += 2
            case 0x0A: dst[o + 1] = 0x6E; o += 2
            case 0x0D: dst[o + 1] = 0x72; o += 2
            case 0x09: dst[o + 1] = 0x74; o += 2
            default:
                dst[o + 1] = 0x75; dst[o + 2] = 0x30; dst[o + 3] = 0x30
                dst[o + 4] = hexDigit(c >> 4); dst[o + 5] = hexDigit(c & 15)
                o += 6
            }
        }
        dst[o] = 0x22
        out._count = o + 1
    }

    public static func appendString(_ s: String, to out: inout ByteBuilder) {
        var copy = s
        copy.withUTF8 { appendString($0, to: &out) }
    }

    /// Whether any byte of `b` must be escaped (below 0x20, `"` or `\`).
    public static func needsEscape(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = b.baseAddress else { return false }
        let n = b.count
        var i = 0
        while i + 8 <= n {
            let w = SWAR.load(base + i)
            if SWAR.bytesBelow(w, 0x20) | SWAR.zeroBytes(w ^ 0x2222_2222_2222_2222) | SWAR.zeroBytes(w ^ 0x5C5C_5C5C_5C5C_5C5C) != 0 { return true }
            i += 8
        }
        while i < n {
            let c = base[i]
            if c < 0x20 || c == 0x22 || c == 0x5C { return true }
            i += 1
        }
        return false
    }

    /// The same escaping, appended to an array (the audit chain's canonical form, cursors):
    /// a string with nothing to escape (nearly all of them) is copied as it is.
    public static func appendString(_ b: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        if !needsEscape(b) {
            out.append(0x22)
            out.append(contentsOf: b)
            out.append(0x22)
            return
        }
        var built = ByteBuilder(capacity: b.count + 8)
        appendString(b, to: &built)
        out.append(contentsOf: built.bytes)
    }

    public static func appendString(_ s: String, to out: inout [UInt8]) {
        var copy = s
        copy.withUTF8 { appendString($0, to: &out) }
    }
}
