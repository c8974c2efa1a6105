import Foundation
import GRDBSQLite
import KaifangCore
import Testing
@testable import VersionFormat

/// Row sets (`RowSets`) against SQLite: the rows they give for any AND of IN filters after any
/// cursor are exactly the rows `SELECT _row … WHERE … AND _row > ? ORDER BY _row LIMIT ?` gives.
@Suite struct RowSetsTests {
    let tmp = TempDir()

    init() throws { try FileManager.default.createDirectory(atPath: tmp.path, withIntermediateDirectories: true) }

    static let manifest = DatasetManifest(id: "sets", title: "集合", description: "测试", department: "测试", topic: "test", tier: .open, fields: [
        FieldSpec(name: "common", type: .string, semantic: .category, level: .L1),
        FieldSpec(name: "district", type: .string, semantic: .category, level: .L1),
        FieldSpec(name: "rare", type: .string, semantic: .category, level: .L1),
        FieldSpec(name: "many", type: .string, semantic: .category, level: .L1),
        FieldSpec(name: "note", type: .string, level: .L1),
        FieldSpec(name: "n", type: .integer, level: .L1),
    ])

    static let districts = ["玄武区", "秦淮区", "建邺区", "鼓楼区", "浦口区", "栖霞区", "雨花台区", "江宁区", "六合区", "溧水区", "高淳区", "😀", ""]

    /// 150 000 rows (three chunks): `common` in half the rows (bitmap chunks), districts one in
    /// thirteen (offset lists), `rare` in a few rows, NULLs in each, `many` with more distinct
    /// values than row sets take.
    static func rows(seed: UInt64) -> [[Cell]] {
        var g = SeededGenerator(seed: seed)
        return (0..<150_000).map { i in
            let r = g.next()
            return [
                r % 2 == 0 ? .text("yes") : (r % 11 == 1 ? .null : .text("no")),
                r % 17 == 3 ? .null : .text(districts[Int((r >> 8) % UInt64(districts.count))]),
                (r >> 20) % 5_000 == 0 ? .text("rare") : .null,
                .text("m\(i % (RowSets.maxValues + 5))"),
                .text("n\(i)"),
                .integer(Int64(i)),
            ]
        }
    }

    func write(_ rows: [[Cell]], name: String) throws -> String {
        let path = tmp.path + "/\(name).sqlite"
        let w = try VersionWriter(path: path, manifest: Self.manifest)
        for r in rows { try w.append(r) }
        _ = try w.finish()
        return path
    }

    @Test func setsGiveWhatSQLiteGivesForAnyFilterAndCursor() throws {
        let path = try write(Self.rows(seed: 11), name: "sets")
        let reader = try VersionReader(path: path, immutable: true)
        #expect(try reader.query("PRAGMA integrity_check") == [[.text("ok")]])
        #expect(Set(RowSets.fields(reader).keys) == ["common", "district", "rare"])
        let values: [String: [String]] = ["common": ["yes", "no", "maybe"], "district": Self.districts + ["无此区"], "rare": ["rare", "none"]]
        var g = SeededGenerator(seed: 5)
        let fieldNames = values.keys.sorted()
        for trial in 0..<120 {
            var filters: [(field: String, values: [String])] = []
            for f in fieldNames.shuffled(using: &g).prefix(1 + Int(g.next() % 3)) {
                let pool = values[f]!
                filters.append((f, (0..<(1 + Int(g.next() % 3))).map { _ in pool[Int(g.next() % UInt64(pool.count))] }))
            }
            let after = [Int64(0), 1, 65_535, 65_536, 65_537, 131_071, 149_990, 150_000, Int64(g.next() % 150_000)][trial % 9]
            let want = [1, 2, 101, 1_001, 40_000][Int(g.next() % 5)]
            let sql = "SELECT _row FROM rows WHERE " + filters.map { f in
                "\(quoteIdentifier(f.field)) IN (\(Array(repeating: "?", count: f.values.count).joined(separator: ",")))"
            }.joined(separator: " AND ") + " AND _row > ? ORDER BY _row LIMIT ?"
            let args: [Cell] = filters.flatMap { $0.values.map(Cell.text) } + [.integer(after), .integer(Int64(want))]
            let expected = try reader.query(sql, args).map { $0[0] }
            let got = try #require(try RowSets.matching(reader, filters, after: after, want: want))
            #expect(got.map(Cell.integer) == expected, "\(filters) after \(after) want \(want)")
            if got.map(Cell.integer) != expected { break }
        }
    }

    @Test func fieldsWithoutSetsAndOldFilesAreLeftToSQLite() throws {
        let path = try write(Array(Self.rows(seed: 3).prefix(RowSets.maxValues + 10)), name: "small")
        let reader = try VersionReader(path: path, immutable: true)
        // Too many distinct values, and a field that is not a category.
        #expect(try RowSets.matching(reader, [("many", ["m1"])], after: 0, want: 10) == nil)
        #expect(try RowSets.matching(reader, [("note", ["n1"])], after: 0, want: 10) == nil)
        #expect(try RowSets.matching(reader, [("district", ["玄武区"]), ("many", ["m1"])], after: 0, want: 10) == nil)
        #expect(try RowSets.matching(reader, [("district", ["玄武区"])], after: 0, want: 10)?.count == 10)
        // A version file written before row sets existed: no table, no sets.
        let old = tmp.path + "/old.sqlite"
        try VersionFileTests.writeWithSQLite(Array(Self.rows(seed: 3).prefix(100)), manifest: Self.manifest, path: old)
        #expect(try RowSets.matching(try VersionReader(path: old, immutable: true), [("district", ["玄武区"])], after: 0, want: 10) == nil)
    }

    @Test func chunksAreOffsetListsOrBitmapsAndRoundTrip() {
        var g = SeededGenerator(seed: 9)
        for density in [1, 3, 16, 64, 4_000] {
            let rows = (1...300_000).filter { _ in g.next() % UInt64(density) == 0 }.map { UInt32($0) }
            var back: [UInt32] = []
            for (chunk, bits) in RowSets.encode(rows) {
                let base = UInt32(chunk) << 16
                if bits.count == 8_192 {
                    for i in 0..<65_536 where bits[i >> 3] & (1 << UInt8(i & 7)) != 0 { back.append(base + UInt32(i)) }
                } else {
                    #expect(bits.count % 2 == 0 && bits.count < 8_192)
                    for i in stride(from: 0, to: bits.count, by: 2) { back.append(base + UInt32(bits[i]) + UInt32(bits[i + 1]) << 8) }
                }
            }
            #expect(back == rows, "density 1/\(density)")
        }
    }
}
