import Crypto
import Foundation
import KaifangCore

/// A license's fingerprint in a numeric field (数据溯源): each served value moves by at most one
/// step of the field's declared tolerance, to the neighbour whose grid point has keyed bit 1
/// under the license's key. A file anyone serves unmarked has about half of its distinct grid
/// points on 1-bits for any key; a file served to a license has about seven in eight on that
/// license's 1-bits. `FingerprintTrace` turns the difference into a probability.
///
/// Deterministic: the same value of the same field is served the same to the same license, so
/// downloading again and averaging removes nothing. A value keeps the digits it has below the
/// step (`461.237` with step 0.01 becomes `461.227`, `461.237` or `461.247`), so a value on the
/// grid stays on it and every value moves by at most one step.
public struct Fingerprint: Sendable, Equatable {
    /// The grid step: the declared tolerance.
    public let step: Double
    /// The step's decimals (0–6) and the step in units of 10^-decimals.
    let decimals: Int
    let stepUnits: Int64
    /// The field's declared bounds: a mark never moves a value outside them.
    let lo: Double, hi: Double

    /// - Throws: `FingerprintError` for a tolerance that is not a positive finite number with at
    ///   most 6 decimals.
    public init(tolerance: Double, min: Double? = nil, max: Double? = nil) throws {
        guard let d = FingerprintSpec.decimals(of: tolerance) else { throw FingerprintError.badTolerance(tolerance) }
        step = tolerance
        decimals = d
        stepUnits = Int64((tolerance * pow(10, Double(d))).rounded())
        lo = min ?? -.infinity
        hi = max ?? .infinity
    }

    /// The value's position on the grid.
    @inline(__always) func grid(_ v: Double) -> Int64? {
        let g = (v / step).rounded()
        guard g.isFinite, abs(g) < 9e15 else { return nil }
        return Int64(g)
    }

    /// How many steps (−1, 0 or 1) the value moves for the key's holder: to the grid point among
    /// its own and its two neighbours whose bit is 1 (a keyed coin picks among several), within
    /// the field's bounds; 0 when none is.
    @inline(__always) func offset(_ v: Double, field: FingerprintKey.Field, key: FingerprintKey) -> Int64 {
        guard let g = grid(v) else { return 0 }
        var candidates: (Int64, Int64, Int64) = (0, 0, 0)
        var n = 0
        for d: Int64 in -1...1 where key.bit(field, g &+ d) {
            if d != 0 {
                let moved = v + Double(d) * step
                if moved < lo || moved > hi { continue }
            }
            switch n { case 0: candidates.0 = d; case 1: candidates.1 = d; default: candidates.2 = d }
            n += 1
        }
        switch n {
        case 0: return 0
        case 1: return candidates.0
        default:
            let pick = key.choice(field, g) % UInt64(n)
            return pick == 0 ? candidates.0 : pick == 1 ? candidates.1 : candidates.2
        }
    }

    /// The value served to the key's holder.
    public func mark(_ v: Double, field: FingerprintKey.Field, key: FingerprintKey) -> Double {
        v + Double(offset(v, field: field, key: key)) * step
    }

    /// Appends the served text of the number `raw` (UTF-8): for a plain decimal `-?d+(.d+)?`
    /// computed on its digits, exactly, with as many decimals as it or the step has; anything
    /// else through a double. False when `raw` is no number.
    @inline(__always)
    public func mark(_ raw: UnsafeBufferPointer<UInt8>, field: FingerprintKey.Field, key: FingerprintKey, into out: inout ByteBuilder) -> Bool {
        if let (mantissa, fraction) = Self.plainDecimal(raw) {
            let places = Swift.max(fraction, decimals)
            if places <= 15, let units = Self.scaled(mantissa, by: places - fraction), let stepAt = Self.scaled(stepUnits, by: places - decimals) {
                let v = Double(units) / Self.powers[places]
                if abs(units) < 1 << 53 {
                    let (served, overflow) = units.addingReportingOverflow(offset(v, field: field, key: key) &* stepAt)
                    if !overflow { Self.appendFixed(served, places: places, into: &out); return true }
                }
            }
        }
        guard let v = Apply.parseNumber(raw) else { return false }
        out.append(Cell.format(mark(v, field: field, key: key)))
        return true
    }

    static let powers: [Double] = (0...18).map { pow(10, Double($0)) }

    @inline(__always) static func scaled(_ v: Int64, by places: Int) -> Int64? {
        var r = v
        for _ in 0..<places {
            let (m, o) = r.multipliedReportingOverflow(by: 10)
            if o { return nil }
            r = m
        }
        return r
    }

