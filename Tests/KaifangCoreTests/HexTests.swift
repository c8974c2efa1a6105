import Foundation
import KaifangCore
import Testing

@Suite struct HexTests {
    /// Every byte value, in contiguous and non-contiguous sequences, against `String(format:)`.
    @Test func everyByteAgreesWithPrintf() {
        let all = (0...255).map { UInt8($0) }
        let expected = all.map { String(format: "%02x", $0) }.joined()
        #expect(all.hexString == expected)
        #expect(all.lazy.map { $0 }.hexString == expected)
        #expect(Data(all).hexString == expected)
        #expect([UInt8]().hexString == "")
    }
}
