import KaifangCore
import Testing

/// The eight-byte tests against a byte loop, on words built to hold targets at random places.
@Suite struct SWARTests {
    @Test func theLowestFlaggedByteIsTheFirstMatch() {
        var rng = SeededGenerator.announced(#function)
        var wrong = 0
        for _ in 0..<20_000 {
            var bytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for _ in 0..<Int.random(in: 0..<3, using: &rng) { bytes[Int.random(in: 0..<8, using: &rng)] = [0x00, 0x22, 0x1F, 0x20, 0x80].randomElement(using: &rng)! }
            let w = bytes.withUnsafeBufferPointer { SWAR.load($0.baseAddress!) }
            let zero = SWAR.zeroBytes(w ^ SWAR.broadcast(0x22))
            let below = SWAR.bytesBelow(w, 0x20)
            let firstQuote = bytes.firstIndex(of: 0x22)
            let firstControl = bytes.firstIndex { $0 < 0x20 }
            if (zero == 0) != (firstQuote == nil) || (zero != 0 && SWAR.firstByte(zero) != firstQuote) { wrong += 1 }
            if (below == 0) != (firstControl == nil) || (below != 0 && SWAR.firstByte(below) != firstControl) { wrong += 1 }
        }
        #expect(wrong == 0)
    }

    /// All-digits against a byte loop: words of digits with one byte changed to every value.
    @Test func allDigitsMeansEveryByteIsADigit() {
        var rng = SeededGenerator.announced(#function)
        var wrong = 0
        for _ in 0..<2_000 {
            let digits = (0..<8).map { _ in UInt8.random(in: 0x30...0x39, using: &rng) }
            for at in 0..<8 {
                for value in UInt8.min...UInt8.max {
                    var bytes = digits
                    bytes[at] = value
                    let w = bytes.withUnsafeBufferPointer { SWAR.load($0.baseAddress!) }
                    if SWAR.allDigits(w) != bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { wrong += 1 }
                }
            }
        }
        #expect(wrong == 0)
    }
}
