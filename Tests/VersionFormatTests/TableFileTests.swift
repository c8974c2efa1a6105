import Foundation
import GRDBSQLite
import KaifangCore
import Testing
@testable import VersionFormat

/// The page reader (`TableFile`, `TableCursor`) against SQLite: on files written by Kaifang's
/// writer and by SQLite itself (small pages, deleted rows, overflow chains), every row and value
/// it reads is the one `SELECT` gives, and a seek lands where `min(_row) … >= ?` says.
@Suite struct TableFileTests {
    let tmp = TempDir()

    init() throws { try FileManager.default.createDirectory(atPath: tmp.path, withIntermediateDirectories: true) }

    static let manifest = DatasetManifest(id: "pages", title: "页", description: "测试", department: "测试", topic: "test", tier: .open, fields: [
        FieldSpec(name: "name", type: .string, level: .L1),
        FieldSpec(name: "note", type: .string, level: .L1),
        FieldSpec(name: "n", type: .integer, level: .L1),
        FieldSpec(name: "amount", type: .number, level: .L1),
    ])

    /// Values over every serial type: integers of each width and sign, integral and fractional
    /// reals, NULLs, empty and multi-byte text, and notes long enough to overflow a page.
    static func rows(count: Int, seed: UInt64) -> [[Cell]] {
        var g = SeededGenerator(seed: seed)
        let widths: [Int64] = [0, 1, -1, 127, -128, 32_767, -32_768, 8_388_607, -8_388_608, 2_147_483_647, -2_147_483_648,
                               140_737_488_355_327, -140_737_488_355_328, .max, .min]
        return (0..<count).map { i in
            let r = g.next()
            let note: Cell
            switch r % 13 {
            case 0: note = .null
            case 1: note = .text("")
            case 2: note = .text(String(repeating: "长文本🙂", count: 300 + Int(r >> 40) % 3_000))
            default: note = .text("备注 \(i) \(r % 1000)")
            }
            return [
                r % 7 == 0 ? .null : .text("名\(i)"),
                note,
                r % 5 == 0 ? .integer(widths[Int(r >> 8) % widths.count]) : (r % 5 == 1 ? .null : .integer(Int64(i))),
                r % 3 == 0 ? .real(Double(i)) : (r % 3 == 1 ? .real(Double(i) / 8 + 0.1) : .null),
            ]
        }
    }

    /// What the cursor reads at its current row, as cells (texts decoded).
    static func cells(_ cursor: inout TableCursor, _ positions: [Int]) throws -> [Cell] {
        try cursor.load()
        return positions.map { at in
            switch cursor.value(at) {
            case .null: .null
            case .integer(let v): .integer(v)
            case .real(let v): .real(v)
            case .text(let b): .text(String(decoding: b, as: UTF8.self))
            }
        }
    }

