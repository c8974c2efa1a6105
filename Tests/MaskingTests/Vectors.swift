import Foundation
import KaifangCore

/// Test vectors computed by an implementation written independently of the library's
/// validators (weights derived from their definitions, not copied tables).
enum Vectors {
    struct Rng {
        var generator: SeededGenerator
        init(state: UInt64) { generator = SeededGenerator(seed: state) }
        mutating func next() -> UInt64 { generator.next() }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
        mutating func digits(_ n: Int) -> String { (0..<n).map { _ in String(int(0...9)) }.joined() }
        mutating func pick<T>(_ a: [T]) -> T { a[int(0...(a.count - 1))] }
    }

    static let regions = ["320102", "320106", "320505", "110105", "310115", "440305", "510107", "650102", "420111", "330106"]

    /// ISO 7064 MOD 11-2: weight of position i (from the left, 0-based) is 2^(17-i) mod 11.
    static func idCheck(_ first17: String) -> Character {
        var sum = 0
        for (i, ch) in first17.enumerated() {
            var w = 1
            for _ in 0..<(17 - i) { w = w * 2 % 11 }
            sum += Int(String(ch))! * w
        }
        let r = (12 - sum % 11) % 11
        return r == 10 ? "X" : Character(String(r))
    }

    static func residentID(_ rng: inout Rng, year: Int? = nil) -> String {
        let y = year ?? rng.int(1935...2015)
        let m = rng.int(1...12), d = rng.int(1...28)
        let body = rng.pick(regions) + String(format: "%04d%02d%02d", y, m, d) + rng.digits(3)
        return body + String(idCheck(body))
    }

    /// A resident ID whose check character is wrong (any other of the 11).
    static func withWrongCheck(_ id: String, _ rng: inout Rng) -> String {
        let right = id.last!
        let options = Array("0123456789X").filter { $0 != right }
        return String(id.dropLast()) + String(rng.pick(options))
    }

    static let usccAlphabet = Array("0123456789ABCDEFGHJKLMNPQRTUWXY")

    /// GB 32100: weight of position i (1-based) is 3^(i-1) mod 31; check = (31 − Σ mod 31) mod 31.
    static func usccCheck(_ first17: String) -> Character {
        var sum = 0
        var w = 1
        for ch in first17 {
            sum += usccAlphabet.firstIndex(of: ch)! * w
            w = w * 3 % 31
        }
        return usccAlphabet[(31 - sum % 31) % 31]
    }

    /// GB 11714: weight of position i (1-based) is 2^(9−i) mod 11; a letter is worth 10 + its
    /// place in A…Z; check = 11 − Σ mod 11, written X for 10 and 0 for 11.
    static func orgCheck(_ body8: String) -> Character {
        var sum = 0
        for (i, ch) in body8.enumerated() {
            var w = 1
            for _ in 0..<(8 - i) { w = w * 2 % 11 }
            let v = ch.isNumber ? Int(String(ch))! : Int(ch.asciiValue! - Character("A").asciiValue!) + 10
            sum += v * w
        }
        let r = 11 - sum % 11
        return r == 10 ? "X" : r == 11 ? "0" : Character(String(r))
    }

    static func uscc(_ rng: inout Rng) -> String {
        let body8 = (0..<8).map { _ in String(rng.pick(usccAlphabet)) }.joined()
        let body = rng.pick(["91", "92", "93", "12", "52"]) + rng.pick(regions) + body8 + String(orgCheck(body8))
        return body + String(usccCheck(body))
    }

    /// A USCC whose own check character is right but whose embedded organization code's is wrong.
    static func usccWithWrongOrgCheck(_ rng: inout Rng) -> String {
        let valid = uscc(&rng)
        let right = Array(valid)[16]
        let wrong = Array("0123456789X").first { $0 != right && usccAlphabet.contains($0) }!
        let body = String(valid.prefix(16)) + String(wrong)
        return body + String(usccCheck(body))
    }

    static func luhnDigit(_ partial: String) -> Int {
        var sum = 0
        for (i, ch) in partial.reversed().enumerated() {
            var d = Int(String(ch))!
            if i % 2 == 0 { d *= 2; if d > 9 { d -= 9 } }
            sum += d
        }
        return (10 - sum % 10) % 10
    }

    static func bankCard(_ rng: inout Rng, length: Int) -> String {
        let partial = rng.pick(["62", "4", "5", "60"]) 
        let body = partial + rng.digits(length - 1 - partial.count)
        return body + String(luhnDigit(body))
    }

    static func wrongLuhn(_ card: String) -> String {
        let last = Int(String(card.last!))!
        return String(card.dropLast()) + String((last + 1 + Int(card.count % 7)) % 10 == last ? (last + 2) % 10 : (last + 1 + card.count % 7) % 10)
    }

    /// MIIT's allocated mobile segments 1XY.
    static let segments = (0...9).map { "13\($0)" } + ["145", "146", "147", "148", "149"] + ["150", "151", "152", "153", "155", "156", "157", "158", "159"]
        + ["162", "165", "166", "167"] + (0...8).map { "17\($0)" } + (0...9).map { "18\($0)" } + ["190", "191", "192", "193", "195", "196", "197", "198", "199"]
    static let unallocated = ["140", "141", "142", "143", "144", "154", "160", "161", "163", "164", "168", "169", "179", "194"]

    static func phone(_ rng: inout Rng) -> String { rng.pick(segments) + rng.digits(8) }

    /// Full-width form of ASCII digits and letters.
    static func fullWidth(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { u in
            (0x21...0x7E).contains(u.value) ? Unicode.Scalar(u.value - 0x21 + 0xFF01)! : u
        }))
    }
}
