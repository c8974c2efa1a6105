import Audit
import Foundation
import GRDB
import KaifangCore

/// The statuses of a sandbox job (docs/sandbox-guide.md).
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case queued, running, checking, released, pending_review, rejected, failed, cancelled, timed_out

    /// Whether the job is over (nothing more will happen to it but a steward's decision on `pending_review`).
    public var isFinal: Bool { ![.queued, .running, .checking, .pending_review].contains(self) }
}

/// A dataset version a job reads.
public struct JobDataset: Sendable, Codable, Equatable {
    public var id: String
    public var version: Int
    public var tier: Tier
    public init(id: String, version: Int, tier: Tier) { self.id = id; self.version = version; self.tier = tier }
}

/// What the catalog keeps about a job besides its columns: checks, figures, verdict.
public struct JobDetail: Sendable, Codable, Equatable {
    /// Rules the checker and the runner applied.
    public var rules: [String] = []
    /// Why the job ended as it did (refusal, failure, rejection), never a data value.
    public var reason: String?
    /// The rule a rejection broke.
    public var rule: String?
    public var outputRows: Int?
    /// Rule 5: rows dropped for covering fewer than the minimum units.
    public var rowsSuppressed: Int?
    /// Rule 6: cells blanked by the dominance rule.
    public var cellsSuppressed: Int?
    /// DP: groups dropped below the censoring threshold.
    public var groupsCensored: Int?
    public var epsilonLeft: [String: Double]?
    public var sqlSHA256: String?
    public var outputSHA256: String?
    public var reviewer: String?
    public var notes: [String] = []
    public var runSeconds: Double?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case rules, reason, rule, notes, reviewer
        case outputRows = "output_rows", rowsSuppressed = "rows_suppressed", cellsSuppressed = "cells_suppressed"
        case groupsCensored = "groups_censored", epsilonLeft = "epsilon_left", sqlSHA256 = "sql_sha256"
        case outputSHA256 = "output_sha256", runSeconds = "run_seconds"
    }
}

/// A sandbox job as the catalog holds it.
public struct JobRecord: Sendable, Equatable {
    public var id: String
    public var keyID: String
    public var sql: String
    public var mode: String
    public var epsilon: Double?
    public var purpose: String
    public var status: JobStatus
    public var detail: JobDetail
    public var createdAt: String
    public var startedAt: String?
    public var finishedAt: String?
    public var attempts: Int
    public var dryRun: Bool
    public var datasets: [JobDataset]

    public init(id: String, keyID: String, sql: String, mode: String, epsilon: Double?, purpose: String, status: JobStatus,
                detail: JobDetail, createdAt: String, startedAt: String?, finishedAt: String?, attempts: Int, dryRun: Bool,
                datasets: [JobDataset]) {
        self.id = id; self.keyID = keyID; self.sql = sql; self.mode = mode; self.epsilon = epsilon; self.purpose = purpose
        self.status = status; self.detail = detail; self.createdAt = createdAt; self.startedAt = startedAt
        self.finishedAt = finishedAt; self.attempts = attempts; self.dryRun = dryRun; self.datasets = datasets
    }
}

extension JobRecord {
    /// The calendar month (UTC) a time falls in, as `YYYY-MM` (ε budgets are monthly).
    public static func month(_ iso: String) -> String { String(iso.prefix(7)) }
}

extension CatalogDatabase {
    static func encodeDetail(_ d: JobDetail) -> String { CatalogRules.encodeDetail(d) }

    static func jobRecord(_ row: Row) -> JobRecord {
        let detail = CatalogRules.decodeDetail(row["detail_json"])
        let datasets = CatalogRules.decodeDatasets(row["datasets_json"])
        return JobRecord(id: row["id"], keyID: row["key_id"], sql: row["sql"], mode: row["mode"], epsilon: row["epsilon"],
                         purpose: row["purpose"], status: JobStatus(rawValue: row["status"]) ?? .failed, detail: detail,
                         createdAt: row["created_at"], startedAt: row["started_at"], finishedAt: row["finished_at"],
                         attempts: row["attempts"], dryRun: (row["dry_run"] as Int) != 0, datasets: datasets)
    }


