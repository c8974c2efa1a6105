import Foundation
import Ingest
import KaifangCore
import KaifangServer
import Masking
import Publishing
import Storage
import Testing

func rows(_ r: LiveServer.Reply) -> [[String: Any]] { r.object["rows"] as? [[String: Any]] ?? [] }

/// Rows, exports and licensing end to end, against the real server.
@Suite(.serialized) struct RowsAPITests {
    static let personal: Set<SemanticType> = [.resident_id, .phone, .bank_card]

    /// Whether any value in rows validates as a resident ID, phone or bank card.
    static func leaked(_ rows: [[String: Any]]) -> [String] {
        var found: [String] = []
        for row in rows {
            for (k, v) in row {
                guard let s = v as? String else { continue }
                let d = Detector.detect(s)
                if let t = d.type, d.valid, personal.contains(t) { found.append(k) }
            }
        }
        return found
    }

    @Test func anonymousRowsOfAnOpenDatasetHoldNoPersonalValue() async throws {
        try await LiveServer.with { s in
            var all: [[String: Any]] = []
            var path = "/v1/datasets/enterprises/rows?_limit=1000"
            while true {
                let r = try await s.get(path)
                #expect(r.status == 200)
                #expect(r.headers["content-type"]?.hasPrefix("application/json") == true)
                all += rows(r)
                #expect((r.object["masked_fields"] as? [String]) == ["legal_representative"])
                guard let next = r.object["next_cursor"] as? String else { break }
                path = "/v1/datasets/enterprises/rows?_limit=1000&_cursor=\(next)"
            }
            #expect(all.count == 1000)
            #expect(Self.leaked(all).isEmpty)
            let names = all.compactMap { $0["legal_representative"] as? String }
            #expect(names.count == 1000 && names.allSatisfy { $0.hasSuffix("*") })
        }
    }

    @Test func conditionalDataNeedsAKeyAndALicense() async throws {
        try await LiveServer.with { s in
            let anon = try await s.get("/v1/datasets/residents/rows")
            #expect(anon.status == 401 && anon.headers["content-type"]?.hasPrefix("application/problem+json") == true)
            let (_, dev) = try s.catalog.createKey(role: .developer, name: "d", actor: "t")
            let unlicensed = try await s.get("/v1/datasets/residents/rows", key: dev)
            #expect(unlicensed.status == 403)
            let export = try await s.get("/v1/datasets/residents/export", key: dev)
            #expect(export.status == 403)
        }
    }

