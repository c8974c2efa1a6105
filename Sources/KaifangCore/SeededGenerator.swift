import Foundation

/// Deterministic pseudo-random numbers.

/// A seedable generator (SplitMix64): reproducible noise and synthetic rows in tests and dry
/// runs, and the tests' random data. Production noise draws from the system generator.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SeededGenerator {
    /// A generator for a randomized test: seeded from `KAIFANG_TEST_SEED` when it is set (to
    /// replay a failure), else from the system generator; the seed is printed with the test's
    /// name either way, so any failing run can be repeated exactly.
    public static func announced(_ test: String) -> SeededGenerator {
        var seed: UInt64
        if let text = ProcessInfo.processInfo.environment["KAIFANG_TEST_SEED"], let given = UInt64(text) {
            seed = given
        } else {
            var system = SystemRandomNumberGenerator()
            seed = system.next()
        }
        print("\(test): seed \(seed) (replay with KAIFANG_TEST_SEED=\(seed))")
        return SeededGenerator(seed: seed)
    }
}
