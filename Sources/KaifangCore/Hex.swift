/// Lower-case hexadecimal of bytes (digests, secrets), without a formatter per byte.
extension Sequence where Element == UInt8 {
    public var hexString: String {
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        for b in self {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
