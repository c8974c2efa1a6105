import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Sandbox
import Storage

extension APIHandler {
    static func job(_ j: JobRecord) -> Components.Schemas.Job {
        let d = j.detail
        return .init(id: j.id, status: .init(rawValue: j.status.rawValue) ?? .failed, mode: .init(rawValue: j.mode) ?? .aggregate,
                     dryRun: j.dryRun, purpose: j.purpose, epsilon: j.epsilon,
                     datasets: j.datasets.map { .init(id: $0.id, version: $0.version, tier: .init(rawValue: $0.tier.rawValue) ?? .restricted) },
                     createdAt: date(j.createdAt) ?? Date(timeIntervalSince1970: 0), startedAt: date(j.startedAt), finishedAt: date(j.finishedAt),
                     runSeconds: d.runSeconds, checks: d.rules, rule: d.rule, reason: d.reason, outputRows: d.outputRows,
                     rowsSuppressed: d.rowsSuppressed, cellsSuppressed: d.cellsSuppressed, groupsCensored: d.groupsCensored,
                     epsilonLeft: d.epsilonLeft.map { .init(additionalProperties: $0) }, sqlSha256: d.sqlSHA256,
                     outputSha256: d.outputSHA256, notes: d.notes.isEmpty ? nil : d.notes)
    }

    /// The caller's job (stewards: any), or a 404 that does not reveal whether it exists.
    func ownedJob(_ id: String, _ caller: Caller) throws -> JobRecord {
        let key = try Self.requireKey(caller)
        guard let j = try catalog.job(id), j.keyID == key.id || caller.isSteward else {
            throw Problem(status: .notFound, detail: "no job '\(id)' of yours: GET /v1/sandbox/jobs lists them")
        }
        return j
    }

    func createJob(_ input: Operations.CreateJob.Input) async throws -> Operations.CreateJob.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let job = try jobs.submit(JobSubmission(sql: body.sql, mode: body.mode?.rawValue ?? "aggregate", epsilon: body.epsilon,
                                                purpose: body.purpose ?? "", dryRun: body.dryRun ?? false), keyID: key.id)
        await jobWake.wake()
        return .accepted(.init(body: .json(Self.job(job))))
    }

    func listJobs(_ input: Operations.ListJobs.Input) async throws -> Operations.ListJobs.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let status = input.query.status.flatMap { JobStatus(rawValue: $0.rawValue) }
        let list = try catalog.jobs(keyID: caller.isSteward ? nil : key.id, status: status)
        return .ok(.init(body: .json(.init(jobs: list.map(Self.job)))))
    }

    func getJob(_ input: Operations.GetJob.Input) async throws -> Operations.GetJob.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        return .ok(.init(body: .json(Self.job(try ownedJob(input.path.jobId, caller)))))
    }

    func cancelJob(_ input: Operations.CancelJob.Input) async throws -> Operations.CancelJob.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let j = try ownedJob(input.path.jobId, caller)
        let done = try await jobs.cancel(j.id, actor: caller.key.map { "key:\($0.id)" } ?? "anonymous", registry: children)
        return .ok(.init(body: .json(Self.job(done))))
    }

    func getJobResult(_ input: Operations.GetJobResult.Input) async throws -> Operations.GetJobResult.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let j = try ownedJob(input.path.jobId, caller)
        let result = try jobs.result(j.id)
        let sha = j.detail.outputSHA256 ?? ""
        if input.query.format == .csv {
            return .ok(.init(headers: .init(kaifangOutputSHA256: sha), body: .csv(HTTPBody(result.csv))))
        }
        let rows: [[OpenAPIValueContainer]] = try result.rows.map { row in
            try row.map { cell in
                switch cell {
                case .null: try OpenAPIValueContainer(unvalidatedValue: nil)
                case .integer(let i): try OpenAPIValueContainer(unvalidatedValue: Int(i))
                case .real(let d): try OpenAPIValueContainer(unvalidatedValue: d)
                case .text(let s): try OpenAPIValueContainer(unvalidatedValue: s)
                }
            }
        }
        let manifest = Components.Schemas.JobResult.ManifestPayload(
            job: j.id, sqlSha256: j.detail.sqlSHA256 ?? "", outputSha256: sha,
            datasets: j.datasets.map { .init(id: $0.id, version: $0.version, tier: .init(rawValue: $0.tier.rawValue) ?? .restricted) },
            checks: j.detail.rules)
        return .ok(.init(headers: .init(kaifangOutputSHA256: sha), body: .json(.init(columns: result.columns, rows: rows, manifest: manifest))))
    }
}

/// Wakes the sandbox workers when a job is queued (they also poll).
///
/// A waiter's timeout resumes that waiter only, and only if it still waits: a timeout that
/// woke every waiter, or fired after its own waiter had been woken, let two idle workers wake
/// each other in turn for ever (seen once jobs ran on NIO's event loops, where the order of
/// the two is fixed; on the concurrency pool it was a race).
actor JobWake {
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextID = 0

    /// Resumes every waiter.
    func wake() {
        let w = waiters
        waiters = [:]
        for c in w.values { c.resume() }
    }

    /// Returns at the next `wake()` or after `timeout`, whichever comes first.
    func wait(timeout: Duration) async {
        let id = nextID
        nextID += 1
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        await withCheckedContinuation { waiters[id] = $0 }
        timer.cancel()
    }

    /// The number of tasks waiting (for tests).
    var waiting: Int { waiters.count }

    private func expire(_ id: Int) { waiters.removeValue(forKey: id)?.resume() }
}
