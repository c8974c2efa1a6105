/// JSON string literals written on UTF-8 bytes: `"` and `\` escaped, `\n \r \t` short, other
/// controls as `\u00xx` (lower-case hex), everything else as it is. One escaper for the rows
/// API, the cursor and the audit chain's canonical form (whose hashes depend on these bytes).
public enum JSONBytes {
    public static func appendString(_ b: UnsafeBufferPointer<UInt8>, to out: inout ByteBuilder) {
        out.append(0x22)
        guard let base = b.baseAddress else { out.append(0x22); return }
        let n = b.count
        var run = 0
        var i = 0
        while i < n {
            if i + 8 <= n {
                // Eight bytes at a time: the lowest byte below 0x20, or equal to '"' or '\',
                // is the lowest set high bit (higher ones may be false); none → all plain.
                let w = SWAR.load(base + i)
                let hit = SWAR.bytesBelow(w, 0x20) | SWAR.zeroBytes(w ^ 0x2222_2222_2222_2222) | SWAR.zeroBytes(w ^ 0x5C5C_5C5C_5C5C_5C5C)
                if hit == 0 { i += 8; continue }
                i += SWAR.firstByte(hit)
            }
            let c = base[i]
            if c >= 0x20 && c != 0x22 && c != 0x5C { i += 1; continue }
            out.append(contentsOf: UnsafeBufferPointer(start: base + run, count: i - run))
            switch c {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            case 0x0D: out.append(0x5C); out.append(0x72)
            case 0x09: out.append(0x5C); out.append(0x74)
            default: out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hexDigit(c >> 4), hexDigit(c & 15)])
            }
            i += 1
            run = i
        }
        out.append(contentsOf: UnsafeBufferPointer(start: base + run, count: n - run))
        out.append(0x22)
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