    /// Reads every row through the cursor and through SQLite and compares them; then seeks.
    func compare(path: String, columns: [String], seed: UInt64) throws {
        let reader = try VersionReader(path: path, immutable: true)
        let table = try #require(reader.rowsTable())
        let positions = try columns.map { try #require(table.columns[$0]) }
        let expected = try reader.query("SELECT _row, \(columns.map(quoteIdentifier).joined(separator: ", ")) FROM rows ORDER BY _row")
        #expect(expected.count > 1_000)
        var cursor = TableCursor(table)
        var found = try cursor.seek(Int64.min)
        var read: [[Cell]] = []
        while found {
            read.append([.integer(cursor.rowid)] + (try Self.cells(&cursor, positions)))
            found = try cursor.next()
        }
        #expect(read.count == expected.count)
        for (a, b) in zip(read, expected) where a != b {
            Issue.record("row \(b[0]): read \(a.map(\.text).map { $0.prefix(40) }), SQLite has \(b.map(\.text).map { $0.prefix(40) })")
            break
        }
        // Seeks to random targets (before the first row, into gaps, past the last), then a few
        // steps on from each, against SQLite.
        let last = expected.last.map { $0[0] } ?? .integer(0)
        guard case .integer(let maxRow) = last else { return }
        var g = SeededGenerator(seed: seed)
        for _ in 0..<300 {
            let target = Int64(g.next() % UInt64(maxRow + 20)) - 10
            let want = try reader.query("SELECT _row FROM rows WHERE _row >= ? ORDER BY _row LIMIT 3", [.integer(target)]).map { $0[0] }
            var got: [Cell] = []
            var ok = try cursor.seek(target)
            while ok && got.count < 3 {
                got.append(.integer(cursor.rowid))
                ok = try cursor.next()
            }
            #expect(got == want, "seek \(target)")
        }
        // Ascending seeks from one cursor (what the row sets ask), with gaps that stay in a
        // leaf, cross leaves and cross interior pages, against SQLite.
        var target = Int64(-20)
        var steps = 0
        while target <= maxRow + 5 && steps < 2_000 {
            let want = try reader.query("SELECT min(_row) FROM rows WHERE _row >= ?", [.integer(target)])[0][0]
            let got: Cell = try cursor.seek(target) ? .integer(cursor.rowid) : .null
            #expect(got == want, "ascending seek \(target)")
            if got != want { break }
            switch g.next() % 10 {
            case 0..<5: target += Int64(g.next() % 4)
            case 5..<8: target += Int64(g.next() % 200)
            default: target += Int64(g.next() % 5_000)
            }
            steps += 1
        }
    }

    @Test func readsKaifangsOwnFilesAsSQLiteDoes() throws {
        let path = tmp.path + "/own.sqlite"
        let w = try VersionWriter(path: path, manifest: Self.manifest)
        for r in Self.rows(count: 30_000, seed: 3) { try w.append(r) }
        _ = try w.finish()
        try compare(path: path, columns: ["name", "note", "n", "amount"], seed: 1)
        // A header whose page count is not valid (as older writers left it): the file's size counts.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[95] ^= 0xFF
        let stale = tmp.path + "/stale.sqlite"
        try Data(bytes).write(to: URL(fileURLWithPath: stale))
        try compare(path: stale, columns: ["name", "note", "n", "amount"], seed: 4)
    }

    @Test func readsFilesSQLiteWroteWithSmallPagesAndDeletedRows() throws {
        let path = tmp.path + "/sqlite.sqlite"
        var db: OpaquePointer?
        #expect(sqlite3_open(path, &db) == SQLITE_OK)
        defer { sqlite3_close(db) }
        sqlite3_exec(db, "PRAGMA page_size = 1024; CREATE TABLE rows (_row INTEGER PRIMARY KEY, name TEXT, note TEXT, n INTEGER, amount REAL, extra)", nil, nil, nil)
        sqlite3_exec(db, "BEGIN", nil, nil, nil)
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, "INSERT INTO rows (_row, name, note, n, amount, extra) VALUES (?, ?, ?, ?, ?, ?)", -1, &stmt, nil)
        for (i, r) in Self.rows(count: 12_000, seed: 8).enumerated() {
            sqlite3_reset(stmt)
            // Row numbers with gaps, from a negative start.
            VersionReader.bind(stmt, [.integer(Int64(i * 3 - 50))] + r + [i % 4 == 0 ? .integer(Int64(i)) : .text("x\(i)")])
            #expect(sqlite3_step(stmt) == SQLITE_DONE)
        }
        sqlite3_finalize(stmt)
        sqlite3_exec(db, "COMMIT; DELETE FROM rows WHERE _row % 7 = 0 OR (_row BETWEEN 3000 AND 9000)", nil, nil, nil)
        try compare(path: path, columns: ["name", "note", "n", "amount", "extra", "_row"], seed: 2)
    }