    @Test func theLicensingWorkflowFromApplicationToRevocation() async throws {
        try await LiveServer.with { s in
            let (devRecord, dev) = try s.catalog.createKey(role: .developer, name: "d", actor: "t")
            let (_, other) = try s.catalog.createKey(role: .developer, name: "o", actor: "t")
            let short = try await s.get("/v1/applications", key: dev, json: ["dataset": "residents", "purpose": "short", "use": "rows"])
            #expect(short.status == 400)
            let noKey = try await s.get("/v1/applications", json: ["dataset": "residents", "purpose": "a long enough purpose", "use": "rows"])
            #expect(noKey.status == 401)
            let created = try await s.get("/v1/applications", key: dev, json: [
                "dataset": "residents", "purpose": "研究低保发放的区县分布 distribution study", "use": "rows",
                "fields": ["name", "phone", "district", "benefit_amount"],
            ])
            #expect(created.status == 201, "\(created.text)")
            let appID = try #require(created.object["id"] as? Int)
            #expect(created.object["status"] as? String == "pending")
            let mine = try await s.get("/v1/applications/\(appID)", key: dev)
            let notMine = try await s.get("/v1/applications/\(appID)", key: other)
            #expect(mine.status == 200 && notMine.status == 404)

            let license = try s.catalog.approve(application: Int64(appID), actor: "cli:steward")
            let first = try await s.get("/v1/datasets/residents/rows?_limit=50", key: dev)
            let second = try await s.get("/v1/datasets/residents/rows?_limit=50", key: dev)
            #expect(first.status == 200, "\(first.text)")
            #expect(first.object["view"] as? String == "licensed")
            #expect((first.object["fields"] as? [String]) == ["name", "phone", "district", "benefit_amount"])
            let phones1 = rows(first).compactMap { $0["phone"] as? String }
            let phones2 = rows(second).compactMap { $0["phone"] as? String }
            #expect(phones1.count == 50 && phones1 == phones2)
            #expect(phones1.allSatisfy { $0.hasPrefix("tel_") })
            #expect(Self.leaked(rows(first)).isEmpty)
            let licenses = try await s.get("/v1/licenses", key: dev)
            let listed = (licenses.object["licenses"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(listed == [license.id])
            // A field outside the grant cannot be asked for.
            let notGranted = try await s.get("/v1/datasets/residents/rows?_fields=id_number", key: dev)
            #expect(notGranted.status == 400)

            try s.catalog.revokeLicense(license.id, actor: "cli:steward")
            let after = try await s.get("/v1/datasets/residents/rows", key: dev)
            #expect(after.status == 403)
            #expect(devRecord.role == .developer)
        }
    }

    /// On the shared store a replica serves a read under the catalog as it last saw it, and
    /// checks that view against the change mark its read event committed under. A license
    /// revoked through another replica in between is caught there: the read is refused, and
    /// since its event is in the chain already, a `rows.withheld` event says it was not served
    /// and takes it back out of the dataset's read count.
    @Test(.enabled(if: TestStore.usesPostgres, "the shared store's replicas")) func aReadRefusedAfterItsEventCommittedIsRecordedAsWithheld() async throws {
        try await LiveServer.with { s in
            let (key, dev) = try s.catalog.createKey(role: .developer, name: "d", actor: "t")
            let app = try s.catalog.createApplication(keyID: key.id, dataset: "residents", purpose: "研究低保发放的区县分布 distribution study",
                                                      fields: [], use: .rows, durationDays: 30)
            let license = try s.catalog.approve(application: app.id, actor: "cli:steward")
            #expect(try await s.get("/v1/datasets/residents/rows?_limit=1", key: dev).status == 200)

            // Another replica (another process's catalog over the same store) revokes the license.
            let otherDir = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-other-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: otherDir) }
            let other = try TestStore.reopen(s.catalog, dataDir: otherDir)
            try other.revokeLicense(license.id, actor: "cli:steward")
            TestStore.close(other)

            let refused = try await s.get("/v1/datasets/residents/rows?_limit=1", key: dev)
            #expect(refused.status == 403, "\(refused.text)")
            let requestID = try #require(refused.headers.first { $0.key.lowercased() == "x-request-id" }?.value)
            let events = try s.catalog.auditEvents(dataset: "residents", actor: nil, limit: 10).map(\.event)
            let revoke = try #require(events.firstIndex { $0.action == "license.revoke" })
            let after = events[(revoke + 1)...]
            // The read resolved under the replica's last view is in the chain (the replica had not
            // seen the revocation), followed by the event that withholds it.
            let read = try #require(after.first { $0.action == "rows.read" }, "\(after.map(\.action))")
            #expect(read.detail["request_id"] == .string(requestID))
            let withheld = try #require(after.first { $0.action == "rows.withheld" })
            #expect(withheld.seq > read.seq)
            #expect(withheld.actor == read.actor)
            #expect(withheld.detail == ["request_id": .string(requestID), "status": 403])
            // Two reads recorded, one withheld: the dataset was read once.
            let stats = try await s.get("/v1/stats")
            let reads = stats.object["reads_30d"] as? [[String: Any]] ?? []
            #expect(reads.first { $0["value"] as? String == "residents" }?["count"] as? Int == 1, "\(stats.text)")
        }
    }

    /// An export refused after its event committed (the dataset republished through another
    /// replica while it started: 409) is withheld, and the day's export quota does not count it:
    /// sent again, it is served.
    @Test(.enabled(if: TestStore.usesPostgres, "the shared store's replicas")) func aWithheldExportDoesNotSpendTheQuota() async throws {
        try await LiveServer.with(configure: { $0.anonymousExportsPerDay = 1 }) { s in
            let otherDir = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-other-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: otherDir) }
            let other = try TestStore.reopen(s.catalog, dataDir: otherDir)
            defer { TestStore.close(other) }
            _ = try await s.get("/v1/datasets/air-quality/rows?_limit=1")   // the replica's view of the catalog, before the change
            _ = try other.publish(dataset: "air-quality", tier: .open, actor: "cli:steward")

