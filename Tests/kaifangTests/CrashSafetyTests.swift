import Foundation
import GRDB
import KaifangCore
import Storage
import Testing
import VersionFormat

/// SIGKILL in the middle of an import leaves the catalog and the published version intact.
@Suite struct CrashSafetyTests {
    let scratch = Scratch()

    func writeBigCSV(_ path: String, rows: Int) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        var chunk = "pid,age\n"
        for i in 0..<rows {
            chunk += "P\(i),\(i % 120)\n"
            if chunk.utf8.count > 1 << 20 { h.write(Data(chunk.utf8)); chunk = "" }
        }
        h.write(Data(chunk.utf8))
        try h.close()
    }

    @Test func killingAnImportLeavesThePreviousVersionServing() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        let m = scratch.write("dataset.json", CLITests.manifest)
        let small = scratch.write("v1.csv", "pid,age\nA,1\nB,2\nC,3\n")
        #expect(try CLI.run(["dataset", "import", small, "--id", "people", "--manifest", m, "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "publish", "people", "--tier", "open", "--data-dir", dir]).status == 0)

        let big = scratch.url.appendingPathComponent("big.csv").path
        try writeBigCSV(big, rows: 3_000_000)
        let child = try CLI.start(["dataset", "import", big, "--id", "people", "--data-dir", dir])
        // Wait until the import is writing its temporary version file, then kill it.
        let tmp = "\(dir)/tmp"
        var sawWrite = false
        for _ in 0..<400 {
            if let items = try? FileManager.default.contentsOfDirectory(atPath: tmp),
               let f = items.first, let size = (try? FileManager.default.attributesOfItem(atPath: "\(tmp)/\(f)"))?[.size] as? Int, size > 1 << 20 {
                sawWrite = true
                break
            }
            usleep(25_000)
        }
        #expect(sawWrite, "the import never started writing")
        #expect(child.isRunning, "the import finished before it could be killed: make the file bigger")
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)

        // The catalog is consistent, the published version is still 1 and readable.
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        let integrity = try catalog.writer.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
        #expect(try catalog.versions("people").map(\.number) == [1])
        let (d, v) = try #require(try catalog.publishedVersion("people"))
        #expect(d.tier == .open && v.number == 1)
        #expect(try VersionReader(path: catalog.directory.absolute(v.file)).rowCount() == 3)
        guard case .intact = try catalog.verifyAudit() else { Issue.record("audit chain broken"); return }
        // Reopening swept the partial file; the next import gets version 2.
        #expect((try FileManager.default.contentsOfDirectory(atPath: tmp)).isEmpty)
        let again = scratch.write("v2.csv", "pid,age\nD,4\n")
        let r = try CLI.run(["dataset", "import", again, "--id", "people", "--data-dir", dir, "--json"])
        #expect(r.status == 0 && r.stdout.contains("\"version\" : 2"), "\(r.stderr)")
    }

    /// SIGKILL at random moments of publish / withdraw: after each, the catalog is intact, the
    /// audit chain verifies (against its anchor too), and the dataset is either published at a
    /// version that exists or withdrawn — never in between.
    @Test func killingPublishAtRandomMomentsLeavesAConsistentCatalog() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        let m = scratch.write("dataset.json", CLITests.manifest)
        for v in 1...2 {
            let csv = scratch.write("v\(v).csv", "pid,age\nA,\(v)\nB,2\n")
            #expect(try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir]).status == 0)
        }
        var generator = SeededGenerator.announced(#function)
        var killed = 0
        for i in 0..<24 {
            let args = i % 3 == 2 ? ["dataset", "withdraw", "people", "--data-dir", dir]
                                  : ["dataset", "publish", "people", "--version", "\(i % 2 + 1)", "--tier", "open", "--force", "--reason", "crash test", "--data-dir", dir]
            let child = try CLI.start(args)
            usleep(UInt32.random(in: 5_000...120_000, using: &generator))
            if child.isRunning { kill(child.processIdentifier, SIGKILL); killed += 1 }
            child.waitUntilExit()

            let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
            let integrity = try catalog.writer.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
            #expect(integrity == "ok")
            guard case .intact = try catalog.verifyAudit() else { Issue.record("audit chain broken after kill \(i)"); return }
            let d = try #require(try catalog.dataset("people"))
            #expect((d.tier == nil) == (d.publishedVersion == nil), "tier and published version disagree after kill \(i)")
            if let n = d.publishedVersion {
                let v = try #require(try catalog.version("people", n))
                #expect(try VersionReader(path: catalog.directory.absolute(v.file)).rowCount() == 2)
            }
            #expect(try catalog.versions("people").map(\.number) == [1, 2])
        }
        // Some kills land in the middle (the CLI takes tens of milliseconds to start and publish).
        #expect(killed > 0)
    }
}
