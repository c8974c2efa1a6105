import Foundation
import Audit
import KaifangCore
@testable import PostgresStore
import Storage
import Testing
import VersionFormat

/// What only the shared store does: version files fetched into a verified local cache, a
/// shared folder for them, and clear failures when PostgreSQL cannot be reached.
@Suite(.enabled(if: StoreKind.adminURL != nil, "needs KAIFANG_TEST_POSTGRES (scripts/with-postgres.sh)"))
struct SharedStoreTests {
    /// A replica that never saw the import fetches the file, checks its hash, and serves it;
    /// a cached copy damaged on disk is detected before it is opened, and fetched again.
    @Test func aDamagedCachedVersionFileIsFetchedAgain() throws {
        let f = try StoreFixture(.postgres)
        let v = try f.importVersion(StoreFixture.manifest("people"), rows: 500)
        let replica = try #require(try f.another() as? PostgresCatalog)
        let path = try replica.localFile(v)
        #expect(path.hasPrefix(replica.directory.root.path))
        #expect(try VersionReader(path: path).rowCount() == 500)
        // Damage the cached copy: a new process (a fresh cache index over the same folder) must not serve it.
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var bad = good
        bad[bad.count / 2] ^= 0xFF
        try bad.write(to: URL(fileURLWithPath: path))
        let restarted = try PostgresCatalog(url: try #require(f.url), directory: replica.directory)
        defer { restarted.close() }
        let again = try restarted.localFile(v)
        #expect(try Data(contentsOf: URL(fileURLWithPath: again)) == good)
        #expect(try VersionReader(path: again).rowCount() == 500)
    }

    /// A copy in the store that does not match its hash is never served.
    @Test func aStoredFileThatDoesNotMatchItsHashIsRefused() throws {
        let f = try StoreFixture(.postgres)
        let v = try f.importVersion(StoreFixture.manifest("people"), rows: 50)
        let pg = try #require(f.store as? PostgresCatalog)
        let sha = String(v.file.dropFirst(5))
        try pg.client.query("UPDATE blob_chunks SET data = decode('00', 'hex') WHERE sha256 = \(sha) AND n = 0")
        let replica = try #require(try f.another() as? PostgresCatalog)
        #expect { try replica.localFile(v) } throws: { ($0 as? KaifangError)?.message.contains("does not match its hash") == true }
        #expect(!FileManager.default.fileExists(atPath: replica.cache.path(sha)))
    }

    /// With `--blobs DIR`, files go to the shared folder (none in the database) and replicas
    /// read them from there; the same bytes imported twice are kept once.
    @Test func versionFilesCanLiveInASharedFolder() throws {
        let f = try StoreFixture(.postgres)
        let folder = f.dir.appendingPathComponent("shared-blobs")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let writer = try PostgresCatalog(url: try #require(f.url), directory: DataDirectory(path: f.dir.appendingPathComponent("w").path), blobsDirectory: folder.path)
        defer { writer.close() }
        let v = try f.importVersion(StoreFixture.manifest("people"), rows: 20, into: writer)
        let sha = String(v.file.dropFirst(5))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(sha).sqlite").path))
        #expect(try writer.client.query("SELECT count(*) AS n FROM blob_chunks").first?.int("n") == 0)
        let reader = try PostgresCatalog(url: try #require(f.url), directory: DataDirectory(path: f.dir.appendingPathComponent("r").path), blobsDirectory: folder.path)
        defer { reader.close() }
        #expect(try VersionReader(path: try reader.localFile(v)).rowCount() == 20)
    }

    /// The cache stays within its bound, evicting the least recently used file.
    @Test func theCacheEvictsTheLeastRecentlyUsedFile() throws {
        let f = try StoreFixture(.postgres)
        let versions = try (0..<3).map { try f.importVersion(StoreFixture.manifest("d\($0)"), rows: 2000) }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: try f.store.localFile(versions[0]))[.size] as? Int64)
        let replica = try PostgresCatalog(url: try #require(f.url), directory: DataDirectory(path: f.dir.appendingPathComponent("small").path), cacheBytes: size * 2 + size / 2)
        defer { replica.close() }
        let a = try replica.localFile(versions[0])
        _ = try replica.localFile(versions[1])
        _ = try replica.localFile(versions[0])          // used again: now the most recent
        _ = try replica.localFile(versions[2])          // over the bound: versions[1] goes
        #expect(FileManager.default.fileExists(atPath: a))
        #expect(!FileManager.default.fileExists(atPath: replica.cache.path(String(versions[1].file.dropFirst(5)))))
        #expect(try VersionReader(path: try replica.localFile(versions[1])).rowCount() == 2000)
    }

    @Test func aWrongPasswordOrAnUnreachableServerIsOneClearLineQuickly() throws {
        var wrong = try StoreURL(try #require(StoreKind.adminURL))
        wrong.password = "not-the-password"
        let started = Date()
        #expect { try PostgresCatalog(url: wrong, directory: DataDirectory(path: NSTemporaryDirectory() + "/kf-\(UUID().uuidString)")) } throws: { e in
            let m = (e as? KaifangError)?.message ?? ""
            return m.contains("password authentication failed") && !m.contains("not-the-password") && !m.contains("\n")
        }
        var closed = wrong
        closed.port = 1
        #expect { try PostgresCatalog(url: closed, directory: DataDirectory(path: NSTemporaryDirectory() + "/kf-\(UUID().uuidString)")) } throws: { e in
            let m = (e as? KaifangError)?.message ?? ""
            return m.hasPrefix("cannot connect to the store postgres://") && !m.contains("\n")
        }
        #expect(Date().timeIntervalSince(started) < 15)
    }

    /// An embedded data directory moves into an empty shared store whole: the same records,
    /// secret (so the same pseudonyms), job files and version files, and the same chain, event
    /// for event; a second copy into the same store is refused, as is a source whose chain is broken.
    @Test func anEmbeddedDataDirectoryCopiesIntoAnEmptySharedStore() throws {
        let source = try StoreFixture(.embedded)
        let s = source.store
        var people = StoreFixture.manifest("people")
        people.spatial = ["320102", "320213"]
        try source.importVersion(people, rows: 30)
        try s.publish(dataset: "people", tier: .conditional, actor: "cli:test")
        let (key, secret) = try s.createKey(role: .partner, name: "伙伴", actor: "cli:test")
        let app = try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况的统计分析", fields: ["name"], use: .rows, durationDays: 30)
        let license = try s.approve(application: app.id, actor: "cli:steward")
        try s.insertJob(JobRecord(id: "job_copy", keyID: key.id, sql: "SELECT 1", mode: "aggregate", epsilon: nil, purpose: "", status: .queued,
                                  detail: JobDetail(), createdAt: CatalogRules.now(), startedAt: nil, finishedAt: nil, attempts: 0, dryRun: false,
                                  datasets: []), spend: [])
        try s.putJobFile(job: "job_copy", name: "result.json", data: Data("{\"rows\":[[1]]}".utf8))
        try s.audit(batch: [PendingAuditEvent(actor: "anonymous", action: "rows.read", dataset: "people", detail: ["rows": .int(3)])])
        try s.putTier(AccountTier(name: "research", rate: 7, burst: 14, exportsPerDay: 9, maxKeys: 3), actor: "cli:steward")
        let (account, member, memberSecret) = try s.createAccount(email: "dev@example.org", name: "开发者", organisation: "", tier: "research", keyName: "app", actor: "t")
        try s.setSuspended(account: account.id, reason: "复制测试 copy", actor: "cli:steward")
        try s.addUsage([UsageEntry(day: "2026-12-01", keyID: member.id, dataset: "people", requests: 3, rows: 30, bytes: 300, exports: 1)], pruneBefore: nil)
        try s.recordVersionChanges("people", 1, json: #"{"added":0}"#)
        #expect(try s.recordScorecards(month: "2026-11", figures: [("省民政厅", #"{"datasets":1}"#)], actor: "scorecards") == 1)
        // A department under another (listed before its parent by name), its publisher, and an upload.
        try s.createDepartment(name: "A县民政局", parent: nil, actor: "t")
        try s.createDepartment(name: "B市民政局", parent: nil, actor: "t")
        _ = try s.createDepartment(name: "A县分局", parent: "B市民政局", actor: "t")
        let (publisher, publisherSecret) = try s.createKey(role: .publisher, name: "发布员", account: nil, department: "B市民政局", actor: "t")
        let upload = UploadKey(keyID: publisher.id, idempotencyKey: "copy-1")
        let path = s.directory.temporaryFile(suffix: ".sqlite")
        let w = try VersionWriter(path: path, manifest: people)
        try w.append([.text("张"), .integer(1), .real(1)])
        let uploaded = try s.commitVersion(manifest: people, temporaryFile: path, rowCount: 1, sha256: try w.finish(), source: "upload.csv", actor: "key:\(publisher.id)",
                                           rejected: 0, upload: upload)
        let proposal = try s.createProposal(NewProposal(dataset: "people", version: 1, tier: .open, overrideReason: "复制测试 copy", needsSecurity: true,
                                                        proposerKey: publisher.id), actor: "t")
        _ = try s.approveProposal(proposal.id, part: .reviewer, keyID: "rev", actor: "t", publishDetail: [:])
        let duty = try s.createDuty(department: "B市民政局", dataset: "people", kind: .share, title: "复制测试", due: "2027-01-31", actor: "t")
        let request = try s.createRequest(NewDataRequest(title: "复制测试", items: ["age", "无"], purpose: "p", department: "B市民政局", due: "2027-01-29",
                                                         filerKey: key.id), actor: "t")
        _ = try s.voteRequest(request.id, keyID: key.id, actor: "t")
        _ = try s.commentRequest(request.id, keyID: key.id, role: .developer, fromDepartment: false, text: "评论", actor: "t")
        let errorReport = try s.createReport(NewErrorReport(dataset: "people", field: nil, version: nil, row: nil, text: "复制测试", due: "2027-01-29", filerKey: key.id), actor: "t")
        _ = try s.rate(dataset: "people", keyID: key.id, stars: 3, comment: "一般", actor: "t")
        let showcase = try s.createShowcase(NewShowcase(title: "复制测试", description: "d", url: nil, datasets: ["people"], licenses: [], filerKey: key.id), actor: "t")

        let target = try StoreFixture(.postgres)
        let pg = try #require(target.store as? PostgresCatalog)
        let report = try StoreCopy.copy(from: try #require(s as? CatalogDatabase), to: pg)
        #expect(report.datasets == 1 && report.versions == 2 && report.accounts == 1 && report.keys == 3 && report.licenses == 1 && report.jobs == 1)
        #expect(try pg.departments() == (try s.departments()))
        #expect(try pg.departments().first { $0.name == "A县分局" }?.parent == "B市民政局")
        #expect(try pg.authenticate(publisherSecret)?.department == "B市民政局")
        #expect(try pg.uploadedVersion(upload)?.number == uploaded.number)
        #expect(try pg.proposal(proposal.id) == (try s.proposal(proposal.id)))
        #expect(try pg.proposal(proposal.id)?.awaiting == [.security])
        #expect(try pg.duties(department: nil) == (try s.duties(department: nil)))
        #expect(try pg.dataRequests(department: nil, status: nil) == (try s.dataRequests(department: nil, status: nil)))
        #expect(try pg.requestComments(request.id) == (try s.requestComments(request.id)) && (try pg.dataRequest(request.id))?.votes == 1)
        #expect(try pg.errorReports(dataset: nil, department: nil) == (try s.errorReports(dataset: nil, department: nil)) && (try pg.errorReport(errorReport.id)) == errorReport)
        #expect(try pg.ratings(dataset: nil) == (try s.ratings(dataset: nil)))
        #expect(try pg.showcases(status: nil) == (try s.showcases(status: nil)) && (try pg.showcase(showcase.id))?.datasets == ["people"])
        // Accounts with their tier (its limits as the source had them), suspension and usage.
        let copied = try #require(try pg.authenticate(memberSecret))
        #expect(copied.accountID == account.id && copied.suspension == "复制测试 copy" && copied.limits == KeyLimits(rate: 7, burst: 14, exportsPerDay: 9))
        #expect(try pg.account(account.id) == (try s.account(account.id)))
        #expect(try pg.versionChanges("people", 1) == #"{"added":0}"#)
        #expect(try pg.search(DatasetQuery(city: "320200")).datasets.map(\.record.id) == ["people"])
        #expect(try pg.scorecards(month: nil) == (try s.scorecards(month: nil)) && (try pg.scorecards(month: "2026-11")).count == 1)
        #expect(try pg.search(DatasetQuery()).counties == (try s.search(DatasetQuery()).counties))
        #expect(try pg.usage(keys: [member.id], dataset: nil, from: "2026-12-01", to: "2026-12-01") == (try s.usage(keys: [member.id], dataset: nil, from: "2026-12-01", to: "2026-12-01")))
        #expect(try pg.auditEvents().map(\.hash) == (try s.auditEvents().map(\.hash)))
        #expect(try pg.pseudonymSecret() == (try s.pseudonymSecret()))
        #expect(try pg.authenticate(secret)?.id == key.id)
        #expect(try pg.license(license.id) == license)
        #expect(try pg.application(app.id)?.licenseID == license.id)
        #expect(try pg.jobFile(job: "job_copy", name: "result.json") == Data("{\"rows\":[[1]]}".utf8))
        #expect(try pg.stats(since: "2000-01-01").reads == [FacetCount(value: "people", count: 1)])
        let (_, v) = try #require(try pg.publishedVersion("people"))
        #expect(try VersionReader(path: try pg.localFile(v)).rowCount() == 30)
        // New applications are numbered after the copied ones.
        let next = try pg.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况的统计分析", fields: [], use: .rows, durationDays: 30)
        #expect(next.id == app.id + 1)
        // So are new duties.
        #expect(try pg.createDuty(department: "B市民政局", dataset: "next", kind: .open, title: "t", due: "2027-01-31", actor: "t").id == duty.id + 1)
        #expect(try pg.createRequest(NewDataRequest(title: "t", items: ["a"], purpose: "p", department: "B市民政局", due: "2027-01-29", filerKey: "k"),
                                     actor: "t").id == request.id + 1)
        #expect(try pg.commentRequest(request.id, keyID: "k", role: .developer, fromDepartment: false, text: "t", actor: "t").id > 1)
        #expect(try pg.createReport(NewErrorReport(dataset: "people", field: nil, version: nil, row: nil, text: "t", due: "2027-01-29", filerKey: "k"), actor: "t").id == errorReport.id + 1)
        #expect { try StoreCopy.copy(from: try #require(s as? CatalogDatabase), to: pg) } throws: { ($0 as? KaifangError)?.message.contains("not empty") == true }
    }

    /// Batches a replica sends back to back are chained after one another and reach the store
    /// in that order, so each goes in one statement without locking; with a second replica
    /// appending at the same time, guesses miss and take the locked path, and the chain still
    /// holds every event once, in one order.
    @Test func batchesInFlightAreChainedInOrder() async throws {
        guard StoreKind.available.contains(.postgres) else { return }
        let f = try StoreFixture(.postgres)
        let pg = try #require(f.store as? PostgresCatalog)
        func batch(_ replica: String, _ i: Int) -> [PendingAuditEvent] {
            (0..<5).map { PendingAuditEvent(actor: "key_\(replica)", action: "rows.read", dataset: "people", detail: ["batch": .int(Int64(i)), "n": .int(Int64($0))]) }
        }
        _ = try await pg.appendBatchAsync(batch("a", -1))   // learns the head
        try await withThrowingTaskGroup(of: Int64.self) { group in
            for i in 0..<40 { group.addTask { try await pg.appendBatchAsync(batch("a", i)) } }
            try await group.waitForAll()
        }
        let alone = pg.appendPaths.withLock { $0 }
        #expect(alone.locked == 1 && alone.guessed == 40, "one replica alone: \(alone)")

        let other = try #require(try f.another() as? PostgresCatalog)
        try await withThrowingTaskGroup(of: Int64.self) { group in
            for i in 0..<40 {
                group.addTask { try await pg.appendBatchAsync(batch("a", 100 + i)) }
                group.addTask { try await other.appendBatchAsync(batch("b", i)) }
            }
            try await group.waitForAll()
        }
        let events = try pg.auditEvents()
        guard case .intact = try pg.verifyAudit(anchors: []) else { Issue.record("chain broken"); return }
        let keys = events.compactMap { e -> String? in
            guard case .int(let b)? = e.event.detail["batch"], case .int(let n)? = e.event.detail["n"] else { return nil }
            return "\(e.event.actor)/\(b)/\(n)"
        }
        let expected = (1 + 40 + 40 + 40) * 5
        #expect(keys.count == expected)
        #expect(Set(keys).count == keys.count)
        // Each batch's events stay together and in order.
        let runs = events.indices.filter { events[$0].event.detail["n"] == .int(0) }
        #expect(runs.count == expected / 5)
        for i in runs {
            let run = events[i..<min(i + 5, events.count)]
            let ns: [JSONValue?] = run.map { $0.event.detail["n"] }
            let counting: [JSONValue?] = (0..<5).map { .int(Int64($0)) }
            #expect(ns == counting)
            #expect(Set(run.map { "\($0.event.actor) \(String(describing: $0.event.detail["batch"]))" }).count == 1)
        }
    }

    /// Replicas claiming webhook deliveries at once each get different ones (`SKIP LOCKED`), and
    /// together all of them.
    @Test func replicasClaimEachDeliveryOnce() throws {
        guard StoreKind.available.contains(.postgres) else { return }
        let f = try StoreFixture(.postgres)
        try f.importVersion(StoreFixture.manifest("people"), rows: 1)
        for i in 0..<8 {
            let (k, _) = try f.store.createKey(role: .developer, name: "k\(i)", account: nil, actor: "t")
            for j in 0..<5 { _ = try f.store.createWebhook(keyID: k.id, url: "https://example.org/\(i)/\(j)", dataset: nil, actor: "t") }
        }
        for _ in 0..<5 { try f.store.publish(dataset: "people", version: nil, tier: .open, actor: "t", reason: nil, detail: [:]) }
        let stores = [f.store] + (try (0..<3).map { _ in try f.another() })
        let longAgo = AuditChain.timestamp(Date().addingTimeInterval(-86_400))
        // One thread per replica (not the concurrency pool, which may be one thread wide), each
        // claiming until nothing is left.
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var claimed: [[Int64]]
            var failures: [String] = []
            init(_ n: Int) { claimed = Array(repeating: [], count: n) }
        }
        let results = Results(stores.count)
        let done = DispatchGroup()
        for (n, s) in stores.enumerated() {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                do {
                    while true {
                        let got = try s.claimDeliveries(limit: 7, lease: 600, giveUpBefore: longAgo)
                        if got.isEmpty { return }
                        results.lock.withLock { results.claimed[n] += got.map(\.delivery.id) }
                    }
                } catch {
                    results.lock.withLock { results.failures.append("\(error)") }
                }
            }
            thread.start()
        }
        done.wait()
        #expect(results.failures.isEmpty, "\(results.failures)")
        let claimed = results.claimed
        let ids = claimed.flatMap { $0 }
        #expect(ids.count == 8 * 5 * 5 && Set(ids).count == ids.count, "each of the 200 deliveries claimed once")
        #expect(claimed.filter { !$0.isEmpty }.count > 1, "the claims were shared among the replicas: \(claimed.map(\.count))")
    }

    /// A migration splits into statements at the `;` ending a line, except inside a `$$` body.
    @Test func migrationsSplitOutsideDollarQuotedBodies() {
        let sql = """
            -- a comment;
            CREATE TABLE t (a INTEGER);
            CREATE FUNCTION f() RETURNS INTEGER LANGUAGE plpgsql AS $$
            BEGIN
                RETURN 1;
            END
            $$;
            INSERT INTO t VALUES (1);
            """
        let parts = PGMigrations.statements(sql).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(parts.count == 3)
        #expect(parts[1].hasPrefix("CREATE FUNCTION") && parts[1].hasSuffix("$$;") && parts[1].contains("RETURN 1;"))
        #expect(parts[2] == "INSERT INTO t VALUES (1);")
    }

    @Test func storeURLsAreCheckedByPart() {
        #expect { try StoreURL("mysql://a@b/c") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try StoreURL("postgres://a@b/") } throws: { ($0 as? KaifangError)?.message.contains("no database") == true }
        #expect { try StoreURL("postgres://h/db") } throws: { ($0 as? KaifangError)?.message.contains("no user") == true }
        #expect { try StoreURL("postgres://a@h/db?sslmode=require") } throws: { ($0 as? KaifangError)?.message.contains("sslmode") == true }
        #expect { try StoreURL("postgres://a@h/db?schema=x;drop") } throws: { ($0 as? KaifangError)?.message.contains("schema") == true }
        let u = try? StoreURL("postgresql://kai%40fang:p%2Fw@db.internal:6432/kaifang?schema=prod")
        #expect(u?.user == "kai@fang" && u?.password == "p/w" && u?.port == 6432 && u?.schema == "prod")
        #expect(u?.redacted == "postgres://kai@fang@db.internal:6432/kaifang?schema=prod")
    }
}
