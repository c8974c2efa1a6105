import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

extension PostgresCatalog {
    func jobRecord(_ r: PGRow) throws -> JobRecord {
        JobRecord(id: try r.string("id"), keyID: try r.string("key_id"), sql: try r.string("sql"), mode: try r.string("mode"),
                  epsilon: try r.optDouble("epsilon"), purpose: try r.string("purpose"),
                  status: JobStatus(rawValue: try r.string("status")) ?? .failed, detail: CatalogRules.decodeDetail(try r.string("detail_json")),
                  createdAt: try r.string("created_at"), startedAt: try r.optString("started_at"), finishedAt: try r.optString("finished_at"),
                  attempts: try r.int("attempts"), dryRun: try r.bool("dry_run"), datasets: CatalogRules.decodeDatasets(try r.string("datasets_json")))
    }

    public func epsilonUsed(keyID: String, dataset: String, month: String) throws -> Double {
        try client.query("SELECT coalesce(sum(epsilon), 0)::float8 AS e FROM epsilon_spend WHERE key_id = \(keyID) AND dataset_id = \(dataset) AND month = \(month)")
            .first?.double("e") ?? 0
    }

    public func insertJob(_ job: JobRecord, spend: [(dataset: String, licenseID: String?, monthly: Double)]) throws {
        try write(signal: false) { tx, chain in
            let month = JobRecord.month(job.createdAt)
            if let eps = job.epsilon, !job.dryRun {
                // One budget check at a time per key: two replicas cannot both spend the last ε.
                try tx.query("SELECT pg_advisory_xact_lock(hashtext(\("epsilon:" + job.keyID)))")
                for s in spend {
                    let used = try tx.query("SELECT coalesce(sum(epsilon), 0)::float8 AS e FROM epsilon_spend WHERE key_id = \(job.keyID) AND dataset_id = \(s.dataset) AND month = \(month)")
                        .first?.double("e") ?? 0
                    if used + eps > s.monthly + 1e-9 {
                        throw CatalogRules.budgetExhausted(dataset: s.dataset, used: used, monthly: s.monthly, asked: eps)
                    }
                }
            }
            try tx.query("""
                INSERT INTO jobs (id, key_id, sql, mode, epsilon, purpose, status, detail_json, created_at, attempts, dry_run, datasets_json)
                VALUES (\(job.id), \(job.keyID), \(job.sql), \(job.mode), \(job.epsilon), \(job.purpose), \(job.status.rawValue),
                        \(CatalogRules.encodeDetail(job.detail)), \(job.createdAt), 0, \(job.dryRun), \(CatalogRules.encodeDatasets(job.datasets)))
                """)
            if let eps = job.epsilon, !job.dryRun {
                for s in spend {
                    try tx.query("INSERT INTO epsilon_spend (job_id, key_id, dataset_id, license_id, month, epsilon) VALUES (\(job.id), \(job.keyID), \(s.dataset), \(s.licenseID), \(month), \(eps))")
                }
            }
            try chain.append(tx, actor: "key:\(job.keyID)", action: "sandbox.submit", dataset: job.datasets.first?.id, detail: CatalogRules.submissionDetail(job))
        }
    }

    public func job(_ id: String) throws -> JobRecord? {
        try client.query("SELECT * FROM jobs WHERE id = \(id)").first.map(jobRecord)
    }

    public func jobs(keyID: String?, status: JobStatus?, limit: Int) throws -> [JobRecord] {
        var conds: [String] = []
        var binds = PostgresBindings()
        if let keyID { binds.append(keyID); conds.append("key_id = $\(binds.count)") }
        if let status { binds.append(status.rawValue); conds.append("status = $\(binds.count)") }
        binds.append(limit)
        let filter = conds.isEmpty ? "" : " WHERE " + conds.joined(separator: " AND ")
        return try client.query(PostgresQuery(unsafeSQL: "SELECT * FROM jobs\(filter) ORDER BY created_at DESC, id DESC LIMIT $\(binds.count)", binds: binds)).map(jobRecord)
    }

    /// Claims with `FOR UPDATE SKIP LOCKED`: concurrent workers on any replica each get a
    /// different job, and none waits for another's claim.
    public func claimJob(_ id: String?, worker: String, lease: Double) throws -> JobRecord? {
        let now = CatalogRules.now()
        let pick: PostgresQuery = id.map { "SELECT id FROM jobs WHERE status = 'queued' AND id = \($0) FOR UPDATE SKIP LOCKED" }
            ?? "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
        return try client.transaction { tx -> JobRecord? in
            guard let target = try tx.query(pick).first?.string("id") else { return nil }
            return try tx.query("""
                UPDATE jobs SET status = 'running', started_at = \(now), attempts = attempts + 1, worker = \(worker),
                    lease_until = clock_timestamp() + make_interval(secs => \(lease))
                WHERE id = \(target) RETURNING *
                """).first.map(jobRecord)
        }
    }

