import Audit
import Crypto
import Foundation
import KaifangCore
import Storage
import VersionFormat

/// A job as submitted by a partner.
public struct JobSubmission: Sendable {
    public var sql: String
    public var mode: String
    public var epsilon: Double?
    public var purpose: String
    public var dryRun: Bool
    /// Fixes the DP noise (tests only; the API does not expose it).
    public var seed: UInt64?

    public init(sql: String, mode: String = "aggregate", epsilon: Double? = nil, purpose: String = "", dryRun: Bool = false, seed: UInt64? = nil) {
        self.sql = sql; self.mode = mode; self.epsilon = epsilon; self.purpose = purpose; self.dryRun = dryRun; self.seed = seed
    }
}

/// The sandbox's parent side (docs/sandbox-guide.md): checks and queues jobs, runs each in a child process
/// under limits, applies overlap control and the release rule, and records every step.
public struct JobService: Sendable {
    public let catalog: any CatalogStore
    /// The `kaifang` executable that runs `job exec`.
    public let executable: URL
    /// The platform default policy (`sandbox/policy.json`, embedded in the binary).
    public let defaultPolicy: SandboxPolicy

    /// A worker's lease on a job, in seconds, renewed every third of it while the job runs; a
    /// job whose lease runs out (its worker stopped) goes to another worker.
    public let lease: Double

    public init(catalog: any CatalogStore, executable: URL, defaultPolicy: SandboxPolicy, lease: Double = JobService.defaultLease) {
        self.catalog = catalog; self.executable = executable; self.defaultPolicy = defaultPolicy; self.lease = lease
    }

    /// This process's own executable (what `kaifang` runs as).
    public static var selfExecutable: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

    /// A job's local working folder while a worker runs it (the child's spec in, its output
    /// out), removed after; what lasts is kept by the store (`putJobFile`).
    func directory(_ id: String) -> URL { URL(fileURLWithPath: catalog.directory.temporaryFile(suffix: "", name: "job-\(id)"), isDirectory: true) }

    /// How a job's plan names a dataset version: the same on every replica; the worker that
    /// runs the job resolves it to its own copy of the file (`CatalogStore.localFile`).
    static func logicalPath(_ v: VersionRecord) -> String { logicalPath(dataset: v.dataset, number: v.number) }
    static func logicalPath(dataset: String, number: Int) -> String { "version:\(dataset)@\(number)" }

    /// The default lease: long enough that a busy machine renews it in time.
    public static let defaultLease: Double = 30

    /// A dataset's policy: the platform default tightened by `<data-dir>/sandbox/policy.json` and
    /// `<data-dir>/sandbox/<dataset>.json` when present.
    public func policy(for dataset: String) throws -> SandboxPolicy {
        var p = defaultPolicy
        let dir = URL(fileURLWithPath: catalog.directory.root.path).appendingPathComponent("sandbox")
        for name in ["policy.json", "\(dataset).json"] {
            let url = dir.appendingPathComponent(name)
            if let data = FileManager.default.contents(atPath: url.path) {
                p = p.strictest(try SandboxPolicy.decode(data, source: url.path))
            }
        }
        return p
    }

    /// The datasets a key may name in a job: every published `open` dataset, and those it holds an
    /// active sandbox license for (only the granted fields).
    public func tables(for keyID: String) throws -> [(SandboxTable, LicenseRecord?)] {
        var out: [(SandboxTable, LicenseRecord?)] = []
        for d in try catalog.search(DatasetQuery(limit: 10_000)).datasets {
            guard let (rec, v) = try catalog.publishedVersion(d.record.id), let tier = rec.tier else { continue }
            var license: LicenseRecord?
            if tier != .open {
                guard let l = try catalog.activeLicense(keyID: keyID, dataset: rec.id, use: .sandbox) else { continue }
                license = l
            }
            let granted = license.flatMap { $0.fields.isEmpty ? nil : Set($0.fields) }
            var manifest = rec.manifest
            manifest.fields = manifest.fields.filter { f in v.manifest.fields.contains { $0.name == f.name } }
            out.append((SandboxTable(manifest: manifest, version: v.number, path: Self.logicalPath(v), tier: tier,
                                     granted: granted, policy: try policy(for: rec.id)), license))
        }
        return out
    }

