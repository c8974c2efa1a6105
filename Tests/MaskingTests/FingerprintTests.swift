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

    /// The text path computes on the digits: a value keeps its decimals (at least the step's),
    /// moves by at most one step, never past the field's bounds, an integer stays an integer,
    /// and it agrees with the double path.
    @Test func textMarksAreExactDecimalsWithinTheStepAndBounds() throws {
        let key = FingerprintKey(k0: 11, k1: 12), field = FingerprintKey.Field("benefit_amount")
        let cents = try Fingerprint(tolerance: 0.01, min: 0, max: 1000)
        func served(_ fp: Fingerprint, _ text: String) -> String? {
            var out = ByteBuilder()
            var copy = text
            let ok = copy.withUTF8 { fp.mark($0, field: field, key: key, into: &out) }
            return ok ? String(decoding: out.bytes, as: UTF8.self) : nil
        }
        var atBounds = 0
        for i in 0..<3000 {
            let text = i < 1000 ? String(format: "%.2f", Double(i) / 100) : i < 2000 ? String(format: "%.2f", 1000 - Double(i - 1000) / 100) : String(format: "%.3f", Double(i) * 0.137)
            let out = try #require(served(cents, text))
            let v = Double(text)!, w = Double(out)!
            let decimals = text.split(separator: ".").last!.count
            #expect(out.split(separator: ".").last!.count == decimals, "\(text) → \(out)")
            #expect(abs(w - v) <= 0.01 + 1e-9 && w >= 0 && w <= 1000, "\(text) → \(out)")
            #expect(abs(w - cents.mark(v, field: field, key: key)) < 1e-9, "\(text): text and double paths differ")
            if v == 0 || v == 1000 { atBounds += 1 }
        }
        #expect(atBounds == 2)
        #expect(served(cents, "461.2")?.count == 6)   // two decimals: the step's
        #expect(served(cents, "abc") == nil)
        #expect(served(cents, "1e2").map { abs(Double($0)! - 100) <= 0.01 } == true)
        let whole = try Fingerprint(tolerance: 1)
        for n in -50...50 {
            let out = try #require(served(whole, String(n)))
            #expect(Int(out).map { abs($0 - n) <= 1 } == true, "\(n) → \(out)")
        }
    }

    static let manifest = DatasetManifest(id: "d", title: "t", department: "x", topic: "y", fields: [
        FieldSpec(name: "id_number", type: .string, semantic: .resident_id, level: .L4),
        FieldSpec(name: "amount", type: .number, semantic: .amount, level: .L2, min: 0, max: 100_000, fingerprint: FingerprintSpec(tolerance: 0.01)),
        FieldSpec(name: "income", type: .number, semantic: .amount, level: .L2, min: 0, max: 100_000),
        FieldSpec(name: "count", type: .integer, semantic: .count, level: .L3, fingerprint: FingerprintSpec(tolerance: 1)),
    ])

    /// Only a licensee's copy is marked, only in fields with a tolerance that the license
    /// receives as stored; without the platform's keys such a field is not served at all.
    @Test func onlyALicenseesKeptNumbersWithAToleranceAreMarked() throws {
        let keys = PseudonymKeys(secret: SymmetricKey(data: Data(repeating: 3, count: 32)))
        func plan(_ view: View, _ license: String? = nil, fields: Set<String>? = nil, keys k: PseudonymKeys? = keys) -> MaskingPlan {
            MaskingPlan(manifest: Self.manifest, view: view, grant: license.map { LicenseGrant(licenseID: $0, fields: fields) }, keys: k)
        }
        let a = plan(.licensed, "lic_a"), b = plan(.licensed, "lic_b")
        #expect(a.fingerprintedFields == ["amount"])   // count is L3: pseudonymized, not kept
        #expect(plan(.public).fingerprintedFields.isEmpty && plan(.steward).fingerprintedFields.isEmpty)
        #expect(plan(.licensed).fingerprintedFields.isEmpty)   // a preview of the view names no license
        #expect(plan(.licensed, "lic_a", fields: ["income"]).fingerprintedFields.isEmpty)
        #expect(plan(.licensed, "lic_a", keys: nil).columns[1].operation == .suppress)
        #expect(plan(.steward).apply(column: 1, "461.21") == "461.21")
        #expect(a.apply(column: 2, "461.21") == "461.21")
        var differ = 0
        for cents in 0..<2000 {
            let text = String(format: "%.2f", Double(cents) / 100 + 100)
            let (x, y) = (try #require(a.apply(column: 1, text)), try #require(b.apply(column: 1, text)))
            #expect(abs(Double(x)! - Double(text)!) <= 0.0100001 && x == a.apply(column: 1, text))
            if x != y { differ += 1 }
        }
        #expect(differ > 500, "two licenses' copies differ in \(differ) of 2000 values")
        var out = ByteBuilder()
        #expect(a.applyNumber(column: 1, 461.2, into: &out) == true)
        #expect(abs(Double(String(decoding: out.bytes, as: UTF8.self))! - 461.2) <= 0.0100001)
        guard case .real(let r) = a.apply(row: [.text("x"), .real(461.2), .real(3), .integer(4)])[1] else { Issue.record("not a number"); return }
        #expect(abs(r - 461.2) <= 0.0100001)
    }
}
