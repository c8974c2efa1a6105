// libFuzzer target: the sandbox's SQL lexer, parser and checker over arbitrary text, against a
// personal and an open dataset. A refusal is fine; a crash, a hang, or an accepted query that
// printed back from its tree is not accepted again to the same plan, is a bug.
let residents = DatasetManifest(id: "residents", title: "r", entity: "id_number", fields: [
    FieldSpec(name: "id_number", type: .string, semantic: .resident_id, level: .L4),
    FieldSpec(name: "name", type: .string, semantic: .person_name, level: .L3),
    FieldSpec(name: "district", type: .string, semantic: .category, level: .L1),
    FieldSpec(name: "birth_date", type: .date, semantic: .date, level: .L2),
    FieldSpec(name: "benefit_amount", type: .number, semantic: .amount, level: .L2, min: 0, max: 100000),
])
let stations = DatasetManifest(id: "air-quality", title: "a", fields: [
    FieldSpec(name: "station", type: .string, semantic: .category, level: .L1),
    FieldSpec(name: "aqi", type: .integer, semantic: .count, level: .L1),
])
let tables = [
    SandboxTable(manifest: residents, version: 1, path: "/r.sqlite", tier: .conditional, granted: nil, policy: .defaults),
    SandboxTable(manifest: stations, version: 1, path: "/a.sqlite", tier: .open, granted: nil, policy: .defaults),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSQL(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    let mode = data[0] % 2 == 0 ? "aggregate" : "dp"
    let checker = QueryChecker(tables: tables, mode: mode)
    if let plan = try? checker.check(text), let tree = try? SQLParser.parse(text) {
        precondition(!plan.sql.isEmpty)
        let printed = SQLPrinter(tableName: SQLPrinter.quote).query(tree)
        precondition((try? checker.check(printed)) == plan, "printed back, the query is not accepted to the same plan")
    }
    return 0
}
