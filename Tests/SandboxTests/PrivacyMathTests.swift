import KaifangCore
import Foundation
import Sandbox
import Testing

@Suite struct PrivacyMathTests {
    /// Over 200 draws with a fixed seed, Laplace(0, b) has mean ≈ 0, mean |x| ≈ b and variance ≈ 2b².
    /// The tolerances are about four standard errors: with this seed the test is deterministic, and
    /// a wrong scale (b/2 or 2b) or a one-sided draw would fail it.
    @Test(arguments: [0.5, 2.0, 10.0])
    func laplaceNoiseMatchesItsScale(_ b: Double) {
        var g = SeededGenerator(seed: 20261122)
        let n = 200
        let xs = (0..<n).map { _ in Laplace.sample(scale: b, using: &g) }
        let mean = xs.reduce(0, +) / Double(n)
        let mad = xs.map(abs).reduce(0, +) / Double(n)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
        // sd(mean) = sqrt(2) b / sqrt(n) ≈ 0.1 b; sd(mean |x|) = b / sqrt(n) ≈ 0.07 b.
        #expect(abs(mean) < 0.4 * b)
        #expect(abs(mad - b) < 0.28 * b)
        #expect(abs(variance / (2 * b * b) - 1) < 0.6)
        #expect(xs.contains { $0 > 0 } && xs.contains { $0 < 0 })
    }

    @Test func symmetricDifferenceCountsBothSides() {
        let a: [UInt64] = [1, 2, 3, 5, 8]
        let b: [UInt64] = [1, 3, 4, 5, 8, 9]
        #expect(RowSet.symmetricDifference(a, b, limit: 100) == 3)
        #expect(RowSet.symmetricDifference(a, a, limit: 100) == 0)
        #expect(RowSet.symmetricDifference([], b, limit: 100) == 6)
        #expect(RowSet.symmetricDifference(Array(0..<1000), [], limit: 9) > 9)
    }

    @Test func unitHashesAreSaltedAndStable() {
        let v = Array("320508194108040102".utf8)
        let h1 = v.withUnsafeBufferPointer { RowSet.hash($0, salt: 1) }
        let h2 = v.withUnsafeBufferPointer { RowSet.hash($0, salt: 1) }
        let h3 = v.withUnsafeBufferPointer { RowSet.hash($0, salt: 2) }
        #expect(h1 == h2 && h1 != h3)
    }
}
