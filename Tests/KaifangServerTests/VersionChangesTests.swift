import Foundation
import KaifangCore
import KaifangServer
import Publishing
import Storage
import Testing

/// The changes between versions: exact against an independent computation, served through the
/// caller's masking plan, and rows changed since a version paged for a syncing client.
@Suite struct VersionChangesTests {
    /// A CSV of `rows` (each a dictionary by field name) in `fields`' order.
    static func csv(_ fields: [String], _ rows: [[String: String]]) -> String {
        ([fields.joined(separator: ",")] + rows.map { r in fields.map { r[$0] ?? "" }.joined(separator: ",") }).joined(separator: "\n") + "\n"
    }

    static func write(_ text: String, _ dir: String, _ name: String) throws -> String {
        let path = (dir as NSString).appendingPathComponent(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Two random versions with a two-field key, a field only the second has, nulls, a
    /// repeated key: the diff's counts and rows equal those computed here from the CSV rows.
    @Test(arguments: [1, 2, 3])
    func aDiffIsExactAgainstAnIndependentComputation(seed: UInt64) async throws {
        try await LiveServer.with(loadSamples: false) { s in
            var rng = SeededGenerator(seed: seed)
            let f1 = [FieldSpec(name: "region", type: .string, level: .L1), FieldSpec(name: "serial", type: .integer, level: .L1),
                      FieldSpec(name: "amount", type: .number, level: .L1), FieldSpec(name: "note", type: .string, level: .L1)]
            let m1 = DatasetManifest(id: "ledger", title: "台账 ledger", fields: f1, primaryKey: ["region", "serial"])
            var m2 = m1
            m2.fields.append(FieldSpec(name: "flag", type: .boolean, level: .L1))
            let regions = ["玄武区", "秦淮区", "鼓楼区"]
            var v1: [[String: String]] = []
            for r in regions {
                for serial in 1...700 {
                    v1.append(["region": r, "serial": String(serial), "amount": String(Int.random(in: 0...999, using: &rng)) + ".5",
                               "note": Bool.random(using: &rng) ? "" : "备注\(serial)"])
                }
            }
            var v2: [[String: String]] = []
            for row in v1 {
                switch Int.random(in: 0..<20, using: &rng) {
                case 0: continue                                                          // removed
                case 1: var r = row; r["amount"] = "1000.5"; r["flag"] = "true"; v2.append(r)   // changed
                case 2: var r = row; r["note"] = r["note"]!.isEmpty ? "新" : ""; v2.append(r)    // changed: null ↔ text
                case 3: var r = row; r["flag"] = "false"; v2.append(r)                    // only the new field: unchanged
                default: v2.append(row)
                }
            }
            for serial in 701...760 { v2.append(["region": "江宁区", "serial": String(serial), "amount": "1.5", "note": ""]) }   // added
            v2.append(v2[10])                                                             // a repeated key
            let dir = s.dataDir
            let publisher = Publisher(catalog: s.catalog)
            _ = try publisher.importCSV(path: try Self.write(Self.csv(m1.fields.map(\.name), v1), dir, "v1.csv"), datasetID: "ledger", manifest: m1, actor: "t")
            _ = try publisher.importCSV(path: try Self.write(Self.csv(m2.fields.map(\.name), v2), dir, "v2.csv"), datasetID: "ledger", manifest: m2, actor: "t")

            // The independent computation: rows by key, compared on the common fields' text.
            func key(_ r: [String: String]) -> String { r["region"]! + "|" + r["serial"]! }
            func content(_ r: [String: String]) -> String { ["amount", "note"].map { r[$0]! }.joined(separator: "|") }
            let old = Dictionary(grouping: v1, by: key), new = Dictionary(grouping: v2, by: key)
            let repeated = Set(old.filter { $0.value.count > 1 }.keys).union(new.filter { $0.value.count > 1 }.keys)
            let added = new.keys.filter { old[$0] == nil && !repeated.contains($0) }.count
            let removed = old.keys.filter { new[$0] == nil && !repeated.contains($0) }.count
            let changed = new.keys.filter { k in !repeated.contains(k) && old[k].map { content($0[0]) != content(new[k]![0]) } == true }.count

            let diff = try #require(try VersionDiff.of("ledger", 2, catalog: s.catalog))
            #expect(diff.added == added && diff.removed == removed && diff.changed == changed, "\(diff.summary)")
            #expect(diff.duplicateKeys == repeated.count && repeated.count == 1)
            #expect(diff.unchanged == v1.count - removed - changed - 1)
            #expect(diff.rowsBefore == v1.count && diff.rowsAfter == v2.count)
            #expect(diff.fieldsAdded == ["flag"] && diff.fieldsRemoved.isEmpty && diff.fieldsRetyped.isEmpty)
            #expect(diff.primaryKey == ["region", "serial"])
            // Kept once computed: the same answer from the store.
            #expect(try s.catalog.versionChanges("ledger", 2) != nil)
            #expect(try VersionDiff.of("ledger", 2, catalog: s.catalog) == diff)
            #expect(try VersionDiff.of("ledger", 1, catalog: s.catalog) == nil)
        }
    }

    /// enterprises version 2: every 100th company gone, every 50th with its capital raised by
    /// one, one company new.
    static func secondVersion(_ s: LiveServer) throws -> (changed: Set<String>, added: Set<String>, removed: Set<String>) {
        let path = LiveServer.repo.appendingPathComponent("datasets/enterprises/enterprises.csv").path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = lines[0].split(separator: ",").map(String.init)
        let capital = header.firstIndex(of: "registered_capital")!
        var out = [lines[0]]
        var changed = Set<String>(), removed = Set<String>()
        for (i, line) in lines.dropFirst().enumerated() {
            var cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if (i + 1) % 100 == 0 { removed.insert(cells[0]); continue }
            if (i + 1) % 50 == 0 { cells[capital] = String(Double(cells[capital])! + 1); changed.insert(cells[0]) }
            out.append(cells.joined(separator: ","))
        }
        var extra = lines[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        extra[0] = "91320000MA0000000X"
        out.append(extra.joined(separator: ","))
        let file = try write(out.joined(separator: "\n") + "\n", s.dataDir, "enterprises-v2.csv")
        _ = try Publisher(catalog: s.catalog).importCSV(path: file, datasetID: "enterprises", manifest: nil, actor: "t")
        return (changed, [extra[0]], removed)
    }

    @Test func changesAreServedThroughTheCallersPlanAndRowsSyncSinceAVersion() async throws {
        try await LiveServer.with { s in
            let expected = try Self.secondVersion(s)
            // Not published yet: only a steward sees version 2's changes.
            #expect(try await s.get("/v1/datasets/enterprises/versions/2/changes").status == 404)
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "t")
            #expect(try await s.get("/v1/datasets/enterprises/versions/2/changes", key: steward).status == 200)
            try s.catalog.publish(dataset: "enterprises", version: 2, tier: .open, actor: "t")

            let r = try await s.get("/v1/datasets/enterprises/versions/2/changes")
            #expect(r.status == 200, "\(r.text)")
            #expect(r.object["added"] as? Int == 1 && r.object["removed"] as? Int == expected.removed.count && r.object["changed"] as? Int == expected.changed.count)
            #expect(r.object["view"] as? String == "public" && r.object["primary_key"] as? [String] == ["uscc"])
            let examples = try #require(r.object["examples"] as? [String: Any])
            let changed = try #require(examples["changed"] as? [[String: [String: Any]]])
            #expect(changed.count == 5)
            // Each example is exactly what the rows API serves this caller for that company: masked.
            for c in changed {
                let uscc = try #require(c["after"]?["uscc"] as? String)
                #expect(expected.changed.contains(uscc))
                let row = try await s.get("/v1/datasets/enterprises/rows?uscc=\(uscc)")
                let served = try #require((row.object["rows"] as? [[String: Any]])?.first)
                #expect(served["legal_representative"] as? String == c["after"]?["legal_representative"] as? String)
                #expect((served["legal_representative"] as? String)?.contains("*") == true)
                #expect((c["after"]?["registered_capital"] as? Double) == (c["before"]?["registered_capital"] as? Double).map { $0 + 1 })
            }
            #expect(((examples["added"] as? [[String: Any]])?.first?["uscc"] as? String) == expected.added.first)
            // The read of examples is audited.
            #expect(try s.catalog.auditEvents(dataset: "enterprises", actor: nil, limit: 50).contains { $0.event.action == "changes.read" })

            // A syncing client: every changed and added company once, in row order, and the removed keys.
            var synced: [String] = []
            var cursor: String?
            var removedKeys: Set<String> = []
            repeat {
                let page = try await s.get("/v1/datasets/enterprises/rows?_since_version=1&_limit=7&_fields=uscc,registered_capital"
                                           + (cursor.map { "&_cursor=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! } ?? ""))
                #expect(page.status == 200, "\(page.text)")
                #expect(page.object["since_version"] as? Int == 1 && page.object["removed"] as? Int == expected.removed.count)
                synced += (page.object["rows"] as? [[String: Any]] ?? []).compactMap { $0["uscc"] as? String }
                if cursor == nil {
                    removedKeys = Set((page.object["removed_keys"] as? [[String]] ?? []).map { $0[0] })
                } else {
                    #expect(page.object["removed_keys"] == nil)
                }
                cursor = page.object["next_cursor"] as? String
            } while cursor != nil
            #expect(synced.count == Set(synced).count)
            #expect(Set(synced) == expected.changed.union(expected.added))
            #expect(removedKeys == expected.removed)
            let nothing = try await s.get("/v1/datasets/enterprises/rows?_since_version=2")
            #expect((nothing.object["rows"] as? [Any])?.isEmpty == true && nothing.object["removed"] as? Int == 0)

            // Refusals, each a problem+json that says what to do.
            for (path, status, words) in [("/v1/datasets/enterprises/rows?_since_version=3", 400, "no such version"),
                                          ("/v1/datasets/enterprises/rows?_since_version=0", 400, "1 or more"),
                                          ("/v1/datasets/enterprises/rows?_since_version=1&_sort=established", 400, "row order"),
                                          ("/v1/datasets/enterprises/rows?_since_version=1&industry=制造业".addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!, 400, "row order"),
                                          ("/v1/datasets/enterprises/versions/1/changes", 404, "first"),
                                          ("/v1/datasets/enterprises/versions/9/changes", 404, "no published version"),
                                          ("/v1/datasets/residents/versions/1/changes", 401, "conditional")] {
                let r = try await s.get(path)
                #expect(r.status == status && r.text.contains(words) && r.headers["content-type"]?.hasPrefix("application/problem+json") == true,
                        "\(path): \(r.status) \(r.text)")
            }
        }
    }

    @Test func aDatasetWithoutAPrimaryKeyHasNoChangesAndSaysHowToGetThem() async throws {
        try await LiveServer.with { s in
            let path = LiveServer.repo.appendingPathComponent("datasets/residents/residents.csv").path
            _ = try Publisher(catalog: s.catalog).importCSV(path: path, datasetID: "residents", manifest: nil, actor: "t")
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "t")
            let r = try await s.get("/v1/datasets/residents/versions/2/changes", key: steward)
            #expect(r.status == 409 && r.text.contains("primary_key"), "\(r.text)")
            #expect(try s.catalog.versionChanges("residents", 2) == nil)
        }
    }

    @Test func aPrimaryKeyIsCheckedByName() throws {
        func decode(_ key: String) throws -> DatasetManifest {
            try DatasetManifest.decode(Data("""
                {"id": "t", "title": "t", "fields": [{"name": "a", "type": "integer", "level": "L1"}, {"name": "x", "type": "number", "level": "L1"}],
                 "primary_key": \(key)}
                """.utf8), source: "dataset.json")
        }
        #expect(try decode(#"["a"]"#).primaryKey == ["a"])
        for (key, words) in [(#"["b"]"#, "'b' is not one of the fields"), (#"["x"]"#, "number field"), ("[]", "1–4 fields"),
                             (#"["a", "a"]"#, "twice"), (#""a""#, "primary_key: expected an array")] {
            #expect { try decode(key) } throws: { ($0 as? KaifangError)?.message.contains(words) == true && ($0 as? KaifangError)?.message.hasPrefix("dataset.json") == true }
        }
    }
}