    /// Checks a job and queues it.
    /// - Throws: `KaifangError.badInput` (the refusal, with rule and position), `.forbidden` (ε budget).
    public func submit(_ s: JobSubmission, keyID: String) throws -> JobRecord {
        guard ["aggregate", "dp"].contains(s.mode) else { throw KaifangError.badInput("mode must be 'aggregate' or 'dp'") }
        guard s.sql.utf8.count <= 20_000 else { throw KaifangError.badInput("the SQL is longer than 20 000 bytes") }
        let sqlHash = SHA256.hash(data: Data(s.sql.utf8)).hexString
        let available = try tables(for: keyID)
        let plan: QueryPlan
        do {
            plan = try QueryChecker(tables: available.map(\.0), mode: s.mode).check(s.sql)
        } catch {
            try catalog.audit(actor: "key:\(keyID)", action: "sandbox.refuse", dataset: nil,
                              detail: ["rule": .string(error.rule), "sql_sha256": .string(sqlHash),
                                       "at": .string(error.position.map { "\($0.line):\($0.column)" } ?? "")])
            throw error.asError
        }
        let used = available.filter { t in plan.attachments.values.contains(t.0.path) }
        var policy = used.map(\.0.policy).reduce(defaultPolicy) { $0.strictest($1) }
        policy = policy.strictest(defaultPolicy)
        var epsilon: Double?
        if s.mode == "dp" {
            let e = s.epsilon ?? min(0.5, policy.maxEpsilonPerQuery)
            guard e > 0, e.isFinite else { throw KaifangError.badInput("epsilon must be a positive number") }
            guard e <= policy.maxEpsilonPerQuery else {
                throw KaifangError.badInput("epsilon \(e) is above the per-query limit \(policy.maxEpsilonPerQuery) of these datasets")
            }
            epsilon = e
        } else if s.epsilon != nil {
            throw KaifangError.badInput("epsilon applies to dp mode only")
        }
        let now = AuditChain.timestamp()
        let id = "job_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        var detail = JobDetail()
        detail.rules = plan.rules
        detail.sqlSHA256 = sqlHash
        let record = JobRecord(id: id, keyID: keyID, sql: s.sql, mode: s.mode, epsilon: epsilon, purpose: s.purpose, status: .queued,
                               detail: detail, createdAt: now, startedAt: nil, finishedAt: nil, attempts: 0, dryRun: s.dryRun,
                               datasets: used.map { JobDataset(id: $0.0.id, version: $0.0.version, tier: $0.0.tier) })
        // The child's instructions, kept where every worker reads them before the job becomes
        // visible to workers. The plan names versions logically; the worker resolves them.
        let spec = JobSpec(plan: plan, policy: policy, epsilon: epsilon, seed: s.seed, dryRun: s.dryRun, rowSetSalt: try rowSetSalt())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try catalog.putJobFile(job: id, name: "spec.json", data: try encoder.encode(spec))
        let personal = used.filter { $0.0.isPersonal }
        try catalog.insertJob(record, spend: personal.map { (dataset: $0.0.id, licenseID: $0.1?.id, monthly: $0.0.policy.monthlyEpsilon) })
        return record
    }

    func rowSetSalt() throws -> UInt64 {
        let key = try catalog.pseudonymSecret()
        let mac = HMAC<SHA256>.authenticationCode(for: Data("kaifang sandbox row sets".utf8), using: key)
        return Data(mac).prefix(8).reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
    }

    /// Writes a synthetic copy of a dataset version, whose file is at `source` (for dry runs).
    static func writeSynthetic(_ manifest: DatasetManifest, source: String, to path: String, rows: Int) throws {
        let categories = try SyntheticGenerator.publicCategories(manifest: manifest, path: source)
        var g = SyntheticGenerator(manifest: manifest, categories: categories, seed: 42)
        let w = try VersionWriter(path: path, manifest: manifest)
        for _ in 0..<rows { try w.append(g.row()) }
        _ = try w.finish()
    }

    // MARK: running

    /// This process's name as a job worker: host, process and a random part.
    public static let workerName: String = {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let h = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(h):\(getpid()):\(UInt32.random(in: 0...UInt32.max))"
    }()

    /// Runs a queued job — `id`, or the oldest queued one when nil — to its end, claiming it
    /// first and holding its lease while it runs. Returns the final record, or nil when there
    /// was none to claim (or another worker had it).
    @discardableResult
    public func run(_ id: String? = nil, registry: ChildRegistry? = nil) async throws -> JobRecord? {
        guard let job = try catalog.claimJob(id, worker: Self.workerName, lease: lease) else { return nil }
        do {
            return try await execute(job, registry: registry)
        } catch is CancellationError {
            throw CancellationError()
        } catch let lost as LeaseLost {
            throw lost
        } catch {
            var d = job.detail
            d.reason = "the runner failed: \(error)"
            return try finish(job, .failed, d)
        }
    }

