import Foundation
import GRDBSQLite
import KaifangCore
import Testing
@testable import VersionFormat

/// The fuzz target `pagereader` replayed: its seed corpus (valid files, read exactly as SQLite
/// reads them) and every input that once failed it (read to the end or refused as damaged,
/// never a crash).
@Suite struct PageReaderFuzzRegressionTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func inputs(_ kind: String) -> [String] {
        let dir = repo.appendingPathComponent("fuzz/\(kind)/pagereader")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func theSeedsAreThere() { #expect(Self.inputs("corpus").count >= 2) }

    @Test(arguments: inputs("corpus"))
    func aSeedReadsAsSQLiteReadsIt(_ name: String) throws {
        let path = Self.repo.appendingPathComponent("fuzz/corpus/pagereader/\(name)").path
        let reader = try VersionReader(path: path, immutable: true)
        let table = try #require(reader.rowsTable())
        let names = ["name", "note", "n", "amount"]
        let expected = try reader.query("SELECT _row, name, note, n, amount FROM rows ORDER BY _row")
        #expect(!expected.isEmpty)
        var cursor = TableCursor(table)
        var found = try cursor.seek(Int64.min)
        var read: [[Cell]] = []
        while found {
            read.append([.integer(cursor.rowid)] + (try TableFileTests.cells(&cursor, try names.map { try #require(table.columns[$0]) })))
            found = try cursor.next()
        }
        #expect(read == expected)
    }

    @Test(arguments: inputs("regressions"))
    func aDamagedFileIsReadOrRefusedAsDamaged(_ name: String) throws {
        let path = Self.repo.appendingPathComponent("fuzz/regressions/pagereader/\(name)").path
        guard let reader = try? VersionReader(path: path, immutable: true), let table = reader.rowsTable() else { return }
        var cursor = TableCursor(table)
        do {
            var found = try cursor.seek(Int64.min)
            var steps = 0
            while found && steps < 20_000 {
                try cursor.load()
                for c in 0..<table.columns.count { _ = cursor.value(c) }
                found = try cursor.next()
                steps += 1
            }
        } catch let e as KaifangError {
            #expect(e.message.contains("is damaged"))
        }
    }
}
