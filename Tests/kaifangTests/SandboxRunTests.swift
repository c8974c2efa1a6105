import Foundation
import GRDB
import KaifangCore
import Storage
import Testing

/// Sandbox jobs run for real: the CLI checks and queues them, a child `kaifang job exec` runs them
/// under limits, and the output rules are applied to real version files of the sample datasets.
@Suite(.serialized) struct SandboxRunTests {
    let scratch = Scratch()
    var dir: String { scratch.dataDir }

    /// A data directory with the three sample datasets published, a partner key `alice` holding a
    /// sandbox license on residents, and an optional policy file.
    func setUp(policy: String? = nil, residentsTier: String = "conditional") throws -> String {
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        for ds in ["residents", "enterprises", "air-quality"] {
            let r = try CLI.run(["dataset", "import", "datasets/\(ds)/\(ds).csv", "--id", ds, "--manifest", "datasets/\(ds)/dataset.json", "--data-dir", dir])
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(try CLI.run(["dataset", "publish", "residents", "--tier", residentsTier, "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "publish", "enterprises", "--tier", "open", "--force", "--reason", "registry is public by law", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "publish", "air-quality", "--tier", "open", "--data-dir", dir]).status == 0)
        let key = try CLI.run(["key", "create", "--role", "partner", "--name", "alice", "--json", "--data-dir", dir])
        let id = try #require((try JSONSerialization.jsonObject(with: Data(key.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let grant = try CLI.run(["license", "grant", "--key", id, "--dataset", "residents", "--use", "sandbox",
                                 "--purpose", "研究救助补贴的区县分布 (research)", "--data-dir", dir])
        #expect(grant.status == 0, "\(grant.stderr)")
        if let policy {
            try FileManager.default.createDirectory(atPath: "\(dir)/sandbox", withIntermediateDirectories: true)
            try Data(policy.utf8).write(to: URL(fileURLWithPath: "\(dir)/sandbox/policy.json"))
        }
        return id
    }

    struct Outcome {
        var status: Int32
        var job: [String: Any]
        var result: [String: Any]?
        var stderr: String
        var detail: [String: Any] { job["detail"] as? [String: Any] ?? [:] }
        var jobStatus: String { job["status"] as? String ?? "" }
        var rows: [[Any]] { result?["rows"] as? [[Any]] ?? [] }
    }

    func submit(_ key: String, _ sql: String, _ extra: [String] = [], env: [String: String] = [:]) throws -> Outcome {
        let r = try CLI.run(["job", "submit", "--key", key, "--sql", sql, "--json", "--data-dir", dir] + extra, env: env)
        let object = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
        return Outcome(status: r.status, job: object["job"] as? [String: Any] ?? [:], result: object["result"] as? [String: Any], stderr: r.stderr)
    }

    @Test func aLegitimateAggregateIsReleasedWithSmallCellsSuppressed() throws {
        let key = try setUp()
        let o = try submit(key, "SELECT district, service_type, gender, COUNT(*) AS n FROM residents GROUP BY district, service_type, gender")
        #expect(o.status == 0, "\(o.stderr)")
        #expect(o.jobStatus == "released")
        #expect((o.detail["rows_suppressed"] as? Int ?? 0) > 0, "the sample data has small cells: some rows must be dropped")
        #expect(!o.rows.isEmpty)
        for row in o.rows { #expect((row[3] as? Int ?? 0) >= 10, "a released cell covers fewer than 10 people: \(row)") }
        // What was dropped is exactly the groups under 10 in the raw data.
        let csv = try String(contentsOfFile: "datasets/residents/residents.csv", encoding: .utf8)
        var counts: [String: Int] = [:]
        for line in csv.split(separator: "\n").dropFirst() {
            let c = line.split(separator: ",", omittingEmptySubsequences: false)
            counts["\(c[6])|\(c[7])|\(c[5])", default: 0] += 1
        }
        #expect(o.rows.count == counts.values.filter { $0 >= 10 }.count)
        #expect(o.detail["rows_suppressed"] as? Int == counts.values.filter { $0 < 10 }.count)
        #expect((o.job["detail"] as? [String: Any])?["output_sha256"] as? String != nil)
    }

    @Test func averageBenefitByAgeBandIsReleased() throws {
        let key = try setUp()
        // `--sql FILE`: a file of SQL.
        let r = try CLI.run(["job", "submit", "--sql", "sandbox/examples/benefit-by-age-band.sql", "--key", key, "--json", "--data-dir", dir])
        let object = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
        let o = Outcome(status: r.status, job: object["job"] as? [String: Any] ?? [:], result: object["result"] as? [String: Any], stderr: r.stderr)
        #expect(o.jobStatus == "released", "\(o.stderr) \(o.detail)")
        for row in o.rows { #expect((row[2] as? Int ?? 0) >= 10) }
        let stats = try CLI.run(["stats", "--json", "--data-dir", dir])
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect((figures["jobs"] as? [String: Int])?["released"] == 1)
        #expect(figures["datasets"] as? Int == 3)
    }

    @Test func aDominatedSumIsBlanked() throws {
        // A tightened policy: a cell is dominated when its top two contributors exceed 2 % of the
        // total, which every small group's sum does.
        let key = try setUp(policy: #"{"dominance_share": 0.02}"#)
        let o = try submit(key, "SELECT district, COUNT(*) AS n, SUM(benefit_amount) AS total FROM residents WHERE service_type = '临时救助' GROUP BY district")
        #expect(o.jobStatus == "released", "\(o.stderr)")
        #expect((o.detail["cells_suppressed"] as? Int ?? 0) > 0)
        #expect(o.rows.contains { $0[2] is NSNull })
    }

    /// Two counts whose row sets differ by a few people: the second is refused (rule 7).
    @Test func aDifferencingAttackIsRefused() throws {
        let key = try setUp()
        // From the raw file: a birth date D such that exactly 1–9 people were born on D.
        let csv = try String(contentsOfFile: "datasets/residents/residents.csv", encoding: .utf8)
        var births: [String: Int] = [:]
        for line in csv.split(separator: "\n").dropFirst() { births[String(line.split(separator: ",")[4]), default: 0] += 1 }
        let sorted = births.keys.sorted()
        let target = try #require(sorted.dropFirst(sorted.count / 2).first { births[$0]! >= 1 && births[$0]! <= 9 })
        let next = sorted[sorted.firstIndex(of: target)! + 1]
        let first = try submit(key, "SELECT COUNT(*) FROM residents WHERE birth_date < '\(target)'")
        #expect(first.jobStatus == "released")
        let second = try submit(key, "SELECT COUNT(*) FROM residents WHERE birth_date < '\(next)'")
        #expect(second.status == 2)
        #expect(second.jobStatus == "rejected")
        #expect(second.detail["rule"] as? String == "rule-7")
        #expect(second.result == nil)
        // A query far from both is answered.
        let third = try submit(key, "SELECT COUNT(*) FROM residents WHERE birth_date < '1960-01-01'")
        #expect(third.jobStatus == "released")
    }

    @Test func dpJobsSpendBudgetUntilItRunsOut() throws {
        let key = try setUp(policy: #"{"monthly_epsilon": 2, "max_epsilon_per_query": 1}"#)
        let sql = "SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS avg_benefit FROM residents GROUP BY district"
        let a = try submit(key, sql, ["--mode", "dp", "--epsilon", "1"])
        #expect(a.jobStatus == "released", "\(a.stderr)")
        #expect((a.detail["epsilon_left"] as? [String: Any])?["residents"] as? Double == 1)
        // Noisy, but near the truth: every district has ~150–190 recipients.
        for row in a.rows { #expect(abs((row[1] as? Int ?? 0) - 167) < 60) }
        let b = try submit(key, sql, ["--mode", "dp", "--epsilon", "1"])
        #expect(b.jobStatus == "released")
        let c = try submit(key, sql, ["--mode", "dp", "--epsilon", "0.5"])
        #expect(c.status == 2)
        #expect(c.stderr.contains("budget"), "\(c.stderr)")
        let tooMuch = try submit(key, sql, ["--mode", "dp", "--epsilon", "1.5"])
        #expect(tooMuch.status == 2 && tooMuch.stderr.contains("per-query"))
    }

    @Test func aRunawayJoinTimesOutAndTheNextJobRuns() throws {
        let key = try setUp(policy: #"{"wall_seconds": 2}"#)
        let start = Date()
        let o = try submit(key, "SELECT COUNT(*) FROM air_quality a, air_quality b, air_quality c, air_quality d")
        #expect(o.status == 1)
        #expect(o.jobStatus == "timed_out", "\(o.detail)")
        #expect(Date().timeIntervalSince(start) < 20)
        let after = try submit(key, "SELECT COUNT(*) AS n FROM air_quality")
        #expect(after.jobStatus == "released")
    }

    @Test func aMemoryBombIsStoppedByTheLimits() throws {
        let key = try setUp(policy: #"{"wall_seconds": 3, "memory_mib": 256}"#)
        let o = try submit(key, "SELECT s, COUNT(*) FROM (SELECT a.observed_at || b.observed_at || c.station AS s FROM air_quality a, air_quality b, air_quality c) t GROUP BY s ORDER BY s LIMIT 3")
        #expect(["timed_out", "failed"].contains(o.jobStatus), "\(o.jobStatus) \(o.detail)")
        let after = try submit(key, "SELECT COUNT(*) AS n FROM air_quality")
        #expect(after.jobStatus == "released")
    }

    @Test func restrictedOutputsWaitForAStewardWhoIsNotTheOwner() throws {
        let key = try setUp(residentsTier: "restricted")
        let o = try submit(key, "SELECT district, COUNT(*) AS n FROM residents GROUP BY district")
        #expect(o.status == 0)
        #expect(o.jobStatus == "pending_review")
        #expect(o.result == nil)
        let id = try #require(o.job["id"] as? String)
        // The key was created as 'alice': a steward acting as alice may not release it.
        let own = try CLI.run(["job", "release", id, "--data-dir", dir], env: ["USER": "alice"])
        #expect(own.status == 2 && own.stderr.contains("owner"))
        let noReason = try CLI.run(["job", "reject", id, "--reason", " ", "--data-dir", dir], env: ["USER": "bob"])
        #expect(noReason.status == 2)
        let released = try CLI.run(["job", "release", id, "--data-dir", dir], env: ["USER": "bob"])
        #expect(released.status == 0, "\(released.stderr)")
        let shown = try CLI.run(["job", "show", id, "--json", "--data-dir", dir])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
        #expect((object["job"] as? [String: Any])?["status"] as? String == "released")
        #expect(((object["result"] as? [String: Any])?["rows"] as? [Any])?.count == 12)
        let audit = try CLI.run(["audit", "tail", "--json", "--data-dir", dir])
        #expect(audit.stdout.contains("sandbox.release") && audit.stdout.contains("sandbox.verdict") && audit.stdout.contains("sandbox.submit"))
        #expect(try CLI.run(["audit", "verify", "--data-dir", dir]).status == 0)
    }

    @Test func aDryRunUsesSyntheticDataAndNoBudget() throws {
        let key = try setUp()
        let o = try submit(key, "SELECT district, COUNT(*) AS n FROM residents GROUP BY district", ["--dry-run"])
        #expect(o.jobStatus == "released")
        #expect(o.job["dry_run"] as? Bool == true)
        let total = o.rows.compactMap { $0[1] as? Int }.reduce(0, +)
        #expect(total == 1000, "a dry run reads 1 000 synthetic rows, not the 2 000 real ones")
        let dp = try submit(key, "SELECT COUNT(*) FROM residents", ["--dry-run", "--mode", "dp", "--epsilon", "1"])
        #expect(dp.jobStatus == "released")
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        #expect(try catalog.epsilonUsed(keyID: key, dataset: "residents", month: JobRecord.month(AuditStamp.now)) == 0)
    }

    @Test func aJobOnADatasetWithoutLicenseOrWithAnExpiredOneIsRefused() throws {
        let key = try setUp()
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        let lic = try #require(try catalog.licenses(keyID: key).first)
        try catalog.writer.write { try $0.execute(sql: "UPDATE licenses SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", arguments: [lic.id]) }
        let o = try submit(key, "SELECT district, COUNT(*) FROM residents GROUP BY district")
        #expect(o.status == 2)
        #expect(o.stderr.contains("not a dataset you hold an active sandbox license for"))
    }

    /// A server killed while a job runs: on restart the job is re-queued or failed, never left running.
    @Test func killingTheRunnerNeverLeavesAJobRunning() async throws {
        let key = try setUp(policy: #"{"wall_seconds": 4}"#)
        let runner = try CLI.start(["job", "submit", "--key", key, "--sql", "SELECT COUNT(*) FROM air_quality a, air_quality b, air_quality c, air_quality d", "--data-dir", dir])
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        var running: String?
        for _ in 0..<200 {
            if let j = try catalog.jobs(status: .running).first { running = j.id; break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let id = try #require(running)
        kill(runner.processIdentifier, SIGKILL)
        runner.waitUntilExit()
        #expect(try catalog.job(id)?.status == .running)
        // The orphaned child notices its runner is gone and stops well before its 4 s limit.
        func childAlive() -> Bool {
            let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return procs.contains { pid in
                guard Int(pid) != nil, let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
                return String(decoding: cmd, as: UTF8.self).contains(id)
            }
        }
        var gone = false
        for _ in 0..<60 {
            if !childAlive() { gone = true; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(gone, "the job's child outlived its runner")
        let server = try CLI.start(["serve", "--port", "0", "--data-dir", dir])
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        var final: JobStatus?
        for _ in 0..<300 {
            if let s = try catalog.job(id)?.status, s.isFinal { final = s; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(final == .timed_out || final == .failed, "\(String(describing: final))")
        let integrity = try await catalog.writer.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
        guard case .intact = try catalog.verifyAudit() else { Issue.record("audit chain broken"); return }
    }
}

import Audit
enum AuditStamp { static var now: String { AuditChain.timestamp() } }
