import Crypto
import Foundation
import Ingest
import KaifangCore
import Masking
import Testing

/// The `kaifang mask` loop skips the quoting check where an operation's output cannot need it:
/// these tests hold each operation to the class it claims, and the loop to RFC 4180.
@Suite struct CSVLineMaskerTests {
    static let keys = PseudonymKeys(secret: SymmetricKey(data: Data(repeating: 9, count: 32)))

    /// One field per kind of operation (explicit actions, so the default matrix can change).
    static let fields: [FieldSpec] = [
        FieldSpec(name: "keep", action: .keep),
        FieldSpec(name: "kept2", action: .keep),
        FieldSpec(name: "kept3", action: .keep),
        FieldSpec(name: "suppress", action: .suppress),
        FieldSpec(name: "chars", action: .mask),
        FieldSpec(name: "pid", semantic: .resident_id, level: .L4, action: .mask),
        FieldSpec(name: "phone", semantic: .phone, action: .mask),
        FieldSpec(name: "landline", semantic: .landline, action: .mask),
        FieldSpec(name: "name", semantic: .person_name, action: .mask),
        FieldSpec(name: "card", semantic: .bank_card, action: .mask),
        FieldSpec(name: "email", semantic: .email, action: .mask),
        FieldSpec(name: "plate", semantic: .license_plate, action: .mask),
        FieldSpec(name: "ip", semantic: .ip, action: .mask),
        FieldSpec(name: "address", semantic: .address, action: .mask),
        FieldSpec(name: "district", semantic: .address, action: .generalize),
        FieldSpec(name: "token", semantic: .phone, action: .pseudonymize),
        FieldSpec(name: "hash", semantic: .text, action: .hash),
        FieldSpec(name: "month", type: .date, action: .generalize),
        FieldSpec(name: "day", type: .datetime, action: .generalize),
        FieldSpec(name: "age", type: .integer, action: .generalize),
        FieldSpec(name: "band", type: .number, action: .generalize),
        FieldSpec(name: "geo", semantic: .geo, action: .generalize),
        FieldSpec(name: "noise", type: .number, action: .noise),
    ]
    static let plan = MaskingPlan(manifest: DatasetManifest(id: "t", title: "T", fields: fields), view: .licensed,
                                  grant: LicenseGrant(licenseID: "lic-1"), keys: keys)

    /// Values that are near every format, with and without bytes that force quoting, and
    /// with full-width forms that fold into them (`，` `＂`).
    static let pieces = ["1", "9", "0", "x", "X", "A", "张", "欧阳", "区", "市", "路", "@", ".", "-", ":", " ", "·",
                         ",", "\"", "\n", "\r", "，", "＂", "１", "320102", "199003071239", "13812341234",
                         "江苏省南京市玄武区", "a@b.cn", "192.168.", "苏A", "2024-05-06", "T08:00", "461.21"]

