import Foundation
import Ingest
import KaifangCore
import Testing

/// Header matching and type enforcement, with file:line:column errors that never echo a value.
@Suite struct TypedRowTests {
    let manifest = DatasetManifest(id: "t", title: "T", fields: [
        FieldSpec(name: "id_number", title: "身份证号", type: .string, semantic: .resident_id, level: .L4),
        FieldSpec(name: "age", type: .integer, level: .L2, min: 0, max: 120),
        FieldSpec(name: "amount", type: .number, level: .L2),
        FieldSpec(name: "born", type: .date, level: .L2),
        FieldSpec(name: "seen", type: .datetime, level: .L1),
        FieldSpec(name: "active", type: .boolean, level: .L1),
    ])

    func source(_ text: String) throws -> CSVRowSource {
        try CSVRowSource(reader: CSVReader(source: MemoryByteSource(text), fileName: "f.csv"), manifest: manifest)
    }

    func source(_ bytes: [UInt8]) throws -> CSVRowSource {
        try CSVRowSource(reader: CSVReader(source: MemoryByteSource(bytes), fileName: "f.csv"), manifest: manifest)
    }

    func headerError(_ text: String) -> String? {
        do { _ = try source(text); return nil } catch let e as KaifangError { return e.message } catch { return "\(error)" }
    }

    func issues(_ text: String) throws -> [ImportIssue] {
        let s = try source(text)
        var out: [ImportIssue] = []
        while let r = try s.next() { if case .rejected(let i, _) = r { out += i } }
        return out
    }

    @Test func aValidRowBecomesTypedCellsInManifestOrderWhateverTheColumnOrder() throws {
        let s = try source("active,seen,born,amount,age,身份证号\nyes,2026-06-01 08:30,1990/02/28,12.5,34,11010519491231002X\n")
        guard case .row(let cells)? = try s.next() else { Issue.record("no row"); return }
        #expect(cells == [.text("11010519491231002X"), .integer(34), .real(12.5), .text("1990-02-28"), .text("2026-06-01T08:30:00"), .integer(1)])
        #expect(try s.next() == nil)
    }

    @Test func emptyValuesAreNull() throws {
        let s = try source("id_number,age,amount,born,seen,active\n,,,,,\n")
        guard case .row(let cells)? = try s.next() else { Issue.record("no row"); return }
        #expect(cells.allSatisfy { $0 == .null })
    }

    @Test func aHeaderColumnThatIsNoFieldIsRefusedNamingIt() {
        let msg = headerError("id_number,age,amount,born,seen,active,colour\n")
        #expect(msg?.contains("f.csv:1:") == true)
        #expect(msg?.contains("'colour' is not a field of the manifest") == true)
    }

    @Test func aFieldWithoutAColumnIsRefusedNamingIt() {
        #expect(headerError("id_number,age,amount,born,seen\n")?.contains("field 'active' of the manifest has no column") == true)
    }

    @Test func aFieldNamedTwiceIsRefused() {
        #expect(headerError("id_number,身份证号,age,amount,born,seen,active\n")?.contains("a second time") == true)
    }

    @Test func anEmptyFileIsRefused() {
        #expect(headerError("")?.contains("the file is empty") == true)
    }

    @Test func aWrongColumnCountNamesTheLine() throws {
        let found = try issues("id_number,age,amount,born,seen,active\n1,2,3,1990-01-01,2026-01-01,1\nx,1\n")
        #expect(found.count == 1)
        #expect(found[0].position.line == 3)
        #expect(found[0].reason.contains("expected 6 columns as in the header, found 2"))
    }

    @Test func aNonNumberInANumberColumnNamesLineColumnAndField() throws {
        let found = try issues("id_number,age,amount,born,seen,active\nA,3,12x,1990-01-01,2026-01-01,1\n")
        #expect(found.map(\.description) == ["f.csv:2:5: field 'amount': expected a number (like 12, -3.5 or 1e6), found text of 3 characters (digits, letters)"])
    }

    @Test func valuesAreNeverEchoedInErrors() throws {
        let secret = "13812345678abc"
        let found = try issues("id_number,age,amount,born,seen,active\nA,\(secret),1,1990-01-01,2026-01-01,1\n")
        #expect(found.count == 1)
        #expect(!found[0].description.contains(secret))
        #expect(!found[0].description.contains("138"))
    }

    @Test func boundsAndCalendarDatesAreEnforced() throws {
        let found = try issues("id_number,age,amount,born,seen,active\nA,121,1,2023-02-29,2026-13-01 00:00,maybe\n")
        #expect(found.map(\.field) == ["age", "born", "seen", "active"])
        #expect(found[0].reason.contains("above the declared max 120"))
        #expect(found[1].reason.contains("real calendar date"))
    }

    @Test func invalidUTF8IsRefusedAtTheBadByte() throws {
        var bytes = Array("id_number,age,amount,born,seen,active\n".utf8)
        bytes += Array("ab".utf8) + [0xC4, 0xE3] + Array(",1,1,,,\n".utf8) // GBK bytes in a UTF-8 file
        let s = try source(bytes)
        guard case .rejected(let found, _)? = try s.next() else { Issue.record("not rejected"); return }
        #expect(found.count == 1)
        #expect(found[0].position == TextPosition(line: 2, column: 3))
        #expect(found[0].reason.contains("--encoding gb18030"))
    }

