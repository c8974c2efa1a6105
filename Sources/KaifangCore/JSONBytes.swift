/// JSON string literals written on UTF-8 bytes: `"` and `\` escaped, `\n \r \t` short, other
/// controls as `\u00xx` (lower-case hex), everything else as it is. One escaper for the rows
/// API, the cursor and the audit chain's canonical form (whose hashes depend on these bytes).
public enum JSONBytes {
    @inline(__always)
    public static func appendString(_ b: UnsafeBufferPointer<UInt8>, to out: inout ByteBuilder) {
        out.append(0x22)
        var run = 0
        for i in 0..<b.count {
            let c = b[i]
            if c >= 0x20 && c != 0x22 && c != 0x5C { continue }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: b[run..<i]))
            switch c {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            case 0x0D: out.append(0x5C); out.append(0x72)
            case 0x09: out.append(0x5C); out.append(0x74)
            default: out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hexDigits[Int(c >> 4)], hexDigits[Int(c & 15)]])
            }
            run = i + 1
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[run...]))
        out.append(0x22)
    }

    public static func appendString(_ s: String, to out: inout ByteBuilder) {
        var copy = s
        copy.withUTF8 { appendString($0, to: &out) }
    }

    /// The same escaping, appended to an array (the audit chain's canonical form, cursors).
    public static func appendString(_ b: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var built = ByteBuilder(capacity: b.count + 8)
        appendString(b, to: &built)
        out.append(contentsOf: built.bytes)
    }

    public static func appendString(_ s: String, to out: inout [UInt8]) {
        var copy = s
        copy.withUTF8 { appendString($0, to: &out) }
    }
}
