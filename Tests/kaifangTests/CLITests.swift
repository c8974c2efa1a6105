import Audit
import Foundation
import KaifangCore
import Storage
import Testing

/// The steward CLI as a user runs it: exit codes, messages, nothing half-written.
@Suite struct CLITests {
    let scratch = Scratch()
    static let manifest = """
    {"id": "people", "title": "People", "entity": "pid", "fields": [
      {"name": "pid", "title": "编号", "type": "string", "semantic": "identifier", "level": "L4"},
      {"name": "age", "type": "integer", "level": "L2", "min": 0, "max": 150}
    ]}
    """

    func initialized() throws -> String {
        let r = try CLI.run(["init", "--data-dir", scratch.dataDir])
        #expect(r.status == 0, "\(r.stderr)")
        return scratch.dataDir
    }

    /// Everything the catalog holds that an import or publish could change.
    func snapshot(_ dir: String) throws -> [String] {
        let c = try CatalogDatabase(directory: DataDirectory(path: dir))
        let datasets = try c.search(DatasetQuery(limit: 100, includeUnpublished: true)).datasets.map(\.record.id)
        let events = try c.auditEvents().map(\.hash)
        let files = (FileManager.default.enumerator(atPath: "\(dir)/versions")?.allObjects as? [String]) ?? []
        return datasets + events + files.sorted()
    }

    @Test func initCreatesTheDataDirectoryAndIsIdempotent() throws {
        let dir = try initialized()
        #expect(FileManager.default.fileExists(atPath: "\(dir)/catalog.sqlite"))
        let again = try CLI.run(["--data-dir", dir, "--json", "init"])
        #expect(again.status == 0)
        #expect(again.stdout.contains("\"created\" : \"false\""))
    }

    @Test func theEnvironmentVariableNamesTheDataDirectory() throws {
        let dir = try initialized()
        let r = try CLI.run(["dataset", "list", "--json"], env: ["KAIFANG_DATA_DIR": dir])
        #expect(r.status == 0 && r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || r.stdout.contains("[]"), "\(r.stdout)")
    }

