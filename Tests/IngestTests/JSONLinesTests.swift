import Foundation
import Ingest
import KaifangCore
import Testing

@Suite struct JSONLinesTests {
    let manifest = DatasetManifest(id: "t", title: "T", fields: [
        FieldSpec(name: "name", title: "姓名", type: .string, level: .L3),
        FieldSpec(name: "age", type: .integer, level: .L2, min: 0, max: 150),
        FieldSpec(name: "score", type: .number, level: .L1),
        FieldSpec(name: "ok", type: .boolean, level: .L1),
        FieldSpec(name: "born", type: .date, level: .L2),
    ])

    func read(_ text: String) throws -> [RowResult] {
        let s = JSONLinesRowSource(source: MemoryByteSource(text), fileName: "f.jsonl", manifest: manifest)
        var out: [RowResult] = []
        while let r = try s.next() { out.append(r) }
        return out
    }

    @Test func objectsBecomeTypedRowsByNameOrTitle() throws {
        let rows = try read("{\"姓名\": \"张三\", \"age\": 34, \"score\": 1.5, \"ok\": true, \"born\": \"1990/02/28\"}\r\n\n{\"name\": null, \"age\": \"41\"}")
        #expect(rows.count == 2)
        guard case .row(let a) = rows[0], case .row(let b) = rows[1] else { Issue.record("rejected"); return }
        #expect(a == [.text("张三"), .integer(34), .real(1.5), .integer(1), .text("1990-02-28")])
        #expect(b == [.null, .integer(41), .null, .null, .null])
    }

    @Test func badLinesAreRefusedWithLineAndField() throws {
        let rows = try read("{\"age\": 3.5}\n{\"age\": 200}\n{\"colour\": 1}\n[1, 2]\n{\"score\": true}\n")
        let reasons: [[String]] = rows.map { r in
            if case .rejected(let issues, _) = r { return issues.map { "\($0.position.line) \($0.field ?? "-")" } }
            return []
        }
        #expect(reasons == [["1 age"], ["2 age"], ["3 -"], ["4 -"], ["5 score"]])
    }
}