    /// ε spent by a key on a dataset in a month.
    public func epsilonUsed(keyID: String, dataset: String, month: String) throws -> Double {
        try read { db in
            try Double.fetchOne(db, sql: "SELECT TOTAL(epsilon) FROM epsilon_spend WHERE key_id = ? AND dataset_id = ? AND month = ?",
                                arguments: [keyID, dataset, month]) ?? 0
        }
    }

    /// Records a queued job, reserving its ε on each personal dataset first (refused, with nothing
    /// written, when a month's budget would be exceeded), and audits the submission — one transaction.
    /// - Throws: `KaifangError.forbidden` when the budget is exhausted.
    public func insertJob(_ job: JobRecord, spend: [(dataset: String, licenseID: String?, monthly: Double)]) throws {
        try write { db in
            let month = JobRecord.month(job.createdAt)
            if let eps = job.epsilon, !job.dryRun {
                for s in spend {
                    let used = try Double.fetchOne(db, sql: "SELECT TOTAL(epsilon) FROM epsilon_spend WHERE key_id = ? AND dataset_id = ? AND month = ?",
                                                   arguments: [job.keyID, s.dataset, month]) ?? 0
                    if used + eps > s.monthly + 1e-9 {
                        throw CatalogRules.budgetExhausted(dataset: s.dataset, used: used, monthly: s.monthly, asked: eps)
                    }
                }
            }
            let datasets = CatalogRules.encodeDatasets(job.datasets)
            try db.execute(sql: """
                INSERT INTO jobs (id, key_id, sql, mode, epsilon, purpose, status, detail_json, created_at, attempts, dry_run, datasets_json)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, arguments: [job.id, job.keyID, job.sql, job.mode, job.epsilon, job.purpose, job.status.rawValue,
                                 Self.encodeDetail(job.detail), job.createdAt, job.dryRun ? 1 : 0, datasets])
            if let eps = job.epsilon, !job.dryRun {
                for s in spend {
                    try db.execute(sql: "INSERT INTO epsilon_spend (job_id, key_id, dataset_id, license_id, month, epsilon) VALUES (?, ?, ?, ?, ?, ?)",
                                   arguments: [job.id, job.keyID, s.dataset, s.licenseID, month, eps])
                }
            }
            try Self.appendAudit(db, actor: "key:\(job.keyID)", action: "sandbox.submit", dataset: job.datasets.first?.id, detail: CatalogRules.submissionDetail(job))
        }
    }


    public func job(_ id: String) throws -> JobRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Self.jobRecord) }
    }

    /// Jobs, newest first, of one key or all.
    public func jobs(keyID: String? = nil, status: JobStatus? = nil, limit: Int = 100) throws -> [JobRecord] {
        try read { db in
            var sql = "SELECT * FROM jobs WHERE 1 = 1"
            var args: [any DatabaseValueConvertible] = []
            if let keyID { sql += " AND key_id = ?"; args.append(keyID) }
            if let status { sql += " AND status = ?"; args.append(status.rawValue) }
            sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
            args.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(Self.jobRecord)
        }
    }

    /// Moves a queued job — `id`, or the oldest — to running for `worker` (one worker wins, in
    /// the write transaction); returns it, or nil when there is none or another took it.
    public func claimJob(_ id: String?, worker: String, lease: Double) throws -> JobRecord? {
        try write(signal: false) { db in
            let target: String?
            if let id {
                target = id
            } else {
                target = try String.fetchOne(db, sql: "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1")
            }
            guard let target else { return nil }
            let now = Date()
            try db.execute(sql: "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1, worker = ?, lease_until = ? WHERE id = ? AND status = 'queued'",
                           arguments: [AuditChain.timestamp(now), worker, AuditChain.timestamp(now.addingTimeInterval(lease)), target])
            guard db.changesCount == 1 else { return nil }
            return try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [target]).map(Self.jobRecord)
        }
    }

    /// Renews the lease of a job `worker` runs.
    public func renewLease(job id: String, worker: String, lease: Double) throws -> Bool {
        try write(signal: false) { db in
            try db.execute(sql: "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND status IN ('running', 'checking')",
                           arguments: [AuditChain.timestamp(Date().addingTimeInterval(lease)), id, worker])
            return db.changesCount == 1
        }
    }

    /// A job's file in the data directory's `jobs/<id>/` folder.
    public func putJobFile(job: String, name: String, data: Data) throws {
        let dir = directory.jobsDir.appendingPathComponent(job, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try data.write(to: dir.appendingPathComponent(name), options: .atomic)
        } catch {
            throw KaifangError.runtime("cannot write \(name) of job \(job) under \(dir.path)", cause: error)
        }
    }

    public func jobFile(job: String, name: String) throws -> Data? {
        FileManager.default.contents(atPath: directory.jobsDir.appendingPathComponent(job, isDirectory: true).appendingPathComponent(name).path)
    }

    /// Sets a job's status and detail; when `audit` is given the event is written in the same transaction.
    /// `from` guards the transition (the update happens only if the job is in one of those statuses).
    @discardableResult
    public func updateJob(_ id: String, status: JobStatus, detail: JobDetail, from: [JobStatus], worker: String? = nil, actor: String,
                          audit action: String? = nil, auditDetail: [String: JSONValue] = [:]) throws -> Bool {
        try write { db in
            let finished: String? = status.isFinal || status == .pending_review ? Self.now() : nil
            try db.execute(sql: """
                UPDATE jobs SET status = ?, detail_json = ?, finished_at = COALESCE(?, finished_at)
                WHERE id = ? AND status IN (\(from.map { "'\($0.rawValue)'" }.joined(separator: ","))) AND (? IS NULL OR worker = ?)
                """, arguments: [status.rawValue, Self.encodeDetail(detail), finished, id, worker, worker])
            guard db.changesCount == 1 else { return false }
            if let action {
                var d = auditDetail
                d["job"] = .string(id)
                d["status"] = .string(status.rawValue)
                if let r = detail.rule { d["rule"] = .string(r) }
                let dataset = try String.fetchOne(db, sql: "SELECT datasets_json FROM jobs WHERE id = ?", arguments: [id])
                    .flatMap { try? JSONDecoder().decode([JobDataset].self, from: Data($0.utf8)) }?.first?.id
                try Self.appendAudit(db, actor: actor, action: action, dataset: dataset, detail: d)
            }
            return true
        }
    }

    /// After a restart (one process: every worker stopped with it): jobs left `running` or
    /// `checking` are queued again once, or failed.
    /// - Returns: the ids re-queued and failed.
    public func recoverJobs(maxAttempts: Int = 2) throws -> (requeued: [String], failed: [String]) {
        try write { db in
            let stuck = try Row.fetchAll(db, sql: "SELECT * FROM jobs WHERE status IN ('running', 'checking')").map(Self.jobRecord)
            var requeued: [String] = [], failed: [String] = []
            for j in stuck {
                if j.attempts < maxAttempts {
                    try db.execute(sql: "UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL WHERE id = ?", arguments: [j.id])
                    requeued.append(j.id)
                } else {
                    var d = j.detail
                    d.reason = CatalogRules.notRetried(attempts: j.attempts)
                    try db.execute(sql: "UPDATE jobs SET status = 'failed', detail_json = ?, finished_at = ? WHERE id = ?",
                                   arguments: [Self.encodeDetail(d), Self.now(), j.id])
                    failed.append(j.id)
                }
                try Self.appendAudit(db, actor: "kaifang", action: "sandbox.recover", dataset: j.datasets.first?.id,
                                     detail: ["job": .string(j.id), "status": .string(j.attempts < maxAttempts ? "queued" : "failed")])
            }
            return (requeued, failed)
        }
    }

    /// Keeps the size and digest of an answered job's row set (the set itself is a file in the
    /// job's folder); a set identical to one already kept for the key and dataset is not kept again.
    public func recordRowSet(job: String, keyID: String, dataset: String, units: Int, sha256: String) throws {
        try write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO job_rowsets (job_id, key_id, dataset_id, units, set_sha256) VALUES (?, ?, ?, ?, ?)",
                           arguments: [job, keyID, dataset, units, sha256])
        }
    }

    /// Answered jobs of a key over a dataset whose row-set size is within `units ± slack` (rule 7 candidates).
    public func rowSets(keyID: String, dataset: String, units: Int, slack: Int) throws -> [(job: String, units: Int)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT job_id, units FROM job_rowsets WHERE key_id = ? AND dataset_id = ? AND units BETWEEN ? AND ?",
                             arguments: [keyID, dataset, units - slack, units + slack]).map { ($0["job_id"], $0["units"]) }
        }
    }

    /// The name a key was created with (to keep stewards from releasing their own jobs).
    public func keyName(_ id: String) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT name FROM api_keys WHERE id = ?", arguments: [id]) }
    }
}
