import Foundation
import KaifangCore
import Storage
import Testing

/// `pii scan`, `mask`, `dataset classify`, `dataset field` and the k-anonymity gate of `publish`.
@Suite struct MaskingCLITests {
    let scratch = Scratch()

    @Test func piiScanPrintsOneJSONObjectPerLineWithoutTheValue() throws {
        let input = scratch.write("values.txt", "320102199003071239\n13812341234\r\nhello\n\n6222020200112233445\n")
        let r = try CLI.run(["pii", "scan", input])
        #expect(r.status == 0)
        #expect(r.stdout == """
        {"type":"resident_id","valid":true}
        {"type":"phone","valid":true}
        {"type":null,"valid":false}
        {"type":null,"valid":false}
        {"type":"bank_card","valid":false}

        """)
        let echoed = try CLI.run(["pii", "scan", input, "--echo"])
        #expect(echoed.stdout.contains(#""value":"13812341234""#))
    }

    @Test func piiScanReadsStandardInput() throws {
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["pii", "scan"]
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        try p.run()
        inPipe.fileHandleForWriting.write(Data("zhang@example.com\n".utf8))
        try inPipe.fileHandleForWriting.close()
        let out = String(decoding: outPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(out == "{\"type\":\"email\",\"valid\":true}\n")
    }

    @Test func maskStreamsTheResidentsFileThroughThePublicView() throws {
        let r = try CLI.run(["mask", "datasets/residents/residents.csv", "--manifest", "datasets/residents/dataset.json", "--view", "public"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2001)
        #expect(lines[0] == "id_number,name,phone,address,birth_date,gender,district,service_type,benefit_amount,service_date")
        let first = lines[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        #expect(first[0].isEmpty)                                    // L4 suppressed
        #expect(first[2].range(of: #"^1[3-9]\d\*\*\*\*\d{4}$"#, options: .regularExpression) != nil)
        #expect(first[4].count == 4)                                  // a qi birth date → year
    }

    /// A data directory with residents published conditional and two keys, each holding a rows
    /// license on it (the first for three fields only); returns the two license ids.
    func twoLicenses() throws -> (String, String) {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "import", "datasets/residents/residents.csv", "--id", "residents", "--manifest", "datasets/residents/dataset.json", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "publish", "residents", "--tier", "conditional", "--data-dir", dir]).status == 0)
        var ids: [String] = []
        for (name, fields) in [("a", "name,phone,district"), ("b", "")] {
            let key = try CLI.run(["key", "create", "--role", "developer", "--name", name, "--json", "--data-dir", dir])
            let keyID = try #require((try JSONSerialization.jsonObject(with: Data(key.stdout.utf8)) as? [String: Any])?["id"] as? String)
            var args = ["license", "grant", "--key", keyID, "--dataset", "residents", "--use", "rows", "--purpose", "研究低保发放的区县分布", "--json", "--data-dir", dir]
            if !fields.isEmpty { args += ["--fields", fields] }
            let grant = try CLI.run(args)
            #expect(grant.status == 0, "\(grant.stderr)")
            ids.append(try #require((try JSONSerialization.jsonObject(with: Data(grant.stdout.utf8)) as? [String: Any])?["license"] as? String))
        }
        return (ids[0], ids[1])
    }

    @Test func theLicensedViewIsALicensesFieldsAndPseudonyms() throws {
        let m = "datasets/residents/dataset.json", csv = "datasets/residents/residents.csv"
        let without = try CLI.run(["mask", csv, "--manifest", m, "--license", "lic_x", "--data-dir", scratch.url.appendingPathComponent("none").path])
        #expect(without.status == 2 && without.stderr.contains("platform secret"))
        let (narrow, full) = try twoLicenses()
        let a = try CLI.run(["mask", csv, "--manifest", m, "--view", "licensed", "--license", full, "--data-dir", scratch.dataDir])
        let b = try CLI.run(["mask", csv, "--manifest", m, "--license", full, "--data-dir", scratch.dataDir])
        let c = try CLI.run(["mask", csv, "--manifest", m, "--license", narrow, "--data-dir", scratch.dataDir])
        #expect(a.status == 0 && a.stdout == b.stdout)
        #expect(a.stdout.contains(",name_") && a.stdout.contains(",tel_"))
        // The narrow license gets its three fields only, pseudonymized for it alone.
        #expect(c.status == 0)
        #expect(c.stdout.split(separator: "\n").first == "name,phone,district")
        let fullFirst = a.stdout.split(separator: "\n")[1], narrowFirst = c.stdout.split(separator: "\n")[1]
        #expect(!fullFirst.contains(narrowFirst.split(separator: ",")[0]))
        // A licensed view names a license that exists, is in force, and is for this dataset.
        let noLicense = try CLI.run(["mask", csv, "--manifest", m, "--view", "licensed", "--data-dir", scratch.dataDir])
        #expect(noLicense.status == 2 && noLicense.stderr.contains("--view licensed needs --license"))
        let unknown = try CLI.run(["mask", csv, "--manifest", m, "--license", "lic_nope", "--data-dir", scratch.dataDir])
        #expect(unknown.status == 2 && unknown.stderr.contains("no license 'lic_nope'"))
        let other = try CLI.run(["mask", "datasets/enterprises/enterprises.csv", "--manifest", "datasets/enterprises/dataset.json", "--license", full, "--data-dir", scratch.dataDir])
        #expect(other.status == 2 && other.stderr.contains("is for dataset 'residents'"))
        #expect(try CLI.run(["license", "revoke", full, "--data-dir", scratch.dataDir]).status == 0)
        let revoked = try CLI.run(["mask", csv, "--manifest", m, "--license", full, "--data-dir", scratch.dataDir])
        #expect(revoked.status == 2 && revoked.stderr.contains("revoked"))
    }

    @Test func aLicensedExportHasTheLicensesFieldsOnlyAsTheMaskerWritesThem() throws {
        let (narrow, _) = try twoLicenses()
        let out = scratch.url.appendingPathComponent("narrow.csv").path
        let exported = try CLI.run(["dataset", "export", "residents", "--license", narrow, "-o", out, "--data-dir", scratch.dataDir])
        #expect(exported.status == 0, "\(exported.stderr)")
        let file = try String(contentsOfFile: out, encoding: .utf8)
        #expect(file.split(separator: "\n").first == "name,phone,district")
        let masked = try CLI.run(["mask", "datasets/residents/residents.csv", "--manifest", "datasets/residents/dataset.json", "--license", narrow, "--data-dir", scratch.dataDir])
        #expect(masked.stdout == file)
        let publicWithLicense = try CLI.run(["dataset", "export", "residents", "--view", "public", "--license", narrow, "--data-dir", scratch.dataDir])
        #expect(publicWithLicense.status == 2 && publicWithLicense.stderr.contains("--license goes with --view licensed"))
    }

    @Test func classifyProposesAndApplyNeverLowersALevel() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        // A manifest that says nothing about the columns' meaning.
        let manifest = """
        {"id": "people", "title": "People", "fields": [
          {"name": "id_number", "title": "身份证号", "type": "string", "level": "L1"},
          {"name": "name", "title": "姓名", "type": "string", "level": "L1"},
          {"name": "phone", "title": "手机号", "type": "string", "level": "L1"},
          {"name": "district", "title": "所属区县", "type": "string", "level": "L1"},
          {"name": "note", "type": "string", "level": "L4"}
        ]}
        """
        var csv = "id_number,name,phone,district,note\n"
        var rng = (state: UInt64(1), ())
        for i in 0..<200 {
            rng.state = rng.state &* 6364136223846793005 &+ 1442695040888963407
            let body = "320102" + String(1950 + i % 50) + String(format: "%02d%02d", 1 + i % 12, 1 + i % 28) + String(format: "%03d", i % 1000)
            csv += "\(body + String(checkChar(body))),张\(["伟", "芳", "敏"][i % 3]),139\(String(format: "%08d", i)),\(["玄武区", "鼓楼区"][i % 2]),x\n"
        }
        let m = scratch.write("dataset.json", manifest), f = scratch.write("people.csv", csv)
        #expect(try CLI.run(["dataset", "import", f, "--id", "people", "--manifest", m, "--data-dir", dir]).status == 0)
        let dry = try CLI.run(["dataset", "classify", "people", "--data-dir", dir, "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("\"semantic\" : \"resident_id\""))
        #expect(!dry.stdout.contains("320102"))   // no sampled value in the output
        let applied = try CLI.run(["dataset", "classify", "people", "--apply", "--data-dir", dir])
        #expect(applied.status == 0 && applied.stdout.contains("Applied to"), "\(applied.stdout)")
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        let fields = try #require(try catalog.dataset("people")).manifest.fields
        #expect(fields[0].semantic == .resident_id && fields[0].level == .L4)
        #expect(fields[1].semantic == .person_name && fields[1].level == .L3)
        #expect(fields[2].semantic == .phone && fields[2].level == .L3)
        #expect(fields[3].qi)
        #expect(fields[4].level == .L4)  // never lowered
        #expect(try catalog.auditEvents().last?.event.action == "dataset.classify")
    }

    @Test func fieldOverridesChangeTheActionAndAreAudited() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "import", "datasets/enterprises/enterprises.csv", "--id", "enterprises",
                             "--manifest", "datasets/enterprises/dataset.json", "--data-dir", dir]).status == 0)
        let r = try CLI.run(["dataset", "field", "enterprises", "legal_representative", "--action", "suppress", "--data-dir", dir])
        #expect(r.status == 0 && r.stdout.contains("public: suppress"), "\(r.stderr)")
        let show = try CLI.run(["dataset", "show", "enterprises", "--view", "public", "--data-dir", dir])
        #expect(show.stdout.contains("suppress"))
        let bad = try CLI.run(["dataset", "field", "enterprises", "nope", "--level", "L2", "--data-dir", dir])
        #expect(bad.status == 2 && bad.stderr.contains("has no field 'nope'"))
        let bad2 = try CLI.run(["dataset", "field", "enterprises", "uscc", "--level", "L9", "--data-dir", dir])
        #expect(bad2.status == 2)

        // A fingerprint tolerance: set, refused where it cannot apply (nothing changed), cleared.
        let marked = try CLI.run(["dataset", "field", "enterprises", "registered_capital", "--fingerprint", "0.5", "--data-dir", dir])
        #expect(marked.status == 0 && marked.stdout.contains("licensed copies fingerprinted within ±0.5"), "\(marked.stderr)")
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        #expect(try catalog.dataset("enterprises")?.manifest.field(named: "registered_capital")?.fingerprint == FingerprintSpec(tolerance: 0.5))
        for (field, tolerance, words) in [("company_name", "1", "fingerprint applies to integer or number fields, not string"),
                                          ("registered_capital", "-2", "must be a positive number"),
                                          ("registered_capital", "0.00000001", "at most 6 decimals")] {
            let refused = try CLI.run(["dataset", "field", "enterprises", field, "--fingerprint=\(tolerance)", "--data-dir", dir])
            #expect(refused.status == 2 && refused.stderr.contains(words), "\(refused.stderr)")
        }
        #expect(try catalog.dataset("enterprises")?.manifest.field(named: "registered_capital")?.fingerprint == FingerprintSpec(tolerance: 0.5))
        #expect(try CLI.run(["dataset", "field", "enterprises", "registered_capital", "--clear-fingerprint", "--data-dir", dir]).status == 0)
        #expect(try catalog.dataset("enterprises")?.manifest.field(named: "registered_capital")?.fingerprint == nil)
    }

    @Test func publishingOpenBelowKIsRefusedUnlessForcedWithAReason() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "import", "datasets/residents/residents.csv", "--id", "residents",
                             "--manifest", "datasets/residents/dataset.json", "--data-dir", dir]).status == 0)
        let refused = try CLI.run(["dataset", "publish", "residents", "--tier", "open", "--data-dir", dir])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("-anonymous over birth_date, gender, district"), "\(refused.stderr)")
        #expect(try CatalogDatabase(directory: DataDirectory(path: dir)).dataset("residents")?.isPublished == false)
        let noReason = try CLI.run(["dataset", "publish", "residents", "--tier", "open", "--force", "--data-dir", dir])
        #expect(noReason.status == 2 && noReason.stderr.contains("--reason"))
        let forced = try CLI.run(["dataset", "publish", "residents", "--tier", "open", "--force", "--reason", "演示 demo", "--data-dir", dir])
        #expect(forced.status == 0 && forced.stdout.contains("FORCED"), "\(forced.stderr)")
        let event = try #require(try CatalogDatabase(directory: DataDirectory(path: dir)).auditEvents().last?.event)
        #expect(event.action == "dataset.publish" && event.detail["forced"] == .bool(true) && event.detail["reason"] == .string("演示 demo"))
        // conditional needs no k check.
        #expect(try CLI.run(["dataset", "publish", "residents", "--tier", "conditional", "--data-dir", dir]).status == 0)
    }
}

/// GB 11643 check character, computed from its definition (weights 2^(17-i) mod 11).
func checkChar(_ first17: String) -> Character {
    var sum = 0
    for (i, ch) in first17.enumerated() {
        var w = 1
        for _ in 0..<(17 - i) { w = w * 2 % 11 }
        sum += Int(String(ch))! * w
    }
    let r = (12 - sum % 11) % 11
    return r == 10 ? "X" : Character(String(r))
}