            let refused = try await s.get("/v1/datasets/air-quality/export?format=csv")
            #expect(refused.status == 409, "\(refused.text)")
            let actions = try s.catalog.auditEvents(dataset: "air-quality", actor: nil, limit: 3).map(\.event.action)
            #expect(actions == ["dataset.publish", "export.read", "export.withheld"])
            let again = try await s.get("/v1/datasets/air-quality/export?format=csv")
            #expect(again.status == 200, "\(again.text.prefix(300))")
            #expect(try await s.get("/v1/datasets/air-quality/export?format=csv").status == 429)
        }
    }

    /// Conditional reads: a page's entity tag comes back as 304 without rows (and without a read
    /// event: nothing was served) while nothing the page depends on changed; any change — the
    /// query, the view, the dataset's policy — changes the tag; access is checked before the tag.
    @Test func pagesCarryEntityTagsAndAnswer304WhileUnchanged() async throws {
        try await LiveServer.with { s in
            let path = "/v1/datasets/enterprises/rows?_limit=5"
            let first = try await s.get(path)
            let tag = try #require(first.headers["etag"])
            #expect(first.status == 200 && tag.hasPrefix("\"r") && tag.hasSuffix("\"") && tag.count == 35)
            #expect(first.headers["cache-control"] == "no-cache")
            let again = try await s.get(path)
            #expect(again.headers["etag"] == tag && again.body == first.body)

            let events = try s.catalog.auditEvents().count
            for header in [tag, "W/\(tag)", "\"x\", \(tag)", "*"] {
                let cached = try await s.get(path, headers: ["If-None-Match": header])
                #expect(cached.status == 304, "\(header)")
                #expect(cached.body.isEmpty && cached.headers["etag"] == tag)
            }
            #expect(try s.catalog.auditEvents().count == events)
            let stale = try await s.get(path, headers: ["If-None-Match": "\"r0000\""])
            #expect(stale.status == 200 && stale.body == first.body)
            #expect(try s.catalog.auditEvents().count == events + 1)

            // Another query, another tag; a changed policy, another tag for the same query.
            let other = try await s.get("/v1/datasets/enterprises/rows?_limit=6")
            #expect(other.headers["etag"] != nil && other.headers["etag"] != tag)
            var manifest = try #require(try s.catalog.dataset("enterprises")).manifest
            manifest.description += " (revised)"
            try s.catalog.updateManifest(manifest, actor: "cli:steward", action: "dataset.update", detail: [:])
            let changed = try await s.get(path, headers: ["If-None-Match": tag])
            #expect(changed.status == 200 && changed.headers["etag"] != tag)

            // Exports and descriptors too; a 304 export is not counted as an export.
            let export = try await s.get("/v1/datasets/enterprises/export?format=jsonl")
            let exportTag = try #require(export.headers["etag"])
            #expect(export.status == 200 && !export.body.isEmpty)
            let csv = try await s.get("/v1/datasets/enterprises/export?format=csv")
            #expect(csv.headers["etag"] != nil && csv.headers["etag"] != exportTag)
            let exports = try s.catalog.auditEvents().count
            let notAgain = try await s.get("/v1/datasets/enterprises/export?format=jsonl", headers: ["If-None-Match": exportTag])
            #expect(notAgain.status == 304 && notAgain.body.isEmpty)
            #expect(try s.catalog.auditEvents().count == exports)
            let package = try await s.get("/v1/datasets/enterprises/datapackage.json")
            let packageTag = try #require(package.headers["etag"])
            #expect(try await s.get("/v1/datasets/enterprises/datapackage.json", headers: ["If-None-Match": packageTag]).status == 304)
            #expect(try await s.get("/v1/datasets/air-quality/datapackage.json", headers: ["If-None-Match": packageTag]).status == 200)
            for path in ["/v1/datasets?limit=2", "/v1/datasets/enterprises"] {
                let first = try await s.get(path)
                let t = try #require(first.headers["etag"], "\(path)")
                #expect(first.status == 200 && first.headers["cache-control"] == "no-cache")
                #expect(try await s.get(path, headers: ["If-None-Match": t]).status == 304, "\(path)")
            }
            let catalog = try await s.get("/v1/catalog.jsonld")
            let catalogTag = try #require(catalog.headers["etag"])
            #expect(try await s.get("/v1/catalog.jsonld", headers: ["If-None-Match": catalogTag]).status == 304)
            manifest.description += " (again)"
            try s.catalog.updateManifest(manifest, actor: "cli:steward", action: "dataset.update", detail: [:])
            let newCatalog = try await s.get("/v1/catalog.jsonld", headers: ["If-None-Match": catalogTag])
            #expect(newCatalog.status == 200 && newCatalog.headers["etag"] != catalogTag)
            let datasetTag = try #require(try await s.get("/v1/datasets/enterprises").headers["etag"])
            manifest.description += " (third)"
            try s.catalog.updateManifest(manifest, actor: "cli:steward", action: "dataset.update", detail: [:])
            #expect(try await s.get("/v1/datasets/enterprises", headers: ["If-None-Match": datasetTag]).status == 200)

            // A licensed page: private; revoked, the old tag gets 403, not 304.
            let (_, dev) = try s.catalog.createKey(role: .developer, name: "d", actor: "t")
            let created = try await s.get("/v1/applications", key: dev, json: [
                "dataset": "residents", "purpose": "研究低保发放的区县分布 distribution study", "use": "rows", "fields": ["district", "benefit_amount"],
            ])
            let license = try s.catalog.approve(application: Int64(try #require(created.object["id"] as? Int)), actor: "cli:steward")
            let licensed = try await s.get("/v1/datasets/residents/rows?_limit=5", key: dev)
            let licensedTag = try #require(licensed.headers["etag"])
            #expect(licensed.status == 200 && licensed.headers["cache-control"] == "private, no-cache")
            #expect(try await s.get("/v1/datasets/residents/rows?_limit=5", key: dev, headers: ["If-None-Match": licensedTag]).status == 304)
            try s.catalog.revokeLicense(license.id, actor: "cli:steward")
            #expect(try await s.get("/v1/datasets/residents/rows?_limit=5", key: dev, headers: ["If-None-Match": licensedTag]).status == 403)
        }
    }

    @Test func filtersAndSortsOnMaskedFieldsAreRefused() async throws {
        try await LiveServer.with { s in
            for q in ["legal_representative=%E5%BC%A0", "legal_representative__startswith=%E5%BC%A0", "legal_representative__isnull=true",
                      "_sort=legal_representative", "_sort=-legal_representative"] {
                let r = try await s.get("/v1/datasets/enterprises/rows?\(q)")
                #expect(r.status == 400, "\(q)")
                #expect((r.object["detail"] as? String)?.contains("would reveal the raw value") == true, "\(q)")
            }
            let unknown = try await s.get("/v1/datasets/enterprises/rows?colour=red")
            #expect(unknown.status == 400)
            let badOp = try await s.get("/v1/datasets/enterprises/rows?district__like=x")
            #expect(badOp.status == 400)
            let badControl = try await s.get("/v1/datasets/enterprises/rows?_limt=5")
            #expect(badControl.status == 400)
            let badType = try await s.get("/v1/datasets/enterprises/rows?registered_capital__gt=lots")
            #expect(badType.status == 400)
            let tooMany = try await s.get("/v1/datasets/enterprises/rows?_limit=1001")
            #expect(tooMany.status == 400)
        }
    }

    @Test func filterOperatorsSelectTheRightRows() async throws {
        try await LiveServer.with { s in
            func count(_ q: String, limit: Int = 1000) async throws -> Int {
                var seen = Set<String>()
                var n = 0
                var path = "/v1/datasets/air-quality/rows?_limit=\(limit)&\(q)"
                while true {
                    let r = try await s.get(path)
                    #expect(r.status == 200, "\(q): \(r.text)")
                    for row in rows(r) { seen.insert("\(row["station"] ?? "")|\(row["observed_at"] ?? "")") }
                    n += rows(r).count
                    guard let next = r.object["next_cursor"] as? String else {
                        #expect(seen.count == n, "\(q): a row came twice")
                        return n
                    }
                    path = "/v1/datasets/air-quality/rows?_limit=\(limit)&\(q)&_cursor=\(next)"
                }
            }
            // Counts computed from the source file.
            let reader = CSVReader(source: try FileByteSource(path: LiveServer.repo.appendingPathComponent("datasets/air-quality/air-quality.csv").path), fileName: "a")
            _ = try reader.next()
            var all: [[String]] = []
            while try reader.next() { all.append(reader.strings()) }
            let aqi = all.map { Int($0[3])! }
            #expect(try await count("aqi__gt=100") == aqi.filter { $0 > 100 }.count)
            #expect(try await count("aqi__lte=50") == aqi.filter { $0 <= 50 }.count)
            #expect(try await count("aqi=60") == aqi.filter { $0 == 60 }.count)
            #expect(try await count("aqi__not=60") == aqi.filter { $0 != 60 }.count)
            #expect(try await count("aqi__in=60,61,62") == aqi.filter { [60, 61, 62].contains($0) }.count)
            #expect(try await count("station=%E7%8E%84%E6%AD%A6%E6%B9%96") == all.filter { $0[0] == "玄武湖" }.count)
            #expect(try await count("station__contains=%E5%8D%8E") == all.filter { $0[0].contains("华") }.count)
            #expect(try await count("observed_at__startswith=2026-06-02") == all.filter { $0[2].hasPrefix("2026-06-02") }.count)
            #expect(try await count("pm25__isnull=true") == 0)
            #expect(try await count("district=%E7%8E%84%E6%AD%A6%E5%8C%BA&aqi__gte=80") == all.filter { $0[1] == "玄武区" && Int($0[3])! >= 80 }.count)
            // Equality filters on category fields only: answered from the version file's row sets
            // (RowSets), paged with small pages through the cursor.
            let inTwo = all.filter { $0[1] == "玄武区" || $0[1] == "鼓楼区" }.count
            #expect(try await count("district__in=%E7%8E%84%E6%AD%A6%E5%8C%BA,%E9%BC%93%E6%A5%BC%E5%8C%BA") == inTwo)
            #expect(try await count("district__in=%E7%8E%84%E6%AD%A6%E5%8C%BA,%E9%BC%93%E6%A5%BC%E5%8C%BA", limit: 7) == inTwo)
            #expect(try await count("district=%E7%8E%84%E6%AD%A6%E5%8C%BA&station=%E7%8E%84%E6%AD%A6%E6%B9%96", limit: 13) == all.filter { $0[1] == "玄武区" && $0[0] == "玄武湖" }.count)
            #expect(try await count("district=%E7%8E%84%E6%AD%A6%E5%8C%BA&station=%E4%B8%AD%E5%8D%8E%E9%97%A8") == 0)
            #expect(try await count("district=nowhere") == 0)
        }
    }

    /// Pages read straight from the version file's pages (`TableFile`) are byte for byte the
    /// pages SQLite gives, in every view (anonymous masks, a steward's raw values, a license's
    /// pseudonyms), for page sizes, field lists, cursors (paged to the end, past the end, before
    /// the start) and row-set filters.
    @Test func pagesReadFromTheFileAreTheBytesSQLiteGives() async throws {
        try await LiveServer.with { s in
            let viaSQLite = LiveServer(sharing: s) { $0.pageReader = false }
            try await viaSQLite.start()
            do {
                let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "t")
                let (_, dev) = try s.catalog.createKey(role: .developer, name: "d", actor: "t")
                let applied = try await s.get("/v1/applications", key: dev, json: [
                    "dataset": "residents", "purpose": "比对两种读取方式 comparison of the two readers", "use": "rows",
                    "fields": ["name", "phone", "district", "service_type", "benefit_amount"],
                ])
                _ = try s.catalog.approve(application: Int64(try #require(applied.object["id"] as? Int)), actor: "cli:steward")
                let past = RowCursor.encode(sortColumn: nil, descending: false, value: .null, row: 50_000_000)
                let before = RowCursor.encode(sortColumn: nil, descending: false, value: .null, row: -3)
                var compared = 0
                func same(_ path: String, key: String?) async throws -> LiveServer.Reply {
                    let a = try await s.get(path, key: key)
                    let b = try await viaSQLite.get(path, key: key)
                    #expect(a.status == b.status, "\(path)")
                    if a.status == 200 { #expect(a.body == b.body, "\(path)") }
                    compared += 1
                    return a
                }
                for (dataset, filterFields) in [("air-quality", ["station", "district"]), ("enterprises", ["industry", "district"]),
                                                ("residents", ["district", "service_type", "gender"])] {
                    for key in [nil, steward, dev] {
                        let base = "/v1/datasets/\(dataset)/rows?"
                        let first = try await same(base + "_limit=1000", key: key)
                        guard first.status == 200 else { continue }
                        let fields = try #require(first.object["fields"] as? [String])
                        var queries = ["", "_limit=1", "_limit=7", "_fields=\(fields.reversed().prefix(2).joined(separator: ","))",
                                       "_cursor=\(past)", "_cursor=\(before)&_limit=3"]
                        // Row-set filters on values the first page holds, where the caller sees them as stored.
                        let masked = Set(first.object["masked_fields"] as? [String] ?? [])
                        for f in filterFields where fields.contains(f) && !masked.contains(f) {
                            let values = Array(Set(rows(first).compactMap { $0[f] as? String })).sorted()
                            let enc = { (v: String) in v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? v }
                            if let v = values.first { queries.append("\(f)=\(enc(v))&_limit=9") }
                            if values.count > 2 { queries.append("\(f)__in=\(enc(values[1])),\(enc(values[2]))&_limit=50") }
                        }
                        for q in queries {
                            var path = base + q
                            for _ in 0..<40 {
                                let r = try await same(path, key: key)
                                guard let next = r.object["next_cursor"] as? String else { break }
                                path = base + q.split(separator: "&").filter { !$0.hasPrefix("_cursor=") }.joined(separator: "&") + "&_cursor=\(next)"
                            }
                        }
                    }
                }
                #expect(compared > 150)
            } catch {
                await viaSQLite.stop()
                throw error
            }
            await viaSQLite.stop()
        }
    }

    @Test(arguments: ["", "_sort=aqi", "_sort=-aqi", "_sort=station", "_sort=-pm25"])
    func pagingReturnsEveryRowExactlyOnce(sort: String) async throws {
        try await LiveServer.with { s in
            var seen: [String] = []
            var previous: Double? = nil
            var path = "/v1/datasets/air-quality/rows?_limit=137&\(sort)"
            while true {
                let r = try await s.get(path)
                #expect(r.status == 200, "\(r.text)")
                for row in rows(r) {
                    seen.append("\(row["station"] ?? "")|\(row["observed_at"] ?? "")")
                    if sort == "_sort=aqi", let v = row["aqi"] as? Double {
                        if let p = previous { #expect(v >= p) }
                        previous = v
                    }
                }
                guard let next = r.object["next_cursor"] as? String else { break }
                path = "/v1/datasets/air-quality/rows?_limit=137&\(sort)&_cursor=\(next)"
            }
            #expect(seen.count == 1920)
            #expect(Set(seen).count == 1920)
        }
    }

    @Test func pagingWithNullsInTheSortFieldReturnsEveryRowOnce() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            let manifest = DatasetManifest(id: "n", title: "Nulls", fields: [
                FieldSpec(name: "k", type: .integer, level: .L1), FieldSpec(name: "v", type: .number, level: .L1),
            ])
            var csv = "k,v\n"
            for i in 0..<250 { csv += "\(i),\(i % 3 == 0 ? "" : String(i % 17))\n" }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("nulls-\(UUID().uuidString).csv").path
            FileManager.default.createFile(atPath: path, contents: Data(csv.utf8))
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = try Publisher(catalog: s.catalog).importCSV(path: path, datasetID: "n", manifest: manifest, actor: "t")
            try s.catalog.publish(dataset: "n", tier: .open, actor: "t")
            for sort in ["v", "-v"] {
                var keys: [Int] = []
                var url = "/v1/datasets/n/rows?_limit=7&_sort=\(sort)"
                while true {
                    let r = try await s.get(url)
                    #expect(r.status == 200)
                    keys += rows(r).compactMap { $0["k"] as? Int }
                    guard let next = r.object["next_cursor"] as? String else { break }
                    url = "/v1/datasets/n/rows?_limit=7&_sort=\(sort)&_cursor=\(next)"
                }
                #expect(keys.count == 250 && Set(keys).count == 250, "\(sort)")
            }
            let badCursor = try await s.get("/v1/datasets/n/rows?_sort=v&_cursor=WzAsMCwibiIsMCwiMiJd")
            #expect(badCursor.status == 400)
        }
    }

    /// A page is written into the response's buffer sized for about 40 bytes a cell; pages of
    /// long texts outgrow it and are moved out whole — every row intact, in every reader's path.
    @Test func pagesLargerThanTheirBufferAreWhole() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            let manifest = DatasetManifest(id: "long", title: "Long texts", fields: [
                FieldSpec(name: "k", type: .integer, level: .L1), FieldSpec(name: "note", type: .string, level: .L1),
            ])
            var csv = "k,note\n"
            var notes: [Int: String] = [:]
            for i in 0..<120 {
                let note = String(repeating: "空气质量\(i)", count: 1 + (i * 37) % 400)
                notes[i] = note
                csv += "\(i),\(note)\n"
            }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("long-\(UUID().uuidString).csv").path
            FileManager.default.createFile(atPath: path, contents: Data(csv.utf8))
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = try Publisher(catalog: s.catalog).importCSV(path: path, datasetID: "long", manifest: manifest, actor: "t")
            try s.catalog.publish(dataset: "long", tier: .open, actor: "t")
            for query in ["_limit=1", "_limit=7", "_limit=100", "_limit=100&_sort=-k", "_limit=50&k__gte=30"] {
                var url = "/v1/datasets/long/rows?\(query)"
                var seen: [Int] = []
                while true {
                    let r = try await s.get(url)
                    #expect(r.status == 200, "\(query)")
                    for row in rows(r) {
                        let k = try #require(row["k"] as? Int)
                        #expect(row["note"] as? String == notes[k], "\(query) row \(k)")
                        seen.append(k)
                    }
                    guard let next = r.object["next_cursor"] as? String else { break }
                    url = "/v1/datasets/long/rows?\(query)&_cursor=\(next)"
                }
                #expect(Set(seen).count == seen.count && seen.count == (query.contains("k__gte") ? 90 : 120), "\(query)")
            }
        }
    }

    @Test func aBurstBeyondTheLimitGets429WithRetryAfter() async throws {
        try await LiveServer.with(configure: { $0.anonymousRate = 2; $0.anonymousBurst = 5 }) { s in
            var statuses: [Int] = []
            var retry: String?
            for _ in 0..<12 {
                let r = try await s.get("/v1/datasets/air-quality/rows?_limit=1")
                statuses.append(r.status)
                if r.status == 429 { retry = r.headers["retry-after"]; #expect(r.object["status"] as? Int == 429) }
            }
            #expect(statuses.prefix(5).allSatisfy { $0 == 200 })
            #expect(statuses.contains(429))
            #expect(Int(retry ?? "") ?? 0 >= 1)
            // A key has its own bucket.
            let (_, key) = try s.catalog.createKey(role: .developer, name: "k", actor: "t")
            let withKey = try await s.get("/v1/datasets/air-quality/rows?_limit=1", key: key)
            #expect(withKey.status == 200)
        }
    }

    @Test func exportsStreamEveryRowMaskedAndCountAgainstTheQuota() async throws {
        try await LiveServer.with(configure: { $0.anonymousExportsPerDay = 2 }) { s in
            let csv = try await s.get("/v1/datasets/enterprises/export?format=csv")
            #expect(csv.status == 200 && csv.headers["content-type"]?.hasPrefix("text/csv") == true)
            let lines = csv.text.split(separator: "\n")
            #expect(lines.count == 1001)
            #expect(lines[0] == "uscc,company_name,legal_representative,registered_capital,industry,district,established")
            let jsonl = try await s.get("/v1/datasets/enterprises/export?format=jsonl")
            let objects = jsonl.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(objects.count == 1000)
            #expect(Self.leaked(objects).isEmpty)
            let third = try await s.get("/v1/datasets/enterprises/export")
            #expect(third.status == 429)
            let events = try s.catalog.auditEvents().filter { $0.event.action == "export.read" }
            #expect(events.count == 2 && events[0].event.detail["rows"] == .int(1000))
        }
    }

    @Test func everyReadIsAnAuditEventWithFieldsActionsAndRequestID() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/v1/datasets/enterprises/rows?_limit=3&_fields=company_name,legal_representative")
            #expect(r.status == 200)
            let event = try #require(try s.catalog.auditEvents().last?.event)
            #expect(event.action == "rows.read" && event.dataset == "enterprises")
            #expect(event.detail["rows"] == .int(3))
            #expect(event.detail["fields"] == .object(["company_name": "keep", "legal_representative": "mask"]))
            #expect(event.detail["request_id"] == .string(r.headers["x-request-id"] ?? "?"))
        }
    }

    /// Group commit under load: many reads at once are each recorded exactly once, before
    /// their response, in one unbroken chain (the leader/waiter hand-off loses none).
    @Test func concurrentReadsAreEachRecordedOnceInAnIntactChain() async throws {
        try await LiveServer.with { s in
            let before = try s.catalog.auditEvents().count
            let n = 120
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<n {
                    group.addTask {
                        let r = try await s.get("/v1/datasets/air-quality/rows?_limit=\(1 + i % 7)")
                        #expect(r.status == 200)
                        return r.headers["x-request-id"] ?? "?"
                    }
                }
                var all: [String] = []
                for try await id in group { all.append(id) }
                return all
            }
            let events = try s.catalog.auditEvents()
            #expect(events.count == before + n)
            let recorded = events.suffix(n).compactMap { e -> String? in
                if case .string(let id)? = e.event.detail["request_id"] { return id } else { return nil }
            }
            #expect(Set(recorded) == Set(ids) && Set(ids).count == n)
            guard case .intact = try s.catalog.verifyAudit() else { Issue.record("the chain is broken"); return }
        }
    }
}

