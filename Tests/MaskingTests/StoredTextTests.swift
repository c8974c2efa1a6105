import Foundation
import Ingest
import KaifangCore
@testable import Masking
import Testing

/// A value's stored text as the masker makes it equals what the import stores, read back:
/// the fast path (text already canonical, copied) and the slow one (parsed and formatted).
@Suite struct StoredTextTests {
    static func stored(_ value: String, _ field: FieldSpec) -> String? {
        var raw = value
        var out = ByteBuilder()
        let ok = raw.withUTF8 { StoredText.canonical($0, StoredText.Kind(field), into: &out) }
        return ok ? String(decoding: out.bytes, as: UTF8.self) : nil
    }

    static func imported(_ value: String, _ field: FieldSpec) -> String? {
        var raw = value
        guard case .success(let cell) = raw.withUTF8({ CSVRowSource.convert($0, field: field) }), cell != .null else { return nil }
        return cell.text
    }

    @Test func numbersAndIntegersAreStoredAsTheImportStoresThem() {
        var rng = SeededGenerator.announced(#function)
        let number = FieldSpec(name: "x", type: .number, level: .L1), integer = FieldSpec(name: "i", type: .integer, level: .L1)
        var values = ["0", "-0", "0.0", "1.50", "1570.90", "1570.9", "+5", "007", "0.001", "0.0001", "0.00012", "-0.5", "1e3", "1E-7",
                      "123456789012345", "1234567890123456", "0.123456789012345", "12345678.1234567", "99999999999999.9", "-", ".5", "5.", " 7 "]
        let pieces = ["0", "1", "9", "5", ".", "-", "+", "00", "e", "12"]
        for _ in 0..<20_000 {
            values.append((0..<Int.random(in: 1...9, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined())
            values.append(String(Double(Int64.random(in: -1_000_000_000...1_000_000_000, using: &rng)) / pow(10, Double(Int.random(in: 0...8, using: &rng)))))
        }
        var wrong: [String] = []
        for v in values {
            if Self.stored(v, number) != Self.imported(v, number) { wrong.append("number \(v): \(Self.stored(v, number) ?? "nil") vs \(Self.imported(v, number) ?? "nil")") }
            if Self.stored(v, integer) != Self.imported(v, integer) { wrong.append("integer \(v): \(Self.stored(v, integer) ?? "nil") vs \(Self.imported(v, integer) ?? "nil")") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) differ: \(wrong.prefix(8))")
    }

    @Test func datesAreStoredAsTheImportStoresThem() {
        let date = FieldSpec(name: "d", type: .date, level: .L1)
        for v in ["2026-02-28", "2026-02-29", "2024-02-29", "2026/03/01", "20260301", "0000-01-01", "2026-13-01", "2026-1-1", " 2026-03-01", "2026-03-01x"] {
            #expect(Self.stored(v, date) == Self.imported(v, date), "\(v)")
        }
    }
}
