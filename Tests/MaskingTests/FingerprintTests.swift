import Crypto
import Foundation
import KaifangCore
@testable import Masking
import Testing

/// The fingerprint scheme on its own: the keyed hash against its published vectors, the tail
/// probability against exact sums, and a leak traced among a thousand licenses.
@Suite struct FingerprintTests {
    /// SipHash-2-4 with key 00…0f: the empty message and 00…0e are the paper's vectors; 00…17
    /// (the three-word form) was computed with an independent Python implementation that
    /// reproduces those two.
    @Test func sipHashMatchesItsVectors() {
        let (k0, k1): (UInt64, UInt64) = (0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908)
        #expect(SipHash.hash([], k0: k0, k1: k1) == 0x726F_DB47_DD0E_0E31)
        #expect(SipHash.hash(Array(0..<15), k0: k0, k1: k1) == 0xA129_CA61_49BE_45E5)
        #expect(SipHash.hash(Array(0..<24), k0: k0, k1: k1) == 0xB8AD_50C6_F649_AF94)
        #expect(SipHash.hash(words: 0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908, 0x1716_1514_1312_1110, k0: k0, k1: k1) == 0xB8AD_50C6_F649_AF94)
    }

    /// P(Binomial(n, ½) ≥ k) against sums of binomial coefficients.
    @Test func theTailIsTheBinomialSum() {
        func exact(_ n: Int, _ k: Int) -> Double {
            var c = 1.0, sum = 0.0
            for i in 0...n {
                if i >= k { sum += c }
                c = c * Double(n - i) / Double(i + 1)
            }
            return log10(sum / pow(2, Double(n)))
        }
        for (n, k) in [(10, 8), (10, 0), (10, 10), (40, 30), (100, 51), (200, 180)] {
            #expect(abs(FingerprintEvidence.log10Tail(n: n, k: k) - exact(n, k)) < 1e-9, "\(n) \(k)")
        }
        #expect(FingerprintEvidence.log10Tail(n: 5, k: 6) == -.infinity)
    }

    /// A served value moves by at most one step when it lies on the grid, the same every time;
    /// a tolerance that is no positive number is refused.
    @Test func marksMoveByAtMostAStepAndRepeat() throws {
        let fp = try Fingerprint(tolerance: 0.01)
        let key = FingerprintKey(k0: 1, k1: 2), field = FingerprintKey.Field("benefit_amount")
        var moved = 0
        for cents in 0..<5000 {
            let v = Double(cents) / 100
            let served = fp.mark(v, field: field, key: key)
            #expect(abs(served - v) <= 0.01 + 1e-9)
            #expect(served == fp.mark(v, field: field, key: key))
            if abs(served - v) > 1e-9 { moved += 1 }
        }
        #expect(moved > 1000 && moved < 4000, "\(moved)")
        #expect(throws: FingerprintError.self) { try Fingerprint(tolerance: 0) }
        #expect(throws: FingerprintError.self) { try Fingerprint(tolerance: .nan) }
    }

    /// 100 000 amounts served to license 417 of 1 000; 10 % of the rows leak, 20 % of those
    /// values altered, only the marked column kept: the trace names 417 alone, with a
    /// false-accusation probability ≤ 10⁻⁹ over the thousand; the unmarked file names nobody;
    /// a column of one repeated value is one trial; mean and variance move < 1 %.
    @Test func aLeakIsTracedToItsLicenseAmongAThousand() throws {
        var rng = SeededGenerator.announced(#function)
        let secret = SymmetricKey(data: Data(repeating: 7, count: 32))
        let keys = (0..<1000).map { FingerprintKey(platform: secret, license: "lic_\($0)") }
        let fp = try Fingerprint(tolerance: 0.01)
        let field = FingerprintKey.Field("benefit_amount")
        let original = (0..<100_000).map { _ in Double(Int.random(in: 0..<500_000, using: &rng)) / 100 }
        let served = original.map { fp.mark($0, field: field, key: keys[417]) }

        func stats(_ xs: [Double]) -> (mean: Double, variance: Double) {
            let m = xs.reduce(0, +) / Double(xs.count)
            return (m, xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count))
        }
        let (m0, v0) = stats(original), (m1, v1) = stats(served)
        #expect(abs(m1 - m0) / m0 < 0.01 && abs(v1 - v0) / v0 < 0.01)

        var leaked = served.indices.filter { _ in Int.random(in: 0..<10, using: &rng) == 0 }.map { served[$0] }
        for i in leaked.indices where Int.random(in: 0..<5, using: &rng) == 0 {
            leaked[i] += Double(Int.random(in: -500...500, using: &rng)) / 100
        }
        let file = leaked.map { (field: "benefit_amount", value: $0, tolerance: 0.01) }
        let evidence = FingerprintTrace.evidence(file, keys: keys)
        let named = evidence.indices.filter { FingerprintTrace.names(evidence[$0], tried: keys.count) }
        #expect(named == [417], "\(named)")
        #expect(evidence[417].log10P < -9 - 3 && evidence[417].values > 9000)

        let unmarked = original.prefix(3000).map { (field: "benefit_amount", value: $0, tolerance: 0.01) }
        #expect(FingerprintTrace.evidence(unmarked, keys: keys).allSatisfy { !FingerprintTrace.names($0, tried: keys.count) })
        let repeated = Array(repeating: (field: "benefit_amount", value: 100.0, tolerance: 0.01), count: 10_000)
        #expect(FingerprintTrace.evidence(repeated, keys: keys).allSatisfy { $0.values == 1 && !FingerprintTrace.names($0, tried: keys.count) })
    }
}
