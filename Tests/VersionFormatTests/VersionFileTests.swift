import Foundation
import GRDBSQLite
import KaifangCore
import Testing
@testable import VersionFormat

/// The version writer writes SQLite's file format itself; these tests hold its files to SQLite:
/// `PRAGMA integrity_check`, and the same rows written by SQLite (inserts, CREATE INDEX,
/// ANALYZE) — the same table, the same order in every index, the same `sqlite_stat1`.
@Suite struct VersionFileTests {
    let tmp = TempDir()

    init() throws { try FileManager.default.createDirectory(atPath: tmp.path, withIntermediateDirectories: true) }

    static let manifest = DatasetManifest(id: "mix", title: "混合", description: "测试", department: "测试", topic: "test", tier: .open, fields: [
        FieldSpec(name: "n", type: .integer, level: .L1),
        FieldSpec(name: "x", type: .number, level: .L1),
        FieldSpec(name: "mixed", type: .number, level: .L1),
        FieldSpec(name: "flag", type: .boolean, level: .L1),
        FieldSpec(name: "day", type: .date, level: .L1),
        FieldSpec(name: "at", type: .datetime, level: .L1),
        FieldSpec(name: "kind", type: .string, semantic: .category, level: .L1),
        FieldSpec(name: "long_kind", type: .string, semantic: .category, level: .L1),
        FieldSpec(name: "note", type: .string, level: .L1),
        FieldSpec(name: "empty", type: .string, semantic: .category, level: .L1),
    ])

    /// Random rows: NULLs everywhere, extreme integers, -0.0, tiny and huge reals, CJK and
    /// emoji, keys long enough to overflow index pages and notes long enough for overflow chains.
    static func rows(_ n: Int, seed: UInt64) -> [[Cell]] {
        var g = SeededGenerator(seed: seed)
        let kinds = ["玄武区", "秦淮区", "A", "a", "", "Z", "区", "😀", "ab", "abc"]
        func maybe(_ c: Cell) -> Cell { g.next() % 7 == 0 ? .null : c }
        func text(_ len: Int) -> String {
            let pool: [String] = ["a", "b", "中", "文", "😀", "1", " ", "é"]
            return String((0..<len).map { _ in Character(pool[Int(g.next() % UInt64(pool.count))]) })
        }
        return (0..<n).map { i in
            let ints: [Int64] = [0, 1, -1, 127, -128, 128, 32767, -32769, 8_388_608, Int64(Int32.max) + 1, 1 << 47, Int64.max, Int64.min, Int64(i)]
            let reals: [Double] = [0, -0.0, 1.5, -1e300, 1e-300, 3.0, -2.5, .infinity, -.infinity, Double(i) / 7]
            let longKind = String(repeating: "长", count: 300 + Int(g.next() % 4) * 400) + String(g.next() % 5)
            return [
                maybe(.integer(ints[Int(g.next() % UInt64(ints.count))])),
                maybe(.real(reals[Int(g.next() % UInt64(reals.count))])),
                maybe(g.next() % 2 == 0 ? .integer(Int64(g.next() % 100)) : .real(Double(g.next() % 100) + 0.5)),
                maybe(.integer(Int64(g.next() % 2))),
                maybe(.text(String(format: "%04d-%02d-%02d", 1950 + Int(g.next() % 70), 1 + Int(g.next() % 12), 1 + Int(g.next() % 28)))),
                maybe(.text(String(format: "2024-01-%02dT%02d:%02d:00", 1 + Int(g.next() % 28), Int(g.next() % 24), Int(g.next() % 60)))),
                maybe(.text(kinds[Int(g.next() % UInt64(kinds.count))])),
                maybe(.text(longKind)),
                maybe(.text(text(g.next() % 10 == 0 ? 3000 + Int(g.next() % 9000) : Int(g.next() % 40)))),
                .null,
            ]
        }
    }