    /// `-?d+(.d+)?` as its digits read as an integer and its number of decimals; nil for anything
    /// else or more than 18 digits.
    @inline(__always) static func plainDecimal(_ b: UnsafeBufferPointer<UInt8>) -> (Int64, Int)? {
        var i = 0
        let negative = !b.isEmpty && b[0] == 0x2D
        if negative { i = 1 }
        var m: Int64 = 0, digits = 0, fraction = 0, dot = false
        while i < b.count {
            let c = b[i]
            if c == 0x2E {
                if dot || digits == 0 { return nil }
                dot = true
            } else {
                let d = c &- 0x30
                guard d < 10, digits < 18 else { return nil }
                m = m * 10 + Int64(d)
                digits += 1
                if dot { fraction += 1 }
            }
            i += 1
        }
        guard digits > 0, !dot || fraction > 0 else { return nil }
        return (negative ? -m : m, fraction)
    }

    /// Appends `units` × 10^-places with exactly `places` decimals.
    @inline(__always) static func appendFixed(_ units: Int64, places: Int, into out: inout ByteBuilder) {
        if places == 0 { out.append(decimal: units); return }
        if units < 0 { out.append(0x2D) }
        let m = units.magnitude
        var p: UInt64 = 1
        for _ in 0..<places { p &*= 10 }
        out.append(decimal: Int64(m / p))
        out.append(0x2E)
        // The fraction, zero-padded to `places` digits, written without a buffer of its own.
        let rest = m % p
        var width = 1
        var bound: UInt64 = 10
        while width < places && rest >= bound { width += 1; bound &*= 10 }
        for _ in width..<places { out.append(0x30) }
        out.append(decimal: Int64(rest))
    }

    /// Whether a served value sits on a 1-bit of `key`; nil when it is no number on the grid.
    public func agrees(_ v: Double, field: FingerprintKey.Field, key: FingerprintKey) -> Bool? {
        grid(v).map { key.bit(field, $0) }
    }
}

public enum FingerprintError: Error, Equatable, CustomStringConvertible {
    case badTolerance(Double)
    public var description: String {
        switch self {
        case .badTolerance(let t): "fingerprint tolerance \(t) must be a positive number with at most 6 decimals (the largest change a value may take, in the field's unit)"
        }
    }
}

/// The secret behind one license's marks: SipHash-2-4 keys derived from the platform secret
/// and the license id, so marks need no storage and nobody without the platform secret can
/// tell which neighbour is marked.
public struct FingerprintKey: Sendable, Equatable {
    /// A field, by the hash of its name (marks differ per field).
    public struct Field: Sendable, Equatable {
        let salt: UInt64
        public init(_ name: String) { salt = SipHash.hash(Array(name.utf8), k0: 0x6669_656C_6431_3233, k1: 0x6B61_6966_616E_6721) }
    }

    let k0: UInt64, k1: UInt64

    /// The key of `license` under the platform secret.
    public init(platform secret: SymmetricKey, license: String) {
        self.init(keys: PseudonymKeys(secret: secret), license: license)
    }

    /// The key of `license` from the platform's keys (its own HKDF scope).
    public init(keys: PseudonymKeys, license: String) {
        let bytes = keys.key(scope: "fingerprint:license:\(license)").withUnsafeBytes { Array($0) }
        var a: UInt64 = 0, b: UInt64 = 0
        for i in 0..<8 { a |= UInt64(bytes[i]) << (8 * UInt64(i)); b |= UInt64(bytes[8 + i]) << (8 * UInt64(i)) }
        k0 = a; k1 = b
    }

    /// A key from its two halves (tests).
    public init(k0: UInt64, k1: UInt64) { self.k0 = k0; self.k1 = k1 }

    @inline(__always) func word(_ field: Field, _ g: Int64, _ tag: UInt64) -> UInt64 {
        SipHash.hash(words: field.salt, UInt64(bitPattern: g), tag, k0: k0, k1: k1)
    }

    /// The grid point's bit.
    @inline(__always) public func bit(_ field: Field, _ g: Int64) -> Bool { word(field, g, 1) & 1 == 1 }

    /// The coin that picks among several marked neighbours of grid point `g`.
    @inline(__always) func choice(_ field: Field, _ g: Int64) -> UInt64 { word(field, g, 2) >> 1 }
}

/// How strongly a set of served values carries one key's marks: the distinct (field, grid
/// point) pairs seen, those on the key's 1-bits, and the probability that values nobody marked
/// for this key agree at least as often (each distinct pair agrees with probability ½ then,
/// independently: distinct pairs are distinct inputs to the keyed hash).
public struct FingerprintEvidence: Sendable, Equatable {
    public var values: Int
    public var agreeing: Int
    /// log₁₀ of P(Binomial(values, ½) ≥ agreeing).
    public var log10P: Double

