import Foundation
@testable import KaifangCore
import Testing

/// The rows API cursor: the byte-level encoder writes what `JSONSerialization` reads back, for
/// every kind of value, including text that needs JSON escapes and base64 padding of each length.
@Suite struct RowCursorTests {
    static let values: [Cell] = [
        .null, .integer(0), .integer(-42), .integer(.max), .integer(.min),
        .real(3.25), .real(-0.0), .real(.infinity), .real(1e-300),
        .text(""), .text("a"), .text("ab"), .text("abc"), .text("玄武区"), .text("say \"hi\"\\ \n\t\u{01}\u{7F}"),
        .text("/+=-_"), .text("😀 emoji"),
    ]

    @Test(arguments: values)
    func roundTrip(_ value: Cell) throws {
        for (col, desc, row) in [(nil, false, Int64(1)), (Optional(3), true, Int64(999_900)), (Optional(0), false, Int64.max)] as [(Int?, Bool, Int64)] {
            let c = RowCursor.encode(sortColumn: col, descending: desc, value: value, row: row)
            #expect(!c.contains("=") && !c.contains("+") && !c.contains("/"), "base64url without padding: \(c)")
            let decoded = try #require(RowCursor.decode(c, sortColumn: col, descending: desc))
            #expect(decoded.1 == row)
            if case .real(let a) = value, case .real(let b) = decoded.0 { #expect(a.bitPattern == b.bitPattern) } else { #expect(decoded.0 == value) }
            // The same cursor does not decode for another sort (it would page a different order).
            #expect(RowCursor.decode(c, sortColumn: col, descending: !desc) == nil)
        }
    }

    @Test func bytesAreTheJSONArray() throws {
        let c = RowCursor.encode(sortColumn: 2, descending: true, value: .text("x\"y"), row: 7)
        var b64 = c.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        let data = try #require(Data(base64Encoded: b64))
        let parts = try #require(try JSONSerialization.jsonObject(with: data) as? [Any])
        #expect(parts.count == 5)
        #expect(parts[0] as? Int == 2)
        #expect(parts[2] as? String == "t")
        #expect(parts[3] as? String == "x\"y")
        #expect(parts[4] as? String == "7")
    }
}

/// The cursor's base64url decoder against Foundation's decoder, over every length.
@Suite struct Base64URLTests {
    @Test func decodesWhatFoundationDecodes() throws {
        var bytes: [UInt8] = []
        for n in 0..<40 {
            let std = Data(bytes).base64EncodedString()
            let url = std.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let expected = try #require(Data(base64Encoded: std))
            #expect(RowCursor.base64URLDecode(url) == Array(expected), "length \(n)")
            #expect(RowCursor.base64URLDecode(std) == Array(expected), "padded, standard alphabet, length \(n)")
            #expect(RowCursor.base64URLDecode(url + "*") == nil)
            bytes.append(UInt8(truncatingIfNeeded: n * 37 + 200))
        }
        #expect(RowCursor.base64URLDecode("A") == nil)
        #expect(RowCursor.base64URLDecode("AA=A") == nil)
        #expect(RowCursor.base64URLDecode("AA===") == nil)
    }
}