    /// The same rows written by SQLite, the way the writer used to.
    static func writeWithSQLite(_ rows: [[Cell]], manifest m: DatasetManifest, path: String) throws {
        var db: OpaquePointer?
        try #require(sqlite3_open(path, &db) == SQLITE_OK)
        defer { sqlite3_close(db) }
        func exec(_ sql: String) throws { try #require(sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK, "\(String(cString: sqlite3_errmsg(db)))") }
        try exec("PRAGMA page_size=8192; BEGIN")
        try exec(VersionWriter.tableSQL(m))
        var stmt: OpaquePointer?
        let names = m.fields.map { quoteIdentifier($0.name) }.joined(separator: ", ")
        try #require(sqlite3_prepare_v2(db, "INSERT INTO rows (\(names)) VALUES (\(Array(repeating: "?", count: m.fields.count).joined(separator: ", ")))", -1, &stmt, nil) == SQLITE_OK)
        for row in rows {
            VersionReader.bind(stmt, row)
            try #require(sqlite3_step(stmt) == SQLITE_DONE)
            sqlite3_reset(stmt)
        }
        sqlite3_finalize(stmt)
        for f in m.fields where f.type != .string || f.semantic == .category { try exec(VersionWriter.indexSQL(f)) }
        try exec("ANALYZE; COMMIT")
    }

    /// Asserts that the file at `path` is sound and holds what `reference` holds.
    static func expectSame(_ path: String, _ reference: String, manifest m: DatasetManifest) throws {
        let ours = try VersionReader(path: path), theirs = try VersionReader(path: reference)
        #expect(try ours.query("PRAGMA integrity_check") == [[.text("ok")]])
        let cols = (["_row"] + m.fields.map { quoteIdentifier($0.name) }).joined(separator: ", ")
        #expect(try ours.query("SELECT \(cols) FROM rows ORDER BY _row") == (try theirs.query("SELECT \(cols) FROM rows ORDER BY _row")))
        for f in m.fields where f.type != .string || f.semantic == .category {
            let c = quoteIdentifier(f.name), ix = quoteIdentifier("ix_\(f.name)")
            let scan = "SELECT \(c), _row FROM rows INDEXED BY \(ix) ORDER BY \(c), _row"
            #expect(try ours.query(scan) == (try theirs.query(scan)), "index \(f.name)")
            // A range read through the index: the middle value and up.
            let all = try theirs.query(scan)
            if let mid = all.dropFirst(all.count / 2).first?.first {
                let range = "SELECT _row FROM rows INDEXED BY \(ix) WHERE \(c) >= ? ORDER BY \(c) DESC, _row DESC"
                #expect(try ours.query(range, [mid]) == (try theirs.query(range, [mid])), "range on \(f.name)")
            }
        }
        let stat = "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'rows' ORDER BY idx"
        #expect(try ours.query(stat) == (try theirs.query(stat)))
        #expect(try ours.query("SELECT value FROM kaifang_version WHERE key = 'dataset'") == [[.text(m.id)]])
    }

    func write(_ rows: [[Cell]], manifest m: DatasetManifest = Self.manifest, budget: Int = VersionWriter.defaultIndexBudget, name: String) throws -> String {
        let path = tmp.path + "/\(name).sqlite"
        let w = try VersionWriter(path: path, manifest: m, indexBudget: budget)
        for r in rows { try w.append(r) }
        _ = try w.finish()
        try Self.writeWithSQLite(rows, manifest: m, path: tmp.path + "/\(name)-ref.sqlite")
        return path
    }

    @Test(arguments: [0, 1, 2, 5, 300, 4000])
    func matchesSQLite(rows n: Int) throws {
        let rows = Self.rows(n, seed: UInt64(n) &+ 17)
        let path = try write(rows, name: "r\(n)")
        try Self.expectSame(path, tmp.path + "/r\(n)-ref.sqlite", manifest: Self.manifest)
    }

    /// `--sqlite-only`: SQLite alone writes the same rows into a file equivalent to the page
    /// writer's — sound, the same rows, index orders, statistics, row sets and content hash.
    @Test(arguments: [0, 1, 300, 4000])
    func sqliteAloneWritesAnEquivalentFile(rows n: Int) throws {
        let rows = Self.rows(n, seed: UInt64(n) &+ 31)
        let pages = tmp.path + "/p\(n).sqlite", sqlite = tmp.path + "/s\(n).sqlite"
        var hashes: [String] = []
        for (path, engine) in [(pages, VersionEngine.pages), (sqlite, .sqlite)] {
            let w = try VersionWriter(path: path, manifest: Self.manifest, engine: engine)
            for r in rows { try w.append(r) }
            hashes.append(try w.finish())
        }
        #expect(hashes[0] == hashes[1])
        try Self.expectSame(sqlite, pages, manifest: Self.manifest)
        let (a, b) = (try VersionReader(path: pages), try VersionReader(path: sqlite))
        for sql in ["SELECT field, chunks FROM kaifang_rowset_fields ORDER BY field",
                    "SELECT field, value, chunk, hex(bits) FROM kaifang_rowsets ORDER BY field, value, chunk",
                    "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"] {
            #expect(try a.query(sql) == b.query(sql), "\(sql)")
        }
        if n > 0 { #expect(try !a.query("SELECT * FROM kaifang_rowsets").isEmpty) }
    }

    @Test func deepIndexTrees() throws {
        // 4 000 rows of keys near 2 KB: about three keys per index page, so the long_kind index
        // has several interior levels whose dividers spill to overflow pages.
        let rows = Self.rows(4000, seed: 99)
        let path = try write(rows, name: "deep")
        let depth = try VersionReader(path: path).query("SELECT count(*) FROM rows INDEXED BY ix_long_kind")
        #expect(depth == [[.integer(4000)]])
        try Self.expectSame(path, tmp.path + "/deep-ref.sqlite", manifest: Self.manifest)
        // The file really is several levels deep (root → interior → … → leaf).
        let pages = try VersionReader(path: path).query("PRAGMA page_count")
        if case .integer(let n)? = pages.first?.first { #expect(n > 2000) }
    }

    @Test func indexesBeyondTheBudgetAreLeftToSQLite() throws {
        // A budget of a few bytes: every collector gives up and SQLite builds every index.
        let rows = Self.rows(300, seed: 5)
        let path = try write(rows, budget: 16, name: "budget")
        try Self.expectSame(path, tmp.path + "/budget-ref.sqlite", manifest: Self.manifest)
    }

    @Test func radixSortOrdersByKeyThenRow() {
        // Keys that share some 16-bit digits and differ in others, with many duplicates.
        var g = SeededGenerator(seed: 7)
        for n in [0, 1, 2, 100, 50_000] {
            var a: [(key: UInt64, row: UInt32)] = (0..<n).map { i in
                let r = g.next()
                let key = (r & 0xFFFF_0000_0000_00FF) | (r % 3 == 0 ? 0x1234_0000 : 0)
                return (g.next() % 4 == 0 ? 42 : key, UInt32(i + 1))
            }
            let expected = a.sorted { $0.key != $1.key ? $0.key < $1.key : $0.row < $1.row }
            IndexKeyCollector.radixSort(&a)
            #expect(a.map(\.key) == expected.map(\.key) && a.map(\.row) == expected.map(\.row))
        }
    }

    @Test func integersInATextColumnAreStoredAsSQLiteStoresThem() throws {
        let m = DatasetManifest(id: "t", title: "t", description: "", department: "d", topic: "t", tier: .open, fields: [
            FieldSpec(name: "code", type: .string, semantic: .category, level: .L1),
        ])
        let rows: [[Cell]] = [[.integer(12)], [.text("9")], [.integer(-3)], [.null]]
        let path = try write(rows, manifest: m, name: "affinity")
        try Self.expectSame(path, tmp.path + "/affinity-ref.sqlite", manifest: m)
    }
}