    public func renewLease(job id: String, worker: String, lease: Double) throws -> Bool {
        !(try client.query("""
            UPDATE jobs SET lease_until = clock_timestamp() + make_interval(secs => \(lease))
            WHERE id = \(id) AND worker = \(worker) AND status IN ('running', 'checking') RETURNING id
            """)).isEmpty
    }

    @discardableResult
    public func updateJob(_ id: String, status: JobStatus, detail: JobDetail, from: [JobStatus], worker: String?, actor: String,
                          audit action: String?, auditDetail: [String: JSONValue]) throws -> Bool {
        try write(signal: false) { tx, chain in
            let finished: String? = status.isFinal || status == .pending_review ? CatalogRules.now() : nil
            let fromStatuses = from.map(\.rawValue)
            guard let row = try tx.query("""
                UPDATE jobs SET status = \(status.rawValue), detail_json = \(CatalogRules.encodeDetail(detail)), finished_at = coalesce(\(finished), finished_at)
                WHERE id = \(id) AND status = ANY(\(fromStatuses)::text[]) AND (\(worker)::text IS NULL OR worker = \(worker))
                RETURNING datasets_json
                """).first else { return false }
            if let action {
                var d = auditDetail
                d["job"] = .string(id)
                d["status"] = .string(status.rawValue)
                if let r = detail.rule { d["rule"] = .string(r) }
                let dataset = CatalogRules.decodeDatasets(try row.string("datasets_json")).first?.id
                try chain.append(tx, actor: actor, action: action, dataset: dataset, detail: d)
            }
            return true
        }
    }

    /// Jobs whose lease ran out (their worker stopped or lost the database) go back to the
    /// queue once, or fail; each is taken by one recovering replica (`SKIP LOCKED`).
    public func recoverJobs(maxAttempts: Int) throws -> (requeued: [String], failed: [String]) {
        try write(signal: false) { tx, chain in
            let stuck = try tx.query("""
                SELECT * FROM jobs WHERE status IN ('running', 'checking') AND lease_until < clock_timestamp()
                ORDER BY created_at FOR UPDATE SKIP LOCKED
                """).map(jobRecord)
            var requeued: [String] = [], failed: [String] = []
            for j in stuck {
                if j.attempts < maxAttempts {
                    try tx.query("UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL WHERE id = \(j.id)")
                    requeued.append(j.id)
                } else {
                    var d = j.detail
                    d.reason = CatalogRules.notRetried(attempts: j.attempts)
                    try tx.query("UPDATE jobs SET status = 'failed', detail_json = \(CatalogRules.encodeDetail(d)), finished_at = \(CatalogRules.now()), worker = NULL, lease_until = NULL WHERE id = \(j.id)")
                    failed.append(j.id)
                }
                try chain.append(tx, actor: "kaifang", action: "sandbox.recover", dataset: j.datasets.first?.id,
                                 detail: ["job": .string(j.id), "status": .string(j.attempts < maxAttempts ? "queued" : "failed")])
            }
            return (requeued, failed)
        }
    }

    public func recordRowSet(job: String, keyID: String, dataset: String, units: Int, sha256: String) throws {
        try client.query("""
            INSERT INTO job_rowsets (job_id, key_id, dataset_id, units, set_sha256) VALUES (\(job), \(keyID), \(dataset), \(units), \(sha256))
            ON CONFLICT DO NOTHING
            """)
    }

    public func rowSets(keyID: String, dataset: String, units: Int, slack: Int) throws -> [(job: String, units: Int)] {
        try client.query("SELECT job_id, units FROM job_rowsets WHERE key_id = \(keyID) AND dataset_id = \(dataset) AND units BETWEEN \(units - slack) AND \(units + slack)")
            .map { (try $0.string("job_id"), try $0.int("units")) }
    }

    public func putJobFile(job: String, name: String, data: Data) throws {
        try client.query("""
            INSERT INTO job_files (job_id, name, data) VALUES (\(job), \(name), \(data))
            ON CONFLICT (job_id, name) DO UPDATE SET data = excluded.data
            """)
    }

    public func jobFile(job: String, name: String) throws -> Data? {
        try client.query("SELECT data FROM job_files WHERE job_id = \(job) AND name = \(name)").first?.data("data")
    }
}
