import Foundation
import KaifangCore
@testable import Sandbox
import Testing

/// The fuzz target `sql` replayed: its seed corpus and every input that once failed it. An
/// accepted query printed back from its tree (the printer that writes what the sandbox runs)
/// is accepted again, to the same plan.
@Suite struct SQLFuzzRegressionTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func inputs(_ target: String) -> [String] {
        ["corpus", "regressions"].flatMap { kind in
            let dir = repo.appendingPathComponent("fuzz/\(kind)/\(target)")
            return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted().map { "\(kind)/\(target)/\($0)" }
        }
    }

    static let tables = [
        SandboxTable(manifest: DatasetManifest(id: "residents", title: "r", entity: "id_number", fields: [
            FieldSpec(name: "id_number", type: .string, semantic: .resident_id, level: .L4),
            FieldSpec(name: "name", type: .string, semantic: .person_name, level: .L3),
            FieldSpec(name: "district", type: .string, semantic: .category, level: .L1),
            FieldSpec(name: "birth_date", type: .date, semantic: .date, level: .L2),
            FieldSpec(name: "benefit_amount", type: .number, semantic: .amount, level: .L2, min: 0, max: 100000),
        ]), version: 1, path: "/r.sqlite", tier: .conditional, granted: nil, policy: .defaults),
        SandboxTable(manifest: DatasetManifest(id: "air-quality", title: "a", fields: [
            FieldSpec(name: "station", type: .string, semantic: .category, level: .L1),
            FieldSpec(name: "aqi", type: .integer, semantic: .count, level: .L1),
        ]), version: 1, path: "/a.sqlite", tier: .open, granted: nil, policy: .defaults),
    ]

    @Test func theCorpusIsThereAndSomeOfItIsAccepted() throws {
        let inputs = Self.inputs("sql")
        #expect(inputs.count >= 5)
        let accepted = try inputs.filter { path in
            let data = Array(try Data(contentsOf: Self.repo.appendingPathComponent("fuzz/\(path)")))
            guard let first = data.first else { return false }
            let text = String(decoding: data.dropFirst(), as: UTF8.self)
            return (try? QueryChecker(tables: Self.tables, mode: first % 2 == 0 ? "aggregate" : "dp").check(text)) != nil
        }
        #expect(!accepted.isEmpty, "no corpus query passes the checker: the replay would test refusals only")
    }

    @Test(arguments: inputs("sql"))
    func anAcceptedQueryIsAcceptedAgainFromItsOwnText(_ path: String) throws {
        let data = Array(try Data(contentsOf: Self.repo.appendingPathComponent("fuzz/\(path)")))
        guard let first = data.first else { return }
        let text = String(decoding: data.dropFirst(), as: UTF8.self)
        let checker = QueryChecker(tables: Self.tables, mode: first % 2 == 0 ? "aggregate" : "dp")
        guard let plan = try? checker.check(text) else { return }
        #expect(!plan.sql.isEmpty)
        let printed = SQLPrinter(tableName: SQLPrinter.quote).query(try SQLParser.parse(text))
        #expect(try checker.check(printed) == plan, "printed back: \(printed)")
    }
}
