import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KaifangTestSupport
import PostgresStore
import Testing

/// Three stateless `kaifang serve` replicas over one PostgreSQL store, driven with mixed
/// traffic (rows, exports, applications, sandbox jobs) through all three; one is SIGKILLed while
/// it runs a job and while requests are in flight. Afterwards: no job lost, none run by two
/// workers at once or given two verdicts, the audit chain intact, a revoked license refused by
/// every replica on the next request, and one key's rate limit held across replicas within 5 %.
@Suite(.serialized, .enabled(if: TestPostgres.adminURL != nil, "needs KAIFANG_TEST_POSTGRES (scripts/with-postgres.sh)"))
struct ReplicaTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var kaifang: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [beside, beside.deletingLastPathComponent(), repo.appendingPathComponent(".build/debug")] {
            let c = dir.appendingPathComponent("kaifang")
            if FileManager.default.isExecutableFile(atPath: c.path) { return c }
        }
        return repo.appendingPathComponent(".build/debug/kaifang")
    }

    /// Runs `kaifang args… --store URL` to completion.
    @discardableResult
    static func cli(_ args: [String], store: StoreURL, dataDir: String) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = kaifang
        p.arguments = args + ["--store", store.unredacted, "--data-dir", dataDir]
        p.currentDirectoryURL = repo
        var env = ProcessInfo.processInfo.environment
        env["KAIFANG_STORE"] = nil; env["KAIFANG_DATA_DIR"] = nil
        p.environment = env
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e
        try p.run()
        let out = o.fileHandleForReading.readDataToEndOfFile(), err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    /// One `kaifang serve` replica.
    final class Replica: @unchecked Sendable {
        let process = Process()
        let port: Int
        var pid: Int32 { process.processIdentifier }

        init(store: StoreURL, dataDir: String, keyRate: Int) throws {
            process.executableURL = ReplicaTests.kaifang
            process.arguments = ["serve", "--store", store.unredacted, "--data-dir", dataDir, "--port", "0", "--job-lease", "3",
                                 "--key-rate", String(keyRate), "--anonymous-rate", "0", "--exports-per-day", "0", "--sandbox-workers", "2"]
            process.currentDirectoryURL = ReplicaTests.repo
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            var text = ""
            var found: Int?
            let deadline = Date().addingTimeInterval(30)
            while found == nil && Date() < deadline {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
                if let r = text.range(of: #"http://127\.0\.0\.1:(\d+)/"#, options: .regularExpression) {
                    found = Int(text[r].dropFirst("http://127.0.0.1:".count).dropLast())
                }
            }
            guard let found else { process.terminate(); throw URLError(.cannotConnectToHost) }
            port = found
        }

        func stop() { if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() } }
    }

    /// The first transport error a request met (for the failure message).
    nonisolated(unsafe) static var firstError: String?

    /// One request; the status, or 0 when the replica did not answer.
    static func request(_ port: Int, _ path: String, key: String?, json body: [String: Any]? = nil) async -> (Int, Data) {
        var req = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        req.timeoutInterval = 10
        if let key { req.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        if let body {
            req.httpMethod = "POST"
            req.httpBody = try? JSONSerialization.data(withJSONObject: body)
            req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        do {
            let (data, response) = try await URLSession.shared.data(for: req)
            guard let http = response as? HTTPURLResponse else { return (0, Data()) }
            return (http.statusCode, data)
        } catch {
            if firstError == nil { firstError = "\(port)\(path): \(error)" }
            return (0, Data())
        }
    }

    @Test func threeReplicasShareTheStoreAndSurviveOneKilledMidJob() async throws {
        let url = try TestPostgres.freshURL(prefix: "r")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-replicas-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let admin = root.appendingPathComponent("admin").path
        func cli(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try Self.cli(args, store: url, dataDir: admin) }

        // The catalog: the three sample datasets, keys and licenses.
        #expect(try cli(["init"]).status == 0)
        for ds in ["residents", "enterprises", "air-quality"] {
            let r = try cli(["dataset", "import", "datasets/\(ds)/\(ds).csv", "--id", ds, "--manifest", "datasets/\(ds)/dataset.json"])
            #expect(r.status == 0, "\(r.err)")
        }
        #expect(try cli(["dataset", "publish", "residents", "--tier", "conditional"]).status == 0)
        #expect(try cli(["dataset", "publish", "enterprises", "--tier", "open", "--force", "--reason", "registry is public by law"]).status == 0)
        #expect(try cli(["dataset", "publish", "air-quality", "--tier", "open"]).status == 0)
        func key(_ role: String, _ name: String) throws -> (id: String, secret: String) {
            let o = Self.json(try cli(["key", "create", "--role", role, "--name", name, "--json"]).out)
            return (o["id"] as? String ?? "", o["key"] as? String ?? "")
        }
        let reader = try key("developer", "reader"), limited = try key("developer", "limited"), partner = try key("partner", "partner")
        let applicants = try (0..<3).map { try key("developer", "applicant-\($0)") }
        let rowsLicense = Self.json(try cli(["license", "grant", "--key", reader.id, "--dataset", "residents", "--use", "rows",
                                             "--purpose", "研究低保发放的区县分布 replicas", "--json"]).out)["license"] as? String ?? ""
        #expect(try cli(["license", "grant", "--key", partner.id, "--dataset", "residents", "--use", "sandbox",
                         "--purpose", "研究低保发放的区县分布 replicas"]).status == 0)
        #expect(!rowsLicense.isEmpty && !reader.secret.isEmpty && !partner.secret.isEmpty)

        // Three replicas, each with its own working directory and sandbox workers.
        let keyRate = 30
        let replicas = try (0..<3).map { try Replica(store: url, dataDir: root.appendingPathComponent("replica-\($0)").path, keyRate: keyRate) }
        defer { for r in replicas { r.stop() } }
        let ports = replicas.map(\.port)
        let victim = replicas[1]

        // Mixed traffic through all three while jobs run; the second replica is killed while it
        // runs a job.
        let sql = "SELECT district, COUNT(*) AS n, ROUND(AVG(benefit_amount), 2) AS avg FROM residents GROUP BY district"
        actor Ledger {
            var jobs: [String] = []
            var statuses: [Int: Int] = [:]
            func job(_ id: String) { jobs.append(id) }
            func status(_ s: Int) { statuses[s, default: 0] += 1 }
        }
        let ledger = Ledger()
        let stopTraffic = Date().addingTimeInterval(8)
        let poll = try TestPostgres.Session(url)
        defer { poll.close() }
        var killedAt: Date?
        var killedJobs: [String] = []
        await withTaskGroup(of: Void.self) { group in
            for (i, port) in ports.enumerated() {
                group.addTask {   // rows and exports
                    var n = 0
                    while Date() < stopTraffic || n < 150 {
                        let path = n % 10 == 9 ? "/v1/datasets/air-quality/export?format=csv" : "/v1/datasets/enterprises/rows?_limit=20&_cursor="
                        let (s, _) = await Self.request(port, n % 2 == 0 ? path : "/v1/datasets/residents/rows?_limit=5", key: n % 2 == 0 ? applicants[i].secret : reader.secret)
                        await ledger.status(s)
                        n += 1
                    }
                }
                group.addTask {   // applications and sandbox jobs
                    for j in 0..<6 {
                        let (s, data) = await Self.request(port, "/v1/sandbox/jobs", key: partner.secret, json: ["sql": sql + (j % 2 == 0 ? "" : " ORDER BY n")])
                        if s == 202, let id = Self.json(String(decoding: data, as: UTF8.self))["id"] as? String { await ledger.job(id) }
                        let (a, _) = await Self.request(port, "/v1/applications", key: applicants[i].secret,
                                                        json: ["dataset": "residents", "purpose": "研究低保发放的区县分布 replica \(i)-\(j)", "use": "rows"])
                        await ledger.status(a)
                        try? await Task.sleep(for: .milliseconds(150))
                    }
                }
            }
            // Kill the victim the moment it holds a running job (while jobs are still queued or
            // running; on a loaded machine that can take a while).
            let deadline = Date().addingTimeInterval(40)
            while killedAt == nil && Date() < deadline {
                if let running = try? poll.rows("SELECT id, worker FROM jobs WHERE status IN ('running', 'checking')"),
                   running.contains(where: { ($0["worker"] ?? "").contains(":\(victim.pid):") }) {
                    kill(victim.pid, SIGKILL)
                    killedAt = Date()
                    // Every job the victim held when it died (it runs two workers).
                    let held = (try? poll.rows("SELECT id, worker FROM jobs WHERE status IN ('running', 'checking')")) ?? running
                    killedJobs = held.filter { ($0["worker"] ?? "").contains(":\(victim.pid):") }.compactMap { $0["id"] }
                }
                if killedAt == nil, Date() > stopTraffic,
                   let open = try? poll.rows("SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running', 'checking')"),
                   open.first?["n"] == "0" {
                    break   // every job ended without the victim holding one
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
            await group.waitForAll()
        }
        if killedAt == nil { victim.stop() }   // never hang on a victim that got no job
        victim.process.waitUntilExit()
        #expect(!killedJobs.isEmpty, "the victim never held a running job")
        let submitted = await ledger.jobs
        #expect(submitted.count >= 12)
        let statuses = await ledger.statuses
        #expect((statuses[200] ?? 0) > 100, "\(statuses); first error: \(Self.firstError ?? "none")")
        #expect(statuses[500] == nil, "\(statuses)")

        // Every job ends: the killed one goes back to the queue once its lease runs out and runs
        // again on a live replica.
        var finals: [String: [String: String]] = [:]
        for _ in 0..<300 {
            let rows = try TestPostgres.rows(url, "SELECT id, status, attempts, started_at, worker FROM jobs")
            finals = Dictionary(uniqueKeysWithValues: rows.map { ($0["id"]! , $0) })
            if finals.values.allSatisfy({ !["queued", "running", "checking"].contains($0["status"] ?? "") }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(Set(submitted).isSubset(of: Set(finals.keys)), "a submitted job is missing")
        for (id, j) in finals {
            #expect(["released", "rejected"].contains(j["status"] ?? ""), "job \(id) ended \(j["status"] ?? "?")")
        }
        for killed in killedJobs {
            let rerun = finals[killed] ?? [:]
            #expect(rerun["attempts"] == "2" && rerun["status"] == "released", "a killed job: \(rerun)")
            let rerunWorker = rerun["worker"] ?? ""
            #expect(!rerunWorker.isEmpty && !rerunWorker.contains(":\(victim.pid):"), "re-run by \(rerunWorker); the killed replica was \(victim.pid)")
            // The second run started only after the first worker was gone (never two at once).
            if let started = rerun["started_at"], let killedAt {
                #expect(started > ISO8601DateFormatter().string(from: killedAt.addingTimeInterval(-1)))
            }
        }
        // One verdict per job, one recovery for the killed one.
        let verdicts = try TestPostgres.rows(url, "SELECT detail_json FROM audit_events WHERE action = 'sandbox.verdict'")
        let verdictJobs = verdicts.compactMap { Self.json($0["detail_json"] ?? "")["job"] as? String }
        #expect(verdictJobs.count == Set(verdictJobs).count, "a job got two verdicts")
        #expect(Set(verdictJobs) == Set(finals.keys))
        let recoveries = try TestPostgres.rows(url, "SELECT detail_json FROM audit_events WHERE action = 'sandbox.recover'")
        #expect(recoveries.compactMap { Self.json($0["detail_json"] ?? "")["job"] as? String }.sorted() == killedJobs.sorted())
        let results = try TestPostgres.rows(url, "SELECT job_id FROM job_files WHERE name = 'result.json'")
        #expect(Set(results.compactMap { $0["job_id"] }) == Set(finals.filter { $0.value["status"] == "released" }.keys))

        let live = [replicas[0], replicas[2]]
        // The traffic spent the reader's rate limit: let its bucket fill again (2 × rate in 2 s).
        try await Task.sleep(for: .seconds(2.2))
        // A revoked license is refused by every replica on the next request.
        for r in live {
            let (status, body) = await Self.request(r.port, "/v1/datasets/residents/rows?_limit=1", key: reader.secret)
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self).prefix(300))")
        }
        #expect(try cli(["license", "revoke", rowsLicense]).status == 0)
        for r in live { #expect(await Self.request(r.port, "/v1/datasets/residents/rows?_limit=1", key: reader.secret).0 == 403) }

        // One key's rate limit, held across the two live replicas: a burst of 2×rate, then rate a second.
        // The window is from the first request sent to the last answered.
        actor Count {
            var ok = 0, limited = 0
            var first: Date?, last = Date.distantPast
            func started() { if first == nil { first = Date() } }
            func add(_ s: Int) { if s == 200 { ok += 1 } else if s == 429 { limited += 1 }; last = Date() }
        }
        let count = Count()
        await withTaskGroup(of: Void.self) { group in
            for c in 0..<8 {
                let port = live[c % 2].port
                group.addTask {
                    await count.started()
                    let begin = Date()
                    while Date().timeIntervalSince(begin) < 3 {
                        await count.add(await Self.request(port, "/v1/datasets/air-quality/rows?_limit=1", key: limited.secret).0)
                    }
                }
            }
        }
        let elapsed = await count.last.timeIntervalSince(await count.first ?? Date())
        let admitted = await count.ok, refused = await count.limited
        let expected = Double(keyRate * 2) + Double(keyRate) * elapsed
        print("rate limit across two replicas: \(admitted) admitted, \(refused) refused in \(String(format: "%.2f", elapsed)) s; the limit allows \(String(format: "%.1f", expected))")
        #expect(refused > 0)
        #expect(abs(Double(admitted) - expected) <= 0.05 * expected, "admitted \(admitted), expected \(expected) (± 5 %) over \(elapsed) s")

        // The chain holds every event of every replica in one order.
        let verify = try cli(["audit", "verify"])
        #expect(verify.status == 0 && verify.out.contains("intact"), "\(verify.out) \(verify.err)")
    }
}
