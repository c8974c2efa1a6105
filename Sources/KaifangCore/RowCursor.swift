import Foundation

/// The opaque keyset cursor of `GET /v1/datasets/{id}/rows`: base64url of a small JSON array
/// `[sortColumn or -1, desc, kind, value, row]`. Decoding accepts only what `encode` makes for
/// the same sort; anything else is nil (a 400 for the caller).
public enum RowCursor {
    public static func encode(sortColumn: Int?, descending: Bool, value: Cell, row: Int64) -> String {
        // The same JSON `JSONSerialization` would write, built on bytes (one cursor per page).
        var json: [UInt8] = []
        json.reserveCapacity(64)
        json.append(0x5B)
        json.append(contentsOf: String(sortColumn ?? -1).utf8)
        json.append(contentsOf: descending ? Array(",1,".utf8) : Array(",0,".utf8))
        switch value {
        case .null: json.append(contentsOf: "\"n\",0".utf8)
        case .integer(let v): json.append(contentsOf: "\"i\",".utf8); jsonString(String(v), into: &json)
        case .real(let v): json.append(contentsOf: "\"r\",".utf8); jsonString(v.bitPattern.description, into: &json)
        case .text(let s): json.append(contentsOf: "\"t\",".utf8); jsonString(s, into: &json)
        }
        json.append(0x2C)
        jsonString(String(row), into: &json)
        json.append(0x5D)
        return base64URL(json)
    }

    static func jsonString(_ s: String, into out: inout [UInt8]) { JSONBytes.appendString(s, to: &out) }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Decodes base64url (the standard alphabet's `+` `/` and `=` padding accepted too);
    /// nil for any other character or an impossible length.
    static func base64URLDecode(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count * 3 / 4)
        var acc: UInt32 = 0
        var n = 0
        var padding = 0
        for c in s.utf8 {
            let v: UInt32
            switch c {
            case 0x41...0x5A: v = UInt32(c - 0x41)
            case 0x61...0x7A: v = UInt32(c - 0x61 + 26)
            case 0x30...0x39: v = UInt32(c - 0x30 + 52)
            case 0x2D, 0x2B: v = 62
            case 0x5F, 0x2F: v = 63
            case 0x3D: padding += 1; continue
            default: return nil
            }
            if padding > 0 { return nil }
            acc = acc << 6 | v
            n += 1
            if n == 4 {
                out.append(UInt8(acc >> 16)); out.append(UInt8(acc >> 8 & 0xFF)); out.append(UInt8(acc & 0xFF))
                acc = 0; n = 0
            }
        }
        switch n {
        case 0: break
        case 2: out.append(UInt8(acc >> 4))
        case 3: out.append(UInt8(acc >> 10)); out.append(UInt8(acc >> 2 & 0xFF))
        default: return nil
        }
        guard padding <= 2 else { return nil }
        return out
    }

    /// Base64url without padding.
    static func base64URL(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(v >> 18)]); out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)]); out.append(alphabet[Int(v & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let v = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(v >> 18)]); out.append(alphabet[Int(v >> 12 & 63)])
            if rest == 2 { out.append(alphabet[Int(v >> 6 & 63)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ s: String, sortColumn: Int?, descending: Bool) -> (Cell, Int64)? {
        guard s.utf8.count <= 2000 else { return nil }
        guard let bytes = base64URLDecode(s),
              let parts = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [Any], parts.count == 5,
              let col = parts[0] as? Int, let desc = parts[1] as? Int, let kind = parts[2] as? String, let rowText = parts[4] as? String,
              let row = Int64(rowText), col == (sortColumn ?? -1), desc == (descending ? 1 : 0) else { return nil }
        switch kind {
        case "n": return (.null, row)
        case "i": guard let t = parts[3] as? String, let v = Int64(t) else { return nil }; return (.integer(v), row)
        case "r": guard let t = parts[3] as? String, let bits = UInt64(t) else { return nil }; return (.real(Double(bitPattern: bits)), row)
        case "t": guard let t = parts[3] as? String else { return nil }; return (.text(t), row)
        default: return nil
        }
    }
}