/// Metadata out: Frictionless, DCAT 3, KPIs.
@Suite(.serialized) struct MetadataAPITests {
    @Test func theDataPackageDescribesTheCallersView() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/v1/datasets/enterprises/datapackage.json")
            #expect(r.status == 200)
            #expect(r.object["profile"] as? String == "tabular-data-package")
            let resource = try #require((r.object["resources"] as? [[String: Any]])?.first)
            #expect((resource["path"] as? String)?.hasSuffix("/v1/datasets/enterprises/export?format=csv") == true)
            let fields = (resource["schema"] as? [String: Any])?["fields"] as? [[String: Any]] ?? []
            #expect(fields.count == 7)
            let rep = fields.first { $0["name"] as? String == "legal_representative" }
            #expect(rep?["type"] as? String == "string" && rep?["kaifang:action"] as? String == "mask")
            let capital = fields.first { $0["name"] as? String == "registered_capital" }
            #expect(capital?["type"] as? String == "number")
            // The resource's path really serves the rows.
            let export = try await s.get("/v1/datasets/enterprises/export?format=csv")
            #expect(export.text.split(separator: "\n").count == 1001)
            let missing = try await s.get("/v1/datasets/nope/datapackage.json")
            #expect(missing.status == 404)
        }
    }

    @Test func theDCATCatalogLinksVersions() async throws {
        try await LiveServer.with { s in
            // A second version of air-quality.
            let m = try #require(try s.catalog.dataset("air-quality")).manifest
            _ = try Publisher(catalog: s.catalog).importCSV(path: LiveServer.repo.appendingPathComponent("datasets/air-quality/air-quality.csv").path,
                                                            datasetID: "air-quality", manifest: m, actor: "t")
            try s.catalog.publish(dataset: "air-quality", tier: .open, actor: "t")
            let r = try await s.get("/v1/catalog.jsonld")
            #expect(r.status == 200 && r.headers["content-type"]?.hasPrefix("application/ld+json") == true)
            #expect(r.object["@type"] as? String == "dcat:Catalog")
            let entries = r.object["dcat:dataset"] as? [[String: Any]] ?? []
            let air = entries.first { $0["dct:identifier"] as? String == "air-quality" }
            #expect(air?["dcat:version"] as? String == "2")
            #expect((air?["dcat:hasVersion"] as? [[String: Any]])?.count == 2)
            let v2 = entries.first { $0["dct:identifier"] as? String == "air-quality@2" }
            let previous = (v2?["dcat:previousVersion"] as? [String: Any])?["@id"] as? String
            #expect(previous?.hasSuffix("/v1/datasets/air-quality/versions/1") == true)
            #expect(entries.filter { $0["dct:identifier"] as? String == "residents" }.count == 1)
        }
    }

    @Test func statsCountTiersTheOpenRateAndReads() async throws {
        try await LiveServer.with { s in
            _ = try await s.get("/v1/datasets/air-quality/rows?_limit=1")
            _ = try await s.get("/v1/datasets/air-quality/rows?_limit=1")
            _ = try await s.get("/v1/datasets/enterprises/rows?_limit=1")
            try s.catalog.withdraw(dataset: "enterprises", actor: "t")
            let r = try await s.get("/v1/stats")
            #expect(r.status == 200)
            #expect(r.object["datasets"] as? Int == 3 && r.object["published"] as? Int == 2)
            #expect(r.object["should_open"] as? Int == 3 && r.object["opened"] as? Int == 2)
            #expect(abs((r.object["open_rate"] as? Double ?? 0) - 2.0 / 3.0) < 1e-9)
            let reads = r.object["reads_30d"] as? [[String: Any]] ?? []
            #expect(reads.first?["value"] as? String == "air-quality" && reads.first?["count"] as? Int == 2)
        }
    }
}

