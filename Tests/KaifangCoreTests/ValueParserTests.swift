import Foundation
import KaifangCore
import Testing

/// Date checks against the proleptic Gregorian calendar computed another way: day numbers
/// (Hinnant's days-from-civil and back), which turn a day that does not exist into another.
@Suite struct ValueParserTests {
    static func days(_ y: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        return era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy
    }

    static func civil(_ z: Int) -> (Int, Int, Int) {
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Whether y-m-d is a real day (years 1–9999): its day number reads back as the same parts.
    static func real(_ y: Int, _ m: Int, _ d: Int) -> Bool {
        guard y >= 1, (1...12).contains(m), (1...31).contains(d) else { return false }
        return civil(days(y, m, d)) == (y, m, d)
    }

    static func isISODate(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { ValueParser.isISODate($0) }
    }

    @Test func isoDatesAreRealCalendarDays() {
        var wrong: [String] = []
        for y in [0, 1, 4, 100, 400, 1582, 1900, 1999, 2000, 2023, 2024, 2100, 9999] {
            for m in 0...13 {
                for d in 0...32 {
                    let s = String(format: "%04d-%02d-%02d", y, m, d)
                    if Self.isISODate(s) != Self.real(y, m, d) { wrong.append(s) }
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(8))")
    }

    @Test func anyByteOutOfPlaceIsNotADate() {
        var rng = SeededGenerator.announced(#function)
        let good = Array("2024-02-29".utf8)
        #expect(good.withUnsafeBufferPointer { ValueParser.isISODate($0) })
        for i in good.indices {
            for b in [0x2D, 0x2F, 0x30 - 1, 0x39 + 1, 0x20, 0xE4, UInt8.random(in: 0...255, using: &rng)] as [UInt8] where b != good[i] {
                var bad = good
                bad[i] = b
                let digitForDigit = good[i] != 0x2D && (0x30...0x39).contains(b)
                let expected = digitForDigit && Self.real(Int(String(decoding: bad[0..<4], as: UTF8.self))!, Int(String(decoding: bad[5..<7], as: UTF8.self))!,
                                                          Int(String(decoding: bad[8..<10], as: UTF8.self))!)
                #expect(bad.withUnsafeBufferPointer { ValueParser.isISODate($0) } == expected, "\(String(decoding: bad, as: UTF8.self))")
            }
        }
        for s in ["2024-02-2", "2024-02-290", "2024/02/29", "20240229", ""] { #expect(!Self.isISODate(s), "\(s)") }
    }
}