    /// The job's lease was lost (the worker stalled past it and the job went to another
    /// worker, or was recovered): this worker stops and writes nothing.
    public struct LeaseLost: Error, CustomStringConvertible {
        public let job: String
        public var description: String { "lost the lease of job \(job): another worker has it" }
    }

    func execute(_ job: JobRecord, registry: ChildRegistry?) async throws -> JobRecord {
        let id = job.id
        let dir = directory(id)
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A license revoked, or a key revoked, after submission stops the job before it reads anything.
        if !job.dryRun {
            var detail = job.detail
            if try catalog.keys().first(where: { $0.id == job.keyID })?.isActive != true {
                detail.reason = "the key that submitted this job was revoked before it ran"
                detail.rule = "license"
                return try finish(job, .rejected, detail)
            }
            let available = Set(try tables(for: job.keyID).map(\.0.id))
            if let lost = job.datasets.first(where: { !available.contains($0.id) }) {
                detail.reason = "the sandbox license for '\(lost.id)' ended (revoked or expired) before the job ran"
                detail.rule = "license"
                return try finish(job, .rejected, detail)
            }
        }
        guard let stored = try catalog.jobFile(job: id, name: "spec.json") else {
            throw KaifangError.runtime("job \(id) has no spec: it was submitted by a process that failed before queueing it")
        }
        var spec = try JSONDecoder().decode(JobSpec.self, from: stored)
        // The plan's logical versions, resolved to this worker's files (synthetic copies for a dry run).
        for (schema, logical) in spec.plan.attachments {
            guard let d = job.datasets.first(where: { Self.logicalPath(dataset: $0.id, number: $0.version) == logical }),
                  let v = try catalog.version(d.id, d.version) else {
                throw KaifangError.runtime("job \(id) names a version that is not in the catalog")
            }
            var file = try catalog.localFile(v)
            if spec.dryRun {
                let synthetic = dir.appendingPathComponent("synthetic-\(d.id).sqlite").path
                var manifest = v.manifest
                if let current = try catalog.dataset(d.id) {
                    manifest.fields = current.manifest.fields.filter { f in v.manifest.fields.contains { $0.name == f.name } }
                }
                try Self.writeSynthetic(manifest, source: file, to: synthetic, rows: 1000)
                file = synthetic
            }
            spec.plan.attachments[schema] = file
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(spec).write(to: dir.appendingPathComponent("spec.json"), options: .atomic)
        let started = Date()
        let heartbeat = Task { [catalog, lease] in
            // Renew the lease while the child runs; a renewal refused means another worker has
            // the job: stop the child and write nothing.
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(lease / 3))
                if Task.isCancelled { return false }
                if (try? catalog.renewLease(job: id, worker: Self.workerName, lease: lease)) == false {
                    await registry?.kill(id)
                    return true
                }
            }
            return false
        }
        let outcome: Outcome
        do {
            outcome = try await Self.spawn(executable: executable, directory: dir, wallSeconds: spec.policy.wallSeconds, job: id, registry: registry)
        } catch {
            heartbeat.cancel()
            throw error
        }
        heartbeat.cancel()
        if await heartbeat.value { throw LeaseLost(job: id) }
        var detail = job.detail
        detail.runSeconds = (Date().timeIntervalSince(started) * 1000).rounded() / 1000
        if let current = try catalog.job(id), current.status == .cancelled { return current }
        switch outcome {
        case .timedOut:
            detail.reason = "the job ran past its \(spec.policy.wallSeconds) s limit and was stopped"
            return try finish(job, .timed_out, detail)
        case .crashed(let why):
            detail.reason = why
            return try finish(job, .failed, detail)
        case .failed(let f):
            detail.reason = f.reason
            if f.reason.hasPrefix("rule-8") { detail.rule = "rule-8" }
            return try finish(job, JobStatus(rawValue: f.status) ?? .failed, detail)
        case .finished:
            break
        }
        guard try catalog.updateJob(id, status: .checking, detail: detail, from: [.running], worker: Self.workerName, actor: "kaifang", audit: nil, auditDetail: [:]) else {
            if let current = try catalog.job(id), current.status == .cancelled { return current }
            throw LeaseLost(job: id)
        }
        let output = try JSONDecoder().decode(JobOutput.self, from: Data(contentsOf: dir.appendingPathComponent("output.json")))
        detail.outputRows = output.rows.count
        detail.rowsSuppressed = output.rowsSuppressed
        detail.cellsSuppressed = output.cellsSuppressed
        detail.groupsCensored = job.mode == "dp" ? output.groupsCensored : nil
        detail.notes = output.notes
        if let rule = output.refusedRule {
            detail.rule = rule
            detail.reason = output.refusedReason
            return try finish(job, .rejected, detail)
        }
        // Rule 7: against every answered job of this key over the same dataset.
        if !job.dryRun {
            for (dataset, units) in output.rowSetUnits.sorted(by: { $0.key < $1.key }) {
                let slack = spec.policy.overlapMaxDifference
                guard slack > 0, let mine = RowSet.read(dir.appendingPathComponent("rowset-\(dataset).bin")) else { continue }
                for earlier in try catalog.rowSets(keyID: job.keyID, dataset: dataset, units: units, slack: slack) where earlier.job != id {
                    guard let theirs = try catalog.jobFile(job: earlier.job, name: "rowset-\(dataset).bin").flatMap(RowSet.decode) else { continue }
                    let d = RowSet.symmetricDifference(mine, theirs, limit: slack)
                    if d >= 1 && d <= slack {
                        detail.rule = "rule-7"
                        detail.reason = "this query's rows differ from those of your job \(earlier.job) by \(d) \(d == 1 ? "person" : "people") (1–\(slack) are refused): comparing the two answers would describe them"
                        return try finish(job, .rejected, detail)
                    }
                }
            }
        }
        // The released output and its manifest.
        let result = try encoder.encode(JobResult(columns: output.columns, rows: output.rows))
        detail.outputSHA256 = SHA256.hash(data: result).hexString
        try catalog.putJobFile(job: id, name: "result.json", data: result)
        if !job.dryRun {
            for (dataset, units) in output.rowSetUnits {
                let data = (try? Data(contentsOf: dir.appendingPathComponent("rowset-\(dataset).bin"))) ?? Data()
                try catalog.putJobFile(job: id, name: "rowset-\(dataset).bin", data: data)
                let digest = SHA256.hash(data: data).hexString
                try catalog.recordRowSet(job: id, keyID: job.keyID, dataset: dataset, units: units, sha256: digest)
            }
        }
        if job.mode == "dp", !job.dryRun {
            var left: [String: Double] = [:]
            for d in job.datasets {
                let p = try policy(for: d.id)
                left[d.id] = max(0, p.monthlyEpsilon - (try catalog.epsilonUsed(keyID: job.keyID, dataset: d.id, month: JobRecord.month(job.createdAt))))
            }
            detail.epsilonLeft = left
        }
        let restricted = job.datasets.contains { $0.tier == .restricted }
        return try finish(job, restricted && !job.dryRun ? .pending_review : .released, detail)
    }

    func finish(_ job: JobRecord, _ status: JobStatus, _ detail: JobDetail) throws -> JobRecord {
        _ = try catalog.updateJob(job.id, status: status, detail: detail, from: [.running, .checking], worker: Self.workerName, actor: "kaifang",
                                  audit: "sandbox.verdict",
                                  auditDetail: ["rules": .array(detail.rules.map(JSONValueBridge.string)),
                                                "output_sha256": .string(detail.outputSHA256 ?? ""),
                                                "rows": .int(Int64(detail.outputRows ?? 0))])
        return try catalog.job(job.id) ?? job
    }

    enum Outcome {
        case finished
        case failed(JobFailure)
        case timedOut
        case crashed(String)
    }

    /// Runs `kaifang job exec DIR` and waits, killing it at the wall-clock limit.
    static func spawn(executable: URL, directory: URL, wallSeconds: Int, job: String, registry: ChildRegistry?) async throws -> Outcome {
        let p = Process()
        p.executableURL = executable
        p.arguments = ["job", "exec", directory.path]
        p.environment = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "KAIFANG_RUNNER_PID": String(getpid())]
        let log = directory.appendingPathComponent("child.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        let done = AsyncStream<Void>.makeStream()
        p.terminationHandler = { _ in done.continuation.yield(); done.continuation.finish() }
        try p.run()
        await registry?.add(job, p)
        defer { Task { await registry?.remove(job) } }
        let deadline = ContinuousClock.now + .seconds(wallSeconds + 2)
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled && p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        for await _ in done.stream {}
        timer.cancel()
        if p.isRunning {
            // The server is stopping (this task was cancelled): stop the child and leave the job
            // `running`, so the next start re-queues it.
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw CancellationError()
        }
        p.waitUntilExit()
        let timedOut = ContinuousClock.now >= deadline
        if p.terminationReason == .uncaughtSignal {
            let sig = p.terminationStatus
            if timedOut || sig == SIGXCPU || sig == SIGKILL { return .timedOut }
            return .crashed("the job's process was stopped by signal \(sig) (a limit was hit)")
        }
        switch p.terminationStatus {
        case 0:
            return .finished
        default:
            if let data = try? Data(contentsOf: directory.appendingPathComponent("error.json")),
               let f = try? JSONDecoder().decode(JobFailure.self, from: data) {
                return f.status == "timed_out" ? .timedOut : .failed(f)
            }
            return .crashed("the job's process exited with status \(p.terminationStatus) (a limit was hit)")
        }
    }

    // MARK: steward and owner actions

    /// Cancels a job that has not ended.
    /// - Throws: `.notFound`, `.conflict` when it already ended.
    public func cancel(_ id: String, actor: String, registry: ChildRegistry? = nil) async throws -> JobRecord {
        guard let job = try catalog.job(id) else { throw KaifangError.notFound("no job '\(id)'") }
        guard [.queued, .running, .checking].contains(job.status) else {
            throw KaifangError.conflict("job '\(id)' is \(job.status.rawValue): only queued or running jobs can be cancelled")
        }
        var d = job.detail
        d.reason = "cancelled by its owner"
        guard try catalog.updateJob(id, status: .cancelled, detail: d, from: [.queued, .running, .checking], worker: nil, actor: actor, audit: "sandbox.cancel", auditDetail: [:]) else {
            throw KaifangError.conflict("job '\(id)' ended before it could be cancelled")
        }
        await registry?.kill(id)
        return try catalog.job(id) ?? job
    }

    /// A steward's decision on a job waiting for review; the steward may not be the job's owner.
    /// - Throws: `.notFound`, `.conflict` (not pending), `.forbidden` (own job).
    public func decide(_ id: String, release: Bool, reason: String?, actor: String, actorKeyID: String? = nil) throws -> JobRecord {
        guard let job = try catalog.job(id) else { throw KaifangError.notFound("no job '\(id)'") }
        guard job.status == .pending_review else {
            throw KaifangError.conflict("job '\(id)' is \(job.status.rawValue): only jobs in pending_review wait for a decision")
        }
        let ownerName = try catalog.keyName(job.keyID)
        if actor == job.keyID || actor == "key:" + job.keyID || actorKeyID == job.keyID || (ownerName != nil && (actor == ownerName || actor == "cli:" + ownerName!)) {
            throw KaifangError.forbidden("a job's owner may not release or reject it: ask another steward")
        }
        if !release && (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw KaifangError.badInput("give --reason when rejecting a job: the partner sees it")
        }
        var d = job.detail
        d.reviewer = actor
        if !release { d.reason = reason; d.rule = "review" }
        _ = try catalog.updateJob(id, status: release ? .released : .rejected, detail: d, from: [.pending_review], worker: nil, actor: actor,
                                  audit: release ? "sandbox.release" : "sandbox.reject",
                                  auditDetail: reason.map { ["reason": .string($0)] } ?? [:])
        return try catalog.job(id) ?? job
    }

    /// The released output of a job.
    /// - Throws: `.notFound`, `.conflict` when it is not released.
    public func result(_ id: String) throws -> JobResult {
        guard let job = try catalog.job(id) else { throw KaifangError.notFound("no job '\(id)'") }
        guard job.status == .released else {
            throw KaifangError.conflict("job '\(id)' is \(job.status.rawValue): a result is available once the job is released")
        }
        guard let data = try catalog.jobFile(job: id, name: "result.json") else {
            throw KaifangError.runtime("job '\(id)' is released but its result is missing from the store")
        }
        return try JSONDecoder().decode(JobResult.self, from: data)
    }

    /// Jobs whose worker stopped go back to the queue once, or fail.
    public func recover() throws -> (requeued: [String], failed: [String]) { try catalog.recoverJobs(maxAttempts: 2) }
}

/// A released result: columns and rows.
public struct JobResult: Codable, Sendable {
    public var columns: [String]
    public var rows: [[OutputCell]]

    /// As CSV (RFC 4180).
    public var csv: String {
        func field(_ s: String) -> String {
            s.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + SQLPrinter.doubling(s, "\"") + "\"" : s
        }
        var out = columns.map(field).joined(separator: ",") + "\r\n"
        for r in rows { out += r.map { field($0.text) }.joined(separator: ",") + "\r\n" }
        return out
    }
}

/// Running child processes, so a cancel can stop one.
public actor ChildRegistry {
    var children: [String: Process] = [:]
    public init() {}
    func add(_ job: String, _ p: Process) { children[job] = p }
    func remove(_ job: String) { children[job] = nil }
    func kill(_ job: String) {
        if let p = children[job], p.isRunning { Foundation.kill(p.processIdentifier, SIGKILL) }
    }
}

enum JSONValueBridge {
    static func string(_ s: String) -> JSONValue { .string(s) }
}