    static func randomValue(_ rng: inout SeededGenerator) -> String {
        (0..<Int.random(in: 1...5, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    static func hasSpecial(_ s: String) -> Bool { s.utf8.contains(where: CSVBytes.isSpecial) }

    @Test func everyOperationKindIsCovered() {
        let kinds = Set(Self.plan.columns.map { "\($0.operation)".prefix(while: { $0 != "(" }) })
        #expect(kinds.count == Self.fields.count - 2, "\(kinds.sorted())")
    }

    @Test func operationsProduceOnlyTheBytesTheirClassAllows() {
        var rng = SeededGenerator.announced(#function)
        // Every column's typical value and values each format accepts (so an operation that
        // writes a comma itself, as coordinates do, is caught every run), then random ones.
        let fixed = ["1,1", "32.060312,118.796877", "-1.5,2", "a@b.cn", "192.168.1.1", "::1", "苏A12345", "2024-05-06",
                     "2024-05-06T08:00:00", "461.21", "37", "13812341234", "320102199003071239", "张三", "江苏省南京市玄武区中山路1号"]
        for (i, column) in Self.plan.columns.enumerated() {
            let values = fixed + [SampleValues.sample(for: column.field)].compactMap { $0 } + (0..<1000).map { _ in Self.randomValue(&rng) }
            for value in values {
                guard let out = Self.plan.apply(column: i, value, row: 3) else { continue }
                switch column.operation.outputBytes {
                case .generated:
                    #expect(!Self.hasSpecial(out), "\(column.field.name): generated output needs quoting")
                case .input:
                    if !Self.hasSpecial(value) { #expect(!Self.hasSpecial(out), "\(column.field.name): output needs quoting, input did not") }
                case .any:
                    break   // always checked by the writer
                }
            }
        }
    }

    /// RFC 4180 by hand.
    static func quoted(_ s: String) -> String {
        hasSpecial(s) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// Output orders: reversed (no run of kept fields), as read (a run of three kept fields
    /// copied as one span from clean input), and a run broken by a swap.
    static let orders: [[Int]] = [Array((1..<fields.count).reversed()), Array(0..<fields.count), [0, 1, 4, 3, 2] + Array(5..<fields.count)]

    @Test(arguments: orders)
    func linesAreTheOperationsJoinedAndQuoted(order: [Int]) {
        var rng = SeededGenerator.announced(#function)
        let masker = CSVLineMasker(plan: Self.plan, columns: order.map { ($0, $0) })
        var scratch = MaskScratch()
        var typed = ByteBuilder()
        for round in 0..<300 {
            let clean = round % 2 == 0
            var values: [String] = []
            for _ in Self.fields {
                var v = Self.randomValue(&rng)
                if clean { v = String(v.unicodeScalars.filter { !",\"\r\n".unicodeScalars.contains($0) }) }
                values.append(round % 7 == 0 || Int.random(in: 0..<10, using: &rng) == 0 ? "" : v)
            }
            // The record as spans of one buffer, a one-byte gap between fields: a comma, as
            // the reader leaves it for clean input.
            let joined = Array(values.joined(separator: clean ? "," : "|").utf8)
            var ends: [Int] = []
            var at = 0
            for v in values { at += v.utf8.count; ends.append(at); at += 1 }
            var out = ByteBuilder()
            joined.withUnsafeBufferPointer { b in
                ends.withUnsafeBufferPointer { e in
                    let record = FieldSpans(base: b.baseAddress ?? UnsafePointer(bitPattern: 1)!, first: 0, gap: 1, ends: e)
                    masker.append(record, cleanInput: clean, row: 3, scratch: &scratch, typed: &typed, into: &out)
                }
            }
            // The plan applies to the value as the import stores it (typed and canonical, a
            // blank text null; a value the import refuses is null too).
            let expected = order.map { i in
                var raw = values[i]
                let stored = raw.withUTF8 { CSVRowSource.convert($0, field: Self.fields[i]) }
                guard case .success(let cell) = stored, cell != .null else { return "" }
                return Self.plan.apply(column: i, cell.text, row: 3).map(Self.quoted) ?? ""
            }.joined(separator: ",") + "\n"
            #expect(String(decoding: out.bytes, as: UTF8.self) == expected)
        }
    }

    /// Number and integer columns banded as numbers: the loop bands plain decimals it knows in
    /// range from their digits and parses the rest; either way the bands are those of the
    /// values the import stores, and values out of range or of the wrong kind are null.
    @Test func numbersAreBandedAsTheirStoredValues() {
        var rng = SeededGenerator.announced(#function)
        let fields = [
            FieldSpec(name: "income", type: .number, min: 0, max: 1_000_000, action: .generalize),
            FieldSpec(name: "size", type: .integer, min: 1, max: 20, action: .generalize),
            FieldSpec(name: "amount", type: .number, min: 150, max: 99_999.5, action: .generalize),
            FieldSpec(name: "any", type: .number, action: .generalize),
            FieldSpec(name: "count", type: .integer, action: .generalize),
        ]
        let plan = MaskingPlan(manifest: DatasetManifest(id: "t", title: "T", fields: fields), view: .licensed,
                               grant: LicenseGrant(licenseID: "lic-1"), keys: Self.keys)
        let masker = CSVLineMasker(plan: plan, columns: fields.indices.map { ($0, $0) })
        var values = ["0", "1", "20", "21", "1000000", "1000000.0", "1000000.5", "999999.99", "150", "149.99", "99999.5", "99999.50",
                      "99999.51", "705.00", "0705", "+705", "-3", "-0.5", "0.5", "1e3", "123456789012345", "1234567890123456",
                      "999999999999999", "9999999999999999", "12345678901234.5", "1234567890123.45", "9.", ".9", "1.2.3", " 7", "7 "]
        for _ in 0..<5_000 {
            let digits = (0..<Int.random(in: 1...17, using: &rng)).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined()
            var v = digits
            if Bool.random(using: &rng) { v.insert(".", at: v.index(v.startIndex, offsetBy: Int.random(in: 0...digits.count, using: &rng))) }
            if Int.random(in: 0..<8, using: &rng) == 0 { v = "-" + v }
            values.append(v)
        }
        var scratch = MaskScratch()
        var typed = ByteBuilder()
        var wrong: [String] = []
        for value in values {
            let row = Array(repeating: value, count: fields.count)
            let bytes = Array(row.joined(separator: ",").utf8)
            let ends = (1...fields.count).map { $0 * (value.utf8.count + 1) - 1 }
            var out = ByteBuilder()
            bytes.withUnsafeBufferPointer { b in
                ends.withUnsafeBufferPointer { e in
                    masker.append(FieldSpans(base: b.baseAddress!, first: 0, gap: 1, ends: e), cleanInput: true, row: 1, scratch: &scratch, typed: &typed, into: &out)
                }
            }
            let expected = fields.indices.map { i -> String in
                var raw = value
                guard case .success(let cell) = raw.withUTF8({ CSVRowSource.convert($0, field: fields[i]) }), cell != .null else { return "" }
                return plan.apply(column: i, cell.text, row: 1) ?? ""
            }.joined(separator: ",") + "\n"
            let got = String(decoding: out.bytes, as: UTF8.self)
            if got != expected { wrong.append("\(value): \(got.dropLast()) vs \(expected.dropLast())") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) differ: \(wrong.prefix(6))")
    }
}