@Suite(.serialized) struct SyntheticAPITests {
    @Test func syntheticRowsAreSchemaFaithfulWithValidCheckDigitsAndNoRealValue() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/v1/datasets/residents/synthetic?rows=200&seed=7")
            #expect(r.status == 200)
            #expect(r.object["synthetic"] as? Bool == true)
            let rows = r.object["rows"] as? [[String: Any]] ?? []
            #expect(rows.count == 200)
            // Real values of the personal fields, from the source file.
            let source = try String(contentsOf: LiveServer.repo.appendingPathComponent("datasets/residents/residents.csv"), encoding: .utf8)
            var realIDs = Set<String>(), realPhones = Set<String>()
            for line in source.split(separator: "\n").dropFirst() {
                let f = line.split(separator: ",", omittingEmptySubsequences: false)
                realIDs.insert(String(f[0])); realPhones.insert(String(f[2]))
            }
            let districts = Set(source.split(separator: "\n").dropFirst().map { String($0.split(separator: ",", omittingEmptySubsequences: false)[6]) })
            for row in rows {
                let id = row["id_number"] as? String ?? ""
                #expect(Detector.isValid(id, as: .resident_id) && Detector.detect(id).type == .resident_id)
                #expect(!realIDs.contains(id))
                let phone = row["phone"] as? String ?? ""
                #expect(Detector.isValid(phone, as: .phone) && !realPhones.contains(phone))
                let amount = row["benefit_amount"] as? Double ?? -1
                #expect(amount >= 0 && amount <= 100_000)
                #expect(districts.contains(row["district"] as? String ?? "?"))   // L1 category: public values
                #expect((row["birth_date"] as? String)?.count == 10)
            }
            let again = try await s.get("/v1/datasets/residents/synthetic?rows=200&seed=7")
            #expect(again.body == r.body)
            let other = try await s.get("/v1/datasets/residents/synthetic?rows=200&seed=8")
            #expect(other.body != r.body)
            let tooMany = try await s.get("/v1/datasets/residents/synthetic?rows=5000")
            #expect(tooMany.status == 400)
            // Found by schemathesis: a negative seed crashed the server.
            let negative = try await s.get("/v1/datasets/residents/synthetic?rows=1&seed=-1")
            #expect(negative.status == 400)
            let alive = try await s.get("/healthz")
            #expect(alive.status == 200)
        }
    }
}