    public init(values: Int, agreeing: Int) {
        self.values = values; self.agreeing = agreeing
        log10P = Self.log10Tail(n: values, k: agreeing)
    }

    /// log₁₀ P(X ≥ k) for X ~ Binomial(n, ½), summed exactly in log space.
    public static func log10Tail(n: Int, k: Int) -> Double {
        guard k > 0 else { return 0 }
        guard k <= n else { return -.infinity }
        let ln2n = Double(n) * log(2.0)
        func lnTerm(_ i: Int) -> Double { lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1)) - ln2n }
        // Terms fall off quickly past the mode: sum from k until they stop mattering.
        let first = lnTerm(k)
        var sum = 1.0
        var i = k + 1
        while i <= n {
            let r = exp(lnTerm(i) - first)
            sum += r
            if r < 1e-17 * sum { break }
            i += 1
        }
        return (first + log(sum)) / log(10.0)
    }
}

/// Names the licenses whose fingerprint a file carries.
public enum FingerprintTrace {
    /// The false-accusation probability allowed over all licenses tried at once.
    public static let falseAccusation = 1e-9

    /// The evidence for each key over `values` (field and served number). Repeated values count
    /// once: they are one trial, not many.
    public static func evidence(_ values: [(field: String, value: Double, tolerance: Double)], keys: [FingerprintKey]) -> [FingerprintEvidence] {
        var points: [(field: FingerprintKey.Field, grid: Int64)] = []
        var seen = Set<String>()
        var fields: [String: FingerprintKey.Field] = [:]
        for v in values {
            guard let fp = try? Fingerprint(tolerance: v.tolerance), let g = fp.grid(v.value) else { continue }
            guard seen.insert("\(v.field)\u{1F}\(g)").inserted else { continue }
            let f = fields[v.field] ?? FingerprintKey.Field(v.field)
            fields[v.field] = f
            points.append((f, g))
        }
        return keys.map { key in
            var agreeing = 0
            for p in points where key.bit(p.field, p.grid) { agreeing += 1 }
            return FingerprintEvidence(values: points.count, agreeing: agreeing)
        }
    }

    /// Whether evidence names its key when `tried` keys were tried: the chance that any of them
    /// agrees this well by accident is at most `falseAccusation` (Bonferroni).
    public static func names(_ e: FingerprintEvidence, tried: Int) -> Bool {
        e.log10P <= log10(falseAccusation / Double(max(tried, 1)))
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash built to be a pseudorandom function
/// on short inputs.
enum SipHash {
    @inline(__always) static func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }

    struct State {
        var v0, v1, v2, v3: UInt64
        init(k0: UInt64, k1: UInt64) {
            v0 = k0 ^ 0x736F_6D65_7073_6575; v1 = k1 ^ 0x646F_7261_6E64_6F6D
            v2 = k0 ^ 0x6C79_6765_6E65_7261; v3 = k1 ^ 0x7465_6462_7974_6573
        }
        @inline(__always) mutating func round() {
            v0 &+= v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
            v2 &+= v3; v3 = rotl(v3, 16); v3 ^= v2
            v0 &+= v3; v3 = rotl(v3, 21); v3 ^= v0
            v2 &+= v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        }
        @inline(__always) mutating func absorb(_ m: UInt64) { v3 ^= m; round(); round(); v0 ^= m }
        @inline(__always) mutating func finish() -> UInt64 { v2 ^= 0xFF; round(); round(); round(); round(); return v0 ^ v1 ^ v2 ^ v3 }
    }

    /// The hash of a byte string.
    static func hash(_ bytes: [UInt8], k0: UInt64, k1: UInt64) -> UInt64 {
        var s = State(k0: k0, k1: k1)
        let full = bytes.count / 8
        for w in 0..<full {
            var m: UInt64 = 0
            for i in 0..<8 { m |= UInt64(bytes[w * 8 + i]) << (8 * UInt64(i)) }
            s.absorb(m)
        }
        var last = UInt64(bytes.count & 0xFF) << 56
        for i in 0..<(bytes.count % 8) { last |= UInt64(bytes[full * 8 + i]) << (8 * UInt64(i)) }
        s.absorb(last)
        return s.finish()
    }

    /// The hash of three 64-bit words (24 bytes, little-endian): no allocation.
    @inline(__always) static func hash(words a: UInt64, _ b: UInt64, _ c: UInt64, k0: UInt64, k1: UInt64) -> UInt64 {
        var s = State(k0: k0, k1: k1)
        s.absorb(a); s.absorb(b); s.absorb(c)
        s.absorb(UInt64(24) << 56)
        return s.finish()
    }
}
