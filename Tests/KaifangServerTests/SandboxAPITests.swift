import Foundation
import KaifangServer
import Sandbox
import Storage
import Testing

/// The sandbox through the open API, against the real server and real child processes.
@Suite struct SandboxAPITests {
    /// The `kaifang` executable `swift build` made: the server runs `kaifang job exec` from it.
    static var kaifang: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [beside, beside.deletingLastPathComponent(), LiveServer.repo.appendingPathComponent(".build/debug")] {
            let c = dir.appendingPathComponent("kaifang")
            if FileManager.default.isExecutableFile(atPath: c.path) { return c }
        }
        return LiveServer.repo.appendingPathComponent(".build/debug/kaifang")
    }

    static func configure(_ c: inout AppConfiguration) { c.sandboxExecutable = kaifang; c.sandboxWorkers = 1 }

    /// Polls a job until it ends.
    func wait(_ s: LiveServer, _ id: String, key: String) async throws -> [String: Any] {
        for _ in 0..<200 {
            let r = try await s.get("/v1/sandbox/jobs/\(id)", key: key)
            if let st = r.object["status"] as? String, !["queued", "running", "checking"].contains(st) { return r.object }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("job \(id) did not end")
        return [:]
    }

    @Test func aPartnerGoesFromApplicationToAReleasedResult() async throws {
        try await LiveServer.with(configure: Self.configure) { s in
            let (partner, key) = try s.catalog.createKey(role: .partner, name: "p", actor: "t")
            let (_, other) = try s.catalog.createKey(role: .partner, name: "o", actor: "t")
            let sql = "SELECT district, COUNT(*) AS n, ROUND(AVG(benefit_amount), 2) AS avg FROM residents GROUP BY district"
            // Without a license the dataset does not exist for the partner.
            let refused = try await s.get("/v1/sandbox/jobs", key: key, json: ["sql": sql])
            #expect(refused.status == 400)
            #expect(refused.headers["content-type"]?.hasPrefix("application/problem+json") == true)
            #expect((refused.object["detail"] as? String)?.contains("sandbox license") == true)
            let anonymous = try await s.get("/v1/sandbox/jobs", json: ["sql": sql])
            #expect(anonymous.status == 401)

            let app = try await s.get("/v1/applications", key: key, json: ["dataset": "residents", "purpose": "研究补贴的区县分布 district study", "use": "sandbox"])
            #expect(app.status == 201)
            _ = try s.catalog.approve(application: Int64(try #require(app.object["id"] as? Int)), actor: "cli:steward")

            let hostile = try await s.get("/v1/sandbox/jobs", key: key, json: ["sql": "SELECT name, COUNT(*) FROM residents GROUP BY name"])
            #expect(hostile.status == 400)
            #expect((hostile.object["detail"] as? String)?.contains("rule-2") == true)
            #expect((hostile.object["detail"] as? String)?.contains("line 1, column 8") == true)

            let submitted = try await s.get("/v1/sandbox/jobs", key: key, json: ["sql": sql, "purpose": "district study"])
            #expect(submitted.status == 202, "\(submitted.text)")
            let id = try #require(submitted.object["id"] as? String)
            let early = try await s.get("/v1/sandbox/jobs/\(id)/result", key: key)
            #expect([200, 409].contains(early.status))
            let done = try await wait(s, id, key: key)
            #expect(done["status"] as? String == "released", "\(done)")
            #expect((done["checks"] as? [String])?.contains("rule-5") == true)
            #expect(try await s.get("/v1/sandbox/jobs/\(id)", key: other).status == 404)

            let result = try await s.get("/v1/sandbox/jobs/\(id)/result", key: key)
            #expect(result.status == 200)
            let rows = try #require(result.object["rows"] as? [[Any]])
            #expect(rows.count == 12)
            let manifest = try #require(result.object["manifest"] as? [String: Any])
            #expect(manifest["output_sha256"] as? String == done["output_sha256"] as? String)
            #expect((manifest["sql_sha256"] as? String)?.count == 64)
            let csv = try await s.get("/v1/sandbox/jobs/\(id)/result?format=csv", key: key)
            #expect(csv.status == 200 && csv.text.hasPrefix("district,n,avg\r\n"))
            #expect(csv.headers["kaifang-output-sha256"] == manifest["output_sha256"] as? String)

            let list = try await s.get("/v1/sandbox/jobs", key: key)
            #expect((list.object["jobs"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            let cancelDone = try await s.get("/v1/sandbox/jobs/\(id)", key: key, method: "DELETE")
            #expect(cancelDone.status == 409)

            // dp: ε is reserved and shown on the license.
            let dp = try await s.get("/v1/sandbox/jobs", key: key, json: ["sql": "SELECT district, COUNT(*) FROM residents GROUP BY district", "mode": "dp", "epsilon": 0.5])
            #expect(dp.status == 202)
            let dpDone = try await wait(s, try #require(dp.object["id"] as? String), key: key)
            #expect(dpDone["status"] as? String == "released")
            let licenses = try await s.get("/v1/licenses", key: key)
            let l = try #require((licenses.object["licenses"] as? [[String: Any]])?.first)
            #expect((l["epsilon_used"] as? [String: Any])?["residents"] as? Double == 0.5)
            #expect((l["epsilon_left"] as? [String: Any])?["residents"] as? Double == 9.5)
            #expect(partner.role == .partner)
        }
    }

    @Test func aQueuedJobCanBeCancelled() async throws {
        try await LiveServer.with(configure: { c in c.sandboxExecutable = Self.kaifang; c.sandboxWorkers = 0 }) { s in
            let (_, key) = try s.catalog.createKey(role: .partner, name: "p", actor: "t")
            let r = try await s.get("/v1/sandbox/jobs", key: key, json: ["sql": "SELECT station, AVG(pm25) FROM air_quality GROUP BY station"])
            #expect(r.status == 202)
            let id = try #require(r.object["id"] as? String)
            let cancelled = try await s.get("/v1/sandbox/jobs/\(id)", key: key, method: "DELETE")
            #expect(cancelled.status == 200 && cancelled.object["status"] as? String == "cancelled")
            let result = try await s.get("/v1/sandbox/jobs/\(id)/result", key: key)
            #expect(result.status == 409)
            let bad = try await s.get("/v1/sandbox/jobs", key: key, json: ["sql": "SELECT 1", "mode": "neither"])
            #expect(bad.status == 400)
        }
    }

    /// A license revoked after submission stops the queued job before it reads anything.
    @Test func revokingALicenseStopsAQueuedJob() async throws {
        try await LiveServer.with(configure: { c in c.sandboxExecutable = Self.kaifang; c.sandboxWorkers = 0 }) { s in
            let (record, key) = try s.catalog.createKey(role: .partner, name: "p", actor: "t")
            let app = try s.catalog.createApplication(keyID: record.id, dataset: "residents", purpose: "撤销测试 revocation test", fields: [], use: .sandbox, durationDays: 30)
            let license = try s.catalog.approve(application: app.id, actor: "cli:steward")
            let r = try await s.get("/v1/sandbox/jobs", key: key, json: ["sql": "SELECT district, COUNT(*) FROM residents GROUP BY district"])
            #expect(r.status == 202)
            let id = try #require(r.object["id"] as? String)
            try s.catalog.revokeLicense(license.id, actor: "cli:steward")
            let jobs = JobService(catalog: s.catalog, executable: Self.kaifang, defaultPolicy: .defaults)
            let done = try #require(try await jobs.run(id))
            #expect(done.status == .rejected)
            #expect(done.detail.rule == "license")
            #expect(try s.catalog.jobFile(job: id, name: "result.json") == nil)
        }
    }
}