@Suite(.serialized) struct AuditAPITests {
    @Test func stewardsReadTheChainOthersAreRefused() async throws {
        try await LiveServer.with { s in
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "t")
            let (devRecord, dev) = try s.catalog.createKey(role: .developer, name: "d", actor: "t")
            _ = try await s.get("/v1/datasets/air-quality/rows?_limit=1", key: dev)
            let anonymous = try await s.get("/v1/audit")
            let developer = try await s.get("/v1/audit", key: dev)
            #expect(anonymous.status == 401 && developer.status == 403)
            let all = try await s.get("/v1/audit?limit=1000", key: steward)
            #expect(all.status == 200)
            let events = all.object["events"] as? [[String: Any]] ?? []
            let stored = try s.catalog.auditEvents()
            #expect(events.count == stored.count)
            #expect(events.last?["hash"] as? String == stored.last?.hash)
            let mine = try await s.get("/v1/audit?key=\(devRecord.id)", key: steward)
            let reads = (mine.object["events"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(reads == ["rows.read"])
            let byDataset = try await s.get("/v1/audit?dataset=residents&limit=2", key: steward)
            let datasets = Set((byDataset.object["events"] as? [[String: Any]] ?? []).compactMap { $0["dataset"] as? String })
            #expect(datasets == ["residents"])
        }
    }
}
