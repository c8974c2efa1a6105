import Foundation
import KaifangCore
import Testing

/// The byte-level JSON string escaper (rows, cursors, the audit chain's canonical form) against
/// a one-byte-at-a-time reference, at every alignment, and read back by JSONSerialization.
@Suite struct JSONBytesTests {
    static func reference(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x22]
        for c in bytes {
            switch c {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, 0x6E]
            case 0x0D: out += [0x5C, 0x72]
            case 0x09: out += [0x5C, 0x74]
            case 0..<0x20: out += Array(String(format: "\\u%04x", Int(c)).utf8)
            default: out.append(c)
            }
        }
        return out + [0x22]
    }

    @Test func matchesTheReferenceAtEveryLengthAndAlignment() throws {
        let pieces: [[UInt8]] = [[0x22], [0x5C], [0x0A], [0x0D], [0x09], [0x00], [0x1F], [0x20], [0x21], [0x5B], [0x7F],
                                 Array("空".utf8), Array("气质量".utf8), Array("a".utf8), Array("\u{1F600}".utf8)]
        var rng = SeededGenerator.announced(#function)
        // Also one builder for all, so every string starts at another count and capacity.
        var shared = ByteBuilder(capacity: 16)
        var sharedExpected: [UInt8] = []
        for _ in 0..<3000 {
            var value: [UInt8] = []
            let parts = Int.random(in: 0..<30, using: &rng)
            for _ in 0..<parts {
                // Mostly plain text, so that whole clean words and escapes near word edges both occur.
                value += Int.random(in: 0..<4, using: &rng) == 0 ? pieces.randomElement(using: &rng)! : Array("abcdefgh".prefix(Int.random(in: 1...8, using: &rng)).utf8)
            }
            var out = ByteBuilder()
            value.withUnsafeBufferPointer { JSONBytes.appendString($0, to: &out) }
            #expect(out.array == Self.reference(value), "\(value)")
            value.withUnsafeBufferPointer { JSONBytes.appendString($0, to: &shared) }
            sharedExpected += Self.reference(value)
            #expect(shared.array == sharedExpected)
            if Bool.random(using: &rng) { shared.removeAll(); sharedExpected = [] }
            // The array form (its copy-as-is path for strings with nothing to escape) agrees.
            var array: [UInt8] = [0x41]
            value.withUnsafeBufferPointer { JSONBytes.appendString($0, to: &array) }
            #expect(array == [0x41] + Self.reference(value), "\(value)")
            #expect(value.withUnsafeBufferPointer { JSONBytes.needsEscape($0) } == (Self.reference(value).count != value.count + 2))
            let decoded = try JSONSerialization.jsonObject(with: Data(out.array), options: .fragmentsAllowed) as? String
            #expect(decoded == String(decoding: value, as: UTF8.self))
        }
        var empty = ByteBuilder()
        JSONBytes.appendString("", to: &empty)
        #expect(empty.array == [0x22, 0x22])
    }
}
