import Foundation

/// The opaque keyset cursor of `GET /v1/datasets/{id}/rows`: base64url of a small JSON array
/// `[sortColumn or -1, desc, kind, value, row]`. Decoding accepts only what `encode` makes for
/// the same sort; anything else is nil (a 400 for the caller).
public enum RowCursor {
    public static func encode(sortColumn: Int?, descending: Bool, value: Cell, row: Int64) -> String {
        var parts: [Any] = [sortColumn ?? -1, descending ? 1 : 0]
        switch value {
        case .null: parts += ["n", 0]
        case .integer(let v): parts += ["i", String(v)]
        case .real(let v): parts += ["r", v.bitPattern.description]
        case .text(let s): parts += ["t", s]
        }
        parts.append(String(row))
        let data = (try? JSONSerialization.data(withJSONObject: parts)) ?? Data()
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ s: String, sortColumn: Int?, descending: Bool) -> (Cell, Int64)? {
        guard s.utf8.count <= 2000 else { return nil }
        var b64 = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        guard let data = Data(base64Encoded: b64),
              let parts = try? JSONSerialization.jsonObject(with: data) as? [Any], parts.count == 5,
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