    @Test(arguments: [
        ("2024-02-29", "2024-02-29"), ("2024/2/29", nil), ("20240229", "2024-02-29"), ("1900-02-29", nil),
        ("2000-02-29", "2000-02-29"), ("2024-04-31", nil), ("2024-00-10", nil), (" 2024-12-31 ", "2024-12-31"),
    ] as [(String, String?)])
    func datesAreRealCalendarDates(input: String, expected: String?) {
        let out = Array(input.utf8).withUnsafeBufferPointer { ValueParser.date($0) }
        #expect(out == expected)
    }

    @Test(arguments: [
        ("2026-06-01 08:30", "2026-06-01T08:30:00"), ("2026-06-01T08:30:15Z", "2026-06-01T08:30:15Z"),
        ("2026-06-01T08:30:15.250+08:00", "2026-06-01T08:30:15.250+08:00"), ("2026-06-01", "2026-06-01T00:00:00"),
        ("2026-06-01 24:00", nil), ("2026-06-01T08", nil), ("2026-06-01T08:30+0800", "2026-06-01T08:30:00+08:00"),
    ] as [(String, String?)])
    func datetimesNormalizeToISO(input: String, expected: String?) {
        let out = Array(input.utf8).withUnsafeBufferPointer { ValueParser.datetime($0) }
        #expect(out == expected)
    }

    @Test(arguments: [("42", Int64(42)), ("-7", -7), ("+3", 3), (" 12 ", 12), ("9223372036854775807", Int64.max),
                      ("9223372036854775808", nil), ("1.0", nil), ("", nil), ("-", nil), ("1e3", nil)] as [(String, Int64?)])
    func integersParseStrictly(input: String, expected: Int64?) {
        #expect(Array(input.utf8).withUnsafeBufferPointer { ValueParser.integer($0) } == expected)
    }

    @Test func utf8ValidationFindsTheFirstBadByte() {
        func prefix(_ b: [UInt8]) -> Int { b.withUnsafeBufferPointer { ValueParser.validUTF8Prefix($0) } }
        #expect(prefix(Array("中文ok".utf8)) == 8)
        #expect(prefix([0x61, 0xC0, 0x80]) == 1)          // overlong
        #expect(prefix([0x61, 0xED, 0xA0, 0x80]) == 1)    // surrogate
        #expect(prefix([0x61, 0x62, 0xE4, 0xB8]) == 2)    // truncated
        #expect(prefix([0xF4, 0x90, 0x80, 0x80]) == 0)    // above U+10FFFF
    }

    @Test func numbersParseToTheSameDoubleAsStrtod() {
        // The plain-decimal fast path (an exact integer over an exact power of ten) against
        // Foundation's parser, over random decimals of every length around the 2^53 and 10^22
        // limits, with signs, leading zeros, a bare dot at either end and exponents.
        var state: UInt64 = 0x5EED
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(next(10))) }) }
        var fast = 0
        for _ in 0..<20_000 {
            var s = ["", "-", "+"][next(3)]
            s += String(repeating: "0", count: next(3)) + digits(next(18))
            if next(4) != 0 { s += "." + digits(next(25)) }
            if next(10) == 0 { s += "e" + String(next(40) - 20) }
            let parsed = s.utf8.withContiguousStorageIfAvailable { ValueParser.number($0) } ?? nil
            let expected = Double(s).flatMap { $0.isFinite ? $0 : nil }
            #expect(parsed?.bitPattern == expected?.bitPattern, "\(s)")
            if parsed != nil { fast += 1 }
        }
        #expect(fast > 10_000)
        for bad in ["", "-", "+", ".", "-.", "1.2.3", "1-2", "e5", "--1"] {
            #expect(bad.utf8.withContiguousStorageIfAvailable { ValueParser.number($0) } == .some(nil), "\(bad)")
        }
    }

    @Test func textIsRefusedExactlyWhenItIsNotUTF8() {
        // The single-validation path for text against the byte-by-byte validator, over random
        // bytes biased towards (and away from) well-formed multi-byte sequences.
        var state: UInt64 = 0xC0FFEE
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let pieces: [[UInt8]] = [Array("a".utf8), Array("中".utf8), Array("😀".utf8), Array("\u{FFFD}".utf8), [0xE4, 0xB8], [0xF0, 0x9F, 0x98], [0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xFF], [0xF4, 0x90, 0x80, 0x80], Array(" ".utf8)]
        let field = FieldSpec(name: "t", type: .string, level: .L1)
        var refused = 0
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            for _ in 0..<next(8) { bytes += pieces[next(next(2) == 0 ? 4 : pieces.count)] }
            let valid = bytes.withUnsafeBufferPointer { ValueParser.validUTF8Prefix($0) } == bytes.count
            let result = bytes.withUnsafeBufferPointer { CSVRowSource.convert($0, field: field) }
            if case .failure = result { refused += 1; #expect(!valid, "\(bytes)") } else { #expect(valid, "\(bytes)") }
            if case .success(.text(let s)) = result { #expect(Array(s.utf8) == bytes) }
        }
        #expect(refused > 1000 && refused < 19_000)
    }
}
