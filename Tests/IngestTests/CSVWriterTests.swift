import Ingest
import KaifangCore
import Testing

/// Quoting of masked values written straight into the output, against RFC 4180 by hand.
@Suite struct CSVWriterTests {
    static func reference(_ v: [UInt8]) -> [UInt8] {
        guard v.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else { return v }
        var out: [UInt8] = [0x22]
        for b in v { if b == 0x22 { out.append(0x22) }; out.append(b) }
        return out + [0x22]
    }

    @Test func quoteTailQuotesExactlyTheValuesThatNeedIt() {
        let pieces: [[UInt8]] = [[0x2C], [0x22], [0x0A], [0x0D], Array("玄武区".utf8), Array("abcdefghij".utf8), Array("12".utf8)]
        var rng = SeededGenerator.announced(#function)
        var wrong = 0
        for _ in 0..<3000 {
            let prefix = Array(repeating: UInt8(ascii: "p"), count: Int.random(in: 0..<12, using: &rng))
            var value: [UInt8] = []
            for _ in 0..<Int.random(in: 0..<8, using: &rng) {
                value += Int.random(in: 0..<5, using: &rng) == 0 ? pieces[Int.random(in: 0..<4, using: &rng)] : pieces[Int.random(in: 4..<pieces.count, using: &rng)]
            }
            var out = ByteBuilder()
            out.append(contentsOf: prefix)
            out.append(contentsOf: value)
            CSVBytes.quoteTail(&out, from: prefix.count)
            if out.array != prefix + Self.reference(value) { wrong += 1 }
        }
        #expect(wrong == 0)
    }

    /// A whole field as a String: the same bytes as the reference, including the values a
    /// Character comparison would miss (a CRLF is one Character; so is a quote with a combining
    /// mark after it).
    @Test func aStringFieldIsQuotedByItsBytes() {
        for value in ["plain", "a,b", "say \"hi\"", "two\r\nlines", "\"\u{301}x", "玄武区", ""] {
            #expect(Array(CSVBytes.field(value).utf8) == Self.reference(Array(value.utf8)), "\(Array(value.utf8))")
        }
        #expect(CSVBytes.field("two\r\nlines") == "\"two\r\nlines\"" && CSVBytes.field("\"\u{301}") == "\"\"\"\u{301}\"")
    }
}