    /// The largest page size (the header writes 65 536 as 1) and bytes reserved at the end of
    /// every page (what encryption extensions keep), as SQLite writes them.
    @Test(arguments: [(65_536, 0), (4_096, 32), (512, 8)])
    func readsFilesWithOtherPageSizesAndReservedBytes(pageSize: Int, reserved: Int) throws {
        let path = tmp.path + "/pages-\(pageSize)-\(reserved).sqlite"
        var db: OpaquePointer?
        #expect(sqlite3_open(path, &db) == SQLITE_OK)
        sqlite3_exec(db, "PRAGMA page_size = \(pageSize)", nil, nil, nil)
        var n = Int32(reserved)
        if reserved > 0 { #expect(sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n) == SQLITE_OK) }
        sqlite3_exec(db, "CREATE TABLE rows (_row INTEGER PRIMARY KEY, name TEXT, note TEXT, n INTEGER, amount REAL)", nil, nil, nil)
        sqlite3_exec(db, "BEGIN", nil, nil, nil)
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, "INSERT INTO rows (_row, name, note, n, amount) VALUES (?, ?, ?, ?, ?)", -1, &stmt, nil)
        for (i, r) in Self.rows(count: 3_000, seed: UInt64(pageSize + reserved)).enumerated() {
            sqlite3_reset(stmt)
            VersionReader.bind(stmt, [.integer(Int64(i + 1))] + r)
            #expect(sqlite3_step(stmt) == SQLITE_DONE)
        }
        sqlite3_finalize(stmt)
        sqlite3_exec(db, "COMMIT", nil, nil, nil)
        sqlite3_close(db)
        let header = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)).prefix(100))
        #expect(Int(header[16]) << 8 | Int(header[17]) == (pageSize == 65_536 ? 1 : pageSize))
        #expect(Int(header[20]) == reserved)
        try compare(path: path, columns: ["name", "note", "n", "amount"], seed: 5)
    }

    /// A version past 1 GiB: the writer leaves the lock-byte page (the one holding offset
    /// 2^30, which SQLite never stores data in) unused, SQLite finds the file intact, and the
    /// page reader reads the rows on both sides of it — overflow chains across it included —
    /// as SQLite does.
    @Test func aVersionPastOneGiBLeavesTheLockBytePageAlone() throws {
        let path = tmp.path + "/big.sqlite"
        let manifest = DatasetManifest(id: "big", title: "big", fields: [
            FieldSpec(name: "k", type: .integer, level: .L1),
            FieldSpec(name: "body", type: .string, level: .L1),
        ])
        let w = try VersionWriter(path: path, manifest: manifest)
        let rows = 72_000   // 16 KiB of text each: about 1.15 GiB
        for i in 0..<rows {
            let fill = String(repeating: String(UnicodeScalar(UInt8(0x41 + i % 26))), count: 16_300)
            try w.append([.integer(Int64(i)), .text("\(i):" + fill)])
        }
        _ = try w.finish()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size > 1 << 30)
        // The lock-byte page is all zeros, as the writer left it.
        let handle = try #require(FileHandle(forReadingAtPath: path))
        try handle.seek(toOffset: UInt64(1 << 30))
        let lockPage = try #require(try handle.read(upToCount: 8192))
        try handle.close()
        #expect(lockPage.allSatisfy { $0 == 0 })
        let reader = try VersionReader(path: path, immutable: true)
        #expect(try reader.query("PRAGMA integrity_check").first?.first == .text("ok"))
        let table = try #require(reader.rowsTable())
        var cursor = TableCursor(table)
        // Rows around the offset 2^30 (about row 65 000), and the last ones.
        for target in Array(Int64(64_000)..<Int64(66_500)).filter({ $0 % 50 == 0 }) + [Int64(rows - 2)] {
            let want = try reader.query("SELECT _row, k, substr(body, 1, 40), length(body) FROM rows WHERE _row >= ? ORDER BY _row LIMIT 2", [.integer(target)])
            var got: [[Cell]] = []
            var ok = try cursor.seek(target)
            while ok && got.count < 2 {
                let c = try Self.cells(&cursor, [table.columns["k"]!, table.columns["body"]!])
                got.append([.integer(cursor.rowid), c[0], .text(String(c[1].text.prefix(40))), .integer(Int64(c[1].text.count))])
                ok = try cursor.next()
            }
            #expect(got == want, "rows from \(target)")
        }
    }

    @Test func damagedPagesGiveAnErrorNotACrash() throws {
        let path = tmp.path + "/damaged.sqlite"
        let w = try VersionWriter(path: path, manifest: Self.manifest)
        for r in Self.rows(count: 5_000, seed: 4) { try w.append(r) }
        _ = try w.finish()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        var g = SeededGenerator(seed: 9)
        var errors = 0
        for trial in 0..<40 {
            // A copy with 64 random bytes overwritten in the pages after the schema.
            let copy = tmp.path + "/damaged-\(trial).sqlite"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            for _ in 0..<64 { bytes[8192 + Int(g.next() % UInt64(size - 8192))] = UInt8(truncatingIfNeeded: g.next()) }
            try Data(bytes).write(to: URL(fileURLWithPath: copy))
            let reader = try VersionReader(path: copy, immutable: true)
            guard let table = reader.rowsTable() else { continue }
            var cursor = TableCursor(table)
            do {
                var found = try cursor.seek(0)
                var steps = 0
                while found && steps < 10_000 {
                    try cursor.load()
                    for c in 0..<6 { _ = cursor.value(c) }
                    found = try cursor.next()
                    steps += 1
                }
            } catch let e as KaifangError {
                errors += 1
                #expect("\(e)".contains("is damaged"))
            }
        }
        #expect(errors > 0)
    }
}
