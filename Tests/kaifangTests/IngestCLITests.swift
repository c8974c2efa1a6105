import Foundation
import Storage
import Testing

/// Real files through the CLI: bundles, JSON Lines, GBK, inferred schemas.
@Suite struct IngestCLITests {
    let scratch = Scratch()

    func sha(_ dir: String, _ id: String) throws -> String {
        try #require(try CatalogDatabase(directory: DataDirectory(path: dir)).versions(id).last).sha256
    }

    @Test(arguments: ["b.tar.gz", "b.zip"])
    func anExportedBundleImportsBackIdentically(name: String) throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "import", "datasets/residents/residents.csv", "--id", "residents",
                             "--manifest", "datasets/residents/dataset.json", "--data-dir", dir]).status == 0)
        let bundle = scratch.url.appendingPathComponent(name).path
        let exp = try CLI.run(["dataset", "export", "residents", "--view", "steward", "--format", "bundle", "-o", bundle, "--data-dir", dir])
        #expect(exp.status == 0, "\(exp.stderr)")
        let imp = try CLI.run(["dataset", "import", bundle, "--id", "copy", "--data-dir", dir])
        #expect(imp.status == 0, "\(imp.stderr)")
        #expect(try sha(dir, "copy") == sha(dir, "residents"))
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        #expect(try catalog.dataset("copy")?.manifest.fields == catalog.dataset("residents")?.manifest.fields)
        // A bundle without a datapackage is refused by name.
        let notBundle = scratch.write("x.zip", "not a zip")
        let bad = try CLI.run(["dataset", "import", notBundle, "--id", "x", "--data-dir", dir])
        #expect(bad.status == 2 && bad.stderr.contains("x.zip"))
    }

    @Test func gbkAndJSONLinesImportToTheSameContentAsUTF8() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        let csv = try String(contentsOfFile: CLI.repo.appendingPathComponent("datasets/residents/residents.csv").path, encoding: .utf8)
        let head = csv.split(separator: "\n").prefix(101).joined(separator: "\n") + "\n"
        let utf8 = scratch.write("u.csv", head)
        // GBK bytes by the system's iconv.
        let gbk = scratch.url.appendingPathComponent("g.csv").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/iconv")
        p.arguments = ["-f", "UTF-8", "-t", "GB18030", "-o", gbk, utf8]
        try p.run(); p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let manifest = try String(contentsOfFile: CLI.repo.appendingPathComponent("datasets/residents/dataset.json").path, encoding: .utf8)
        for id in ["u", "g", "j"] {
            _ = scratch.write("\(id).json", manifest.replacingOccurrences(of: "\"id\": \"residents\"", with: "\"id\": \"\(id)\""))
        }
        #expect(try CLI.run(["dataset", "import", utf8, "--id", "u", "--manifest", scratch.url.appendingPathComponent("u.json").path, "--data-dir", dir]).status == 0)
        let g = try CLI.run(["dataset", "import", gbk, "--id", "g", "--manifest", scratch.url.appendingPathComponent("g.json").path, "--data-dir", dir])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(try sha(dir, "g") == sha(dir, "u"))
        // The same rows as JSON Lines, written by the export.
        let jsonl = scratch.url.appendingPathComponent("u.jsonl").path
        #expect(try CLI.run(["dataset", "export", "u", "--view", "steward", "--format", "jsonl", "-o", jsonl, "--data-dir", dir]).status == 0)
        let j = try CLI.run(["dataset", "import", jsonl, "--id", "j", "--manifest", scratch.url.appendingPathComponent("j.json").path, "--data-dir", dir])
        #expect(j.status == 0, "\(j.stderr)")
        #expect(try sha(dir, "j") == sha(dir, "u"))
        // Forced to UTF-8, the GBK file is refused at the first Chinese character.
        let forced = try CLI.run(["dataset", "import", gbk, "--id", "g", "--encoding", "utf-8", "--data-dir", dir])
        #expect(forced.status == 2 && forced.stderr.contains("g.csv:2:") && forced.stderr.contains("--encoding gb18030"))
    }

    @Test func aFileWithoutAManifestGetsAnInferredSchema() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        let r = try CLI.run(["dataset", "import", "datasets/enterprises/enterprises.csv", "--id", "firms", "--data-dir", dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("the schema was inferred"))
        let m = try #require(try CatalogDatabase(directory: DataDirectory(path: dir)).dataset("firms")).manifest
        #expect(m.field(named: "uscc")?.semantic == .uscc)
        #expect(m.field(named: "legal_representative")?.semantic == .person_name && m.field(named: "legal_representative")?.level == .L3)
        #expect(m.field(named: "registered_capital")?.type == .integer)
        #expect(m.field(named: "established")?.type == .date)
    }
}