    @Test func importPublishListShowRoundTrip() throws {
        let dir = try initialized()
        let m = scratch.write("dataset.json", Self.manifest)
        let csv = scratch.write("people.csv", "编号,age\nP1,30\nP2,41\n")
        let imp = try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir, "--json"])
        #expect(imp.status == 0, "\(imp.stderr)")
        #expect(imp.stdout.contains("\"rows\" : 2"))
        let pub = try CLI.run(["--data-dir", dir, "dataset", "publish", "people", "--tier", "restricted"])
        #expect(pub.status == 0 && pub.stdout.contains("不予开放"))
        let list = try CLI.run(["--data-dir", dir, "dataset", "list"])
        #expect(list.stdout.contains("people") && list.stdout.contains("restricted"))
        let show = try CLI.run(["--data-dir", dir, "dataset", "show", "people", "--view", "licensed"])
        #expect(show.status == 0)
        #expect(show.stdout.contains("pid") && show.stdout.contains("L4") && show.stdout.contains("mask"))
        // A second import without --manifest reuses the catalog's schema and makes version 2.
        let csv2 = scratch.write("people2.csv", "pid,age\nP3,50\n")
        let imp2 = try CLI.run(["--data-dir", dir, "--json", "dataset", "import", csv2, "--id", "people"])
        #expect(imp2.status == 0 && imp2.stdout.contains("\"version\" : 2"), "\(imp2.stderr)")
        let versions = try CLI.run(["--data-dir", dir, "dataset", "versions", "people"])
        #expect(versions.stdout.contains("1*"))
        let audit = try CLI.run(["--data-dir", dir, "audit", "verify"])
        #expect(audit.status == 0 && audit.stdout.contains("intact"))
    }

    /// A steward sees the webhooks developers registered, a publication queued for them, and
    /// stops one with a reason its holder reads.
    @Test func webhooksAreListedFollowedAndStopped() throws {
        let dir = try initialized()
        let m = scratch.write("dataset.json", Self.manifest)
        let csv = scratch.write("people.csv", "编号,age\nP1,30\n")
        #expect(try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir]).status == 0)
        let hook: WebhookRecord = try {
            let c = try CatalogDatabase(directory: DataDirectory(path: dir))
            let (key, _) = try c.createKey(role: .developer, name: "app", account: nil, actor: "t")
            return try c.createWebhook(keyID: key.id, url: "https://apps.example.org/hook", dataset: "people", actor: "t")
        }()
        #expect(try CLI.run(["--data-dir", dir, "dataset", "publish", "people", "--tier", "open"]).status == 0)
        let list = try CLI.run(["--data-dir", dir, "webhook", "list"])
        #expect(list.status == 0 && list.stdout.contains(hook.id) && list.stdout.contains("apps.example.org") && list.stdout.contains("active"))
        let log = try CLI.run(["--data-dir", dir, "--json", "webhook", "deliveries", hook.id])
        #expect(log.status == 0 && log.stdout.contains("\"status\" : \"pending\"") && log.stdout.contains("dataset.published"), "\(log.stdout)")
        let blank = try CLI.run(["--data-dir", dir, "webhook", "disable", hook.id, "--reason", " "])
        #expect(blank.status == 2 && blank.stderr.contains("--reason"))
        let stop = try CLI.run(["--data-dir", dir, "webhook", "disable", hook.id, "--reason", "滥用 abuse"])
        #expect(stop.status == 0, "\(stop.stderr)")
        let after = try CLI.run(["--data-dir", dir, "--json", "webhook", "list"])
        #expect(after.stdout.contains("\"active\" : \"false\"") && after.stdout.contains("stopped by a steward: 滥用 abuse"))
        #expect(try CLI.run(["--data-dir", dir, "webhook", "disable", hook.id, "--reason", "again"]).status == 2)
        #expect(try CLI.run(["--data-dir", dir, "webhook", "deliveries", "wh_000000000000"]).status == 2)
        #expect(try CLI.run(["--data-dir", dir, "--json", "webhook", "deliveries", hook.id]).stdout.contains("\"status\" : \"failed\""))
    }

    @Test func departmentsAndTheirPeoplesKeys() throws {
        let dir = try initialized()
        let m = scratch.write("dataset.json", Self.manifest.replacingOccurrences(of: #""title": "People","#, with: #""title": "People", "department": "南京市民政局","#))
        let csv = scratch.write("people.csv", "编号,age\nP1,30\n")
        #expect(try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["--data-dir", dir, "department", "add", "江苏省"]).status == 0)
        let city = try CLI.run(["--data-dir", dir, "department", "add", "南京市民政局", "--parent", "江苏省"])
        #expect(city.status == 0 && city.stdout.contains("under 江苏省"), "\(city.stderr)")
        // A second one of the name, an unknown parent, a blank name: exit 2, nothing added.
        let twice = try CLI.run(["--data-dir", dir, "department", "add", "南京市民政局"])
        #expect(twice.status == 2 && twice.stderr.contains("exists already"))
        #expect(try CLI.run(["--data-dir", dir, "department", "add", "某县", "--parent", "无此市"]).status == 2)
        #expect(try CLI.run(["--data-dir", dir, "department", "add", " "]).status == 2)
        // Publishers and reviewers name their department; others may not.
        #expect(try CLI.run(["--data-dir", dir, "key", "create", "--role", "publisher", "--name", "p"]).stderr.contains("--department"))
        #expect(try CLI.run(["--data-dir", dir, "key", "create", "--role", "publisher", "--name", "p"]).status == 2)
        #expect(try CLI.run(["--data-dir", dir, "key", "create", "--role", "developer", "--name", "d", "--department", "江苏省"]).status == 2)
        #expect(try CLI.run(["--data-dir", dir, "key", "create", "--role", "auditor", "--name", "d"]).status == 2)
        let p = try CLI.run(["--data-dir", dir, "key", "create", "--role", "publisher", "--name", "王五", "--department", "南京市民政局"])
        #expect(p.status == 0 && p.stdout.hasPrefix("kf_"), "\(p.stderr)")
        #expect(try CLI.run(["--data-dir", dir, "key", "create", "--role", "reviewer", "--name", "赵六", "--department", "南京市民政局"]).status == 0)
        let list = try CLI.run(["--data-dir", dir, "--json", "department", "list"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: String]])
        #expect(rows.count == 2)
        let nanjing = try #require(rows.first { $0["name"] == "南京市民政局" })
        #expect(nanjing["parent"] == "江苏省" && nanjing["datasets"] == "1" && nanjing["publishers"] == "1" && nanjing["reviewers"] == "1")
        #expect(try CLI.run(["--data-dir", dir, "key", "list"]).stdout.contains("南京市民政局"))
        // The department's duty list: a bad day, an unknown department, a bad kind exit 2.
        let duty = ["--data-dir", dir, "duty", "add", "--department", "南京市民政局", "--dataset", "people", "--title", "人员名录"]
        #expect(try CLI.run(duty + ["--due", "2027-02-29"]).stderr.contains("not a calendar day"))
        #expect(try CLI.run(duty + ["--due", "2027-02-29"]).status == 2)
        #expect(try CLI.run(duty + ["--due", "2027-02-28", "--kind", "sell"]).status == 2)
        #expect(try CLI.run(["--data-dir", dir, "duty", "add", "--department", "无", "--dataset", "x", "--title", "t", "--due", "2027-02-28"]).status == 2)
        #expect(try CLI.run(duty + ["--due", "2027-02-28"]).status == 0)
        let late = try CLI.run(["--data-dir", dir, "duty", "list", "--late", "--at", "2027-03-01"])
        #expect(late.status == 0 && late.stdout.contains("人员名录") && late.stdout.contains("late"))
        #expect(try CLI.run(["--data-dir", dir, "duty", "list", "--late", "--at", "2027-02-28"]).stdout.contains("No duty is late"))
        #expect(try CLI.run(["--data-dir", dir, "--json", "stats"]).stdout.contains("\"南京市民政局\""))
        #expect(try CLI.run(["--data-dir", dir, "dataset", "publish", "people", "--tier", "conditional"]).status == 0)
        #expect(try CLI.run(["--data-dir", dir, "duty", "list", "--at", "2027-03-01"]).stdout.contains("done"))
        #expect(try CLI.run(["--data-dir", dir, "duty", "withdraw", "1", "--reason", " "]).status == 2)
        #expect(try CLI.run(["--data-dir", dir, "duty", "withdraw", "1", "--reason", "机构调整"]).status == 0)
        #expect(try CLI.run(["--data-dir", dir, "audit", "verify"]).status == 0)
    }

    @Test func aManifestWithAnUnknownLevelExits2AndWritesNothing() throws {
        let dir = try initialized()
        let before = try snapshot(dir)
        let m = scratch.write("bad.json", Self.manifest.replacingOccurrences(of: "\"L2\"", with: "\"L7\""))
        let csv = scratch.write("people.csv", "pid,age\nP1,30\n")
        let r = try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir])
        #expect(r.status == 2)
        #expect(r.stderr.contains("level 'L7' is not one of L1, L2, L3, L4"), "\(r.stderr)")
        #expect(r.stderr.contains("bad.json"))
        #expect(try snapshot(dir) == before)
    }

    @Test func anUnknownUpdateFrequencyExits2AndWritesNothing() throws {
        let dir = try initialized()
        let before = try snapshot(dir)
        let m = scratch.write("bad.json", Self.manifest.replacingOccurrences(of: "\"entity\"", with: "\"update_frequency\": \"fortnightly\", \"entity\""))
        let csv = scratch.write("people.csv", "pid,age\nP1,30\n")
        let r = try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir])
        #expect(r.status == 2)
        #expect(r.stderr.contains("update_frequency 'fortnightly' is not one of hourly, daily, weekly"), "\(r.stderr)")
        #expect(try snapshot(dir) == before)
        // A late dataset is listed by `stats --overdue`, judged at a time given.
        let good = scratch.write("good.json", Self.manifest.replacingOccurrences(of: "\"entity\"", with: "\"update_frequency\": \"weekly\", \"department\": \"省统计局\", \"entity\""))
        #expect(try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", good, "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["--data-dir", dir, "dataset", "publish", "people", "--tier", "open"]).status == 0)
        #expect(try CLI.run(["--data-dir", dir, "stats", "--overdue"]).stdout.contains("No published dataset is overdue"))
        let later = AuditChain.timestamp(Date().addingTimeInterval(20 * 86_400))
        let late = try CLI.run(["--data-dir", dir, "--json", "stats", "--overdue", "--at", later])
        #expect(late.status == 0 && late.stdout.contains("\"freshness\" : \"overdue\"") && late.stdout.contains("\"days_late\" : \"13\"") && late.stdout.contains("省统计局"), "\(late.stdout)")
        #expect(try CLI.run(["--data-dir", dir, "stats", "--at", "soon"]).status == 2)
        let quality = try CLI.run(["--data-dir", dir, "dataset", "quality", "people"])
        #expect(quality.status == 0 && quality.stdout.contains("1 rows, 0 refused at import; valid") && quality.stdout.contains("100.0 %"), "\(quality.stdout)")
    }

    @Test func anUnknownDivisionCodeExits2AndWritesNothing() throws {
        let dir = try initialized()
        let before = try snapshot(dir)
        let csv = scratch.write("people.csv", "pid,age\nP1,30\n")
        for (spatial, expected) in [(#"["320100", "320199"]"#, "spatial[1]: '320199' is not a Jiangsu division code (GB/T 2260): `kaifang divisions` lists"),
                                    (#"["320611"]"#, "'320611' (港闸区) is a GB/T 2260 code retired in 2020: use '320602' (崇川区)")] {
            let m = scratch.write("bad.json", Self.manifest.replacingOccurrences(of: "\"entity\"", with: "\"spatial\": \(spatial), \"entity\""))
            let r = try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir])
            #expect(r.status == 2)
            #expect(r.stderr.contains(expected) && r.stderr.contains("bad.json"), "\(r.stderr)")
            #expect(try snapshot(dir) == before)
        }
        let listed = try CLI.run(["divisions", "--city", "320100"])
        #expect(listed.status == 0 && listed.stdout.contains("320115  江宁区") && listed.stdout.split(separator: "\n").count == 2 + 12)
        #expect(try CLI.run(["divisions", "--city", "320115"]).status == 2)
    }

    @Test func theManifestNamesTheDatasetWhenIdIsLeftOut() throws {
        let dir = try initialized()
        let m = scratch.write("dataset.json", Self.manifest)
        let csv = scratch.write("people.csv", "pid,age\nP1,30\n")
        let bare = try CLI.run(["dataset", "import", csv, "--data-dir", dir])
        #expect(bare.status == 2 && bare.stderr.contains("--id ID, or --manifest dataset.json"), "\(bare.stderr)")
        let r = try CLI.run(["dataset", "import", csv, "--manifest", m, "--data-dir", dir])
        #expect(r.status == 0 && r.stdout.contains("into people version 1"), "\(r.stdout)\(r.stderr)")
    }

    @Test func scorecardsShowTheMonthAndRefuseAMonthNotOver() throws {
        let dir = try initialized()
        #expect(try CLI.run(["--data-dir", dir, "scorecard"]).stdout.contains("No dataset in the catalog yet"))
        let m = scratch.write("good.json", Self.manifest.replacingOccurrences(of: "\"entity\"", with: "\"department\": \"省统计局\", \"should_open\": true, \"entity\""))
        let csv = scratch.write("people.csv", "pid,age\nP1,30\n")
        #expect(try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir]).status == 0)
        let shown = try CLI.run(["--data-dir", dir, "scorecard"])
        #expect(shown.status == 0 && shown.stdout.contains("省统计局") && shown.stdout.contains("0/2") && shown.stdout.contains("0.0 %"), "\(shown.stdout)")
        let now = try CLI.run(["--data-dir", dir, "scorecard", "snapshot", "--month", String(AuditChain.timestamp().prefix(7))])
        #expect(now.status == 2 && now.stderr.contains("is not over"), "\(now.stderr)")
        #expect(try CLI.run(["--data-dir", dir, "scorecard", "snapshot", "--month", "Nov"]).status == 2)
        // Last month ended before the dataset was imported: nothing to keep.
        let last = try CLI.run(["--data-dir", dir, "scorecard", "snapshot"])
        #expect(last.status == 0 && last.stdout.contains("nothing to keep"), "\(last.stdout)")
        #expect(try CLI.run(["--data-dir", dir, "scorecard", "history"]).stdout.contains("No month kept yet"))
    }

    @Test func aHeaderThatDoesNotMatchTheManifestExits2AndWritesNothing() throws {
        let dir = try initialized()
        let before = try snapshot(dir)
        let m = scratch.write("dataset.json", Self.manifest)
        let csv = scratch.write("people.csv", "pid,agee\nP1,30\n")
        let r = try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir])
        #expect(r.status == 2)
        #expect(r.stderr.contains("people.csv:1:5: header column 2 'agee' is not a field of the manifest"), "\(r.stderr)")
        #expect(try snapshot(dir) == before)
    }

    @Test func badRowsExit2ListPositionsAndWriteNothing() throws {
        let dir = try initialized()
        let before = try snapshot(dir)
        let m = scratch.write("dataset.json", Self.manifest)
        var text = "pid,age\nP1,30\nP2,abc\nP3,200\n"
        for i in 0..<30 { text += "Q\(i),x\n" }
        let csv = scratch.write("people.csv", text)
        let r = try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--data-dir", dir])
        #expect(r.status == 2)
        #expect(r.stderr.contains("people.csv:3:4: field 'age': expected an integer"), "\(r.stderr)")
        #expect(r.stderr.contains("people.csv:4:4: field 'age': value is above the declared max 150"))
        #expect(r.stderr.contains("32 rows refused; nothing was imported"))
        #expect(r.stderr.contains("… and 12 more rows with problems"))
        #expect(try snapshot(dir) == before)
        #expect((try FileManager.default.contentsOfDirectory(atPath: "\(dir)/tmp")).isEmpty)
    }

    @Test func onErrorSkipImportsGoodRowsAndWritesRejects() throws {
        let dir = try initialized()
        let m = scratch.write("dataset.json", Self.manifest)
        let csv = scratch.write("people.csv", "pid,age\nP1,30\nP2,abc\nP3,40\n")
        let r = try CLI.run(["dataset", "import", csv, "--id", "people", "--manifest", m, "--on-error", "skip", "--json", "--data-dir", dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"rows\" : 2") && r.stdout.contains("\"rejected\" : 1"))
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/rejects")
        #expect(files.count == 1)
        let rejects = try String(contentsOfFile: "\(dir)/rejects/\(files[0])", encoding: .utf8)
        #expect(rejects.hasPrefix("line,column,field,reason,row\n3,4,age,"))
    }

    @Test(arguments: [
        ["dataset", "show", "ghost"], ["dataset", "publish", "ghost", "--tier", "open"], ["dataset", "versions", "ghost"],
        ["dataset", "withdraw", "ghost"],
    ])
    func anUnknownDatasetIdExits2NamingIt(args: [String]) throws {
        let dir = try initialized()
        let before = try snapshot(dir)
        let r = try CLI.run(args + ["--data-dir", dir])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no dataset 'ghost'"), "\(r.stderr)")
        #expect(try snapshot(dir) == before)
    }

    @Test func badUsageExits2() throws {
        let dir = try initialized()
        #expect(try CLI.run(["dataset", "publish", "x", "--tier", "public", "--data-dir", dir]).status == 2)
        #expect(try CLI.run(["dataset", "frobnicate"]).status == 2)
        #expect(try CLI.run(["key", "create", "--role", "admin", "--name", "x", "--data-dir", dir]).status == 2)
        let notInit = try CLI.run(["dataset", "list", "--data-dir", scratch.url.appendingPathComponent("nowhere").path])
        #expect(notInit.status == 2 && notInit.stderr.contains("kaifang init"))
        #expect(try CLI.run(["--help"]).status == 0)
    }

    @Test func aKeyIsPrintedOnceAndOnlyItsHashIsStored() throws {
        let dir = try initialized()
        let r = try CLI.run(["key", "create", "--role", "developer", "--name", "测试开发者", "--data-dir", dir])
        #expect(r.status == 0)
        let key = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("kf_") && key.count == 76)
        let list = try CLI.run(["key", "list", "--data-dir", dir])
        #expect(list.stdout.contains("测试开发者") && !list.stdout.contains(String(key.suffix(64))))
        let catalogBytes = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/catalog.sqlite"))
        #expect(catalogBytes.range(of: Data(key.suffix(64).utf8)) == nil)
    }

    /// Ctrl-C (SIGINT) stops `serve` with exit status 0 and no error; a second server on the
    /// same port is told the port is taken (status 1), not something else.
    @Test func serveStopsCleanlyOnCtrlCAndNamesABusyPort() throws {
        let scratch = Scratch()
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        let server = Process()
        server.executableURL = CLI.binary
        server.arguments = ["serve", "--data-dir", dir, "--port", "0", "--sandbox-workers", "0"]
        let out = Pipe(), err = Pipe()
        server.standardOutput = out
        server.standardError = err
        try server.run()
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        // The announced address: "Kaifang serving … on http://127.0.0.1:<port>/ (Ctrl-C stops)".
        var announced = ""
        let deadline = Date().addingTimeInterval(30)
        while !announced.contains("(Ctrl-C stops)") && Date() < deadline && server.isRunning {
            announced += String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        }
        let port = try #require(announced.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) })
        let second = try CLI.run(["serve", "--data-dir", dir, "--port", "\(port)", "--sandbox-workers", "0"])
        #expect(second.status == 1)
        #expect(second.stderr.contains("port \(port) on 127.0.0.1 is already in use"), "\(second.stderr)")
        kill(server.processIdentifier, SIGINT)
        let stopBy = Date().addingTimeInterval(20)
        while server.isRunning && Date() < stopBy { usleep(50_000) }
        guard !server.isRunning else { Issue.record("serve did not stop on SIGINT"); return }
        let errors = String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
        #expect(server.terminationStatus == 0, "\(errors)")
        #expect(!errors.contains("error"), "\(errors)")
    }
}
