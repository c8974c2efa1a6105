import ArgumentParser
import Foundation
import KaifangCore
import KaifangServer
import Publishing
import Sandbox
import Storage

struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Sandbox jobs: submit, list, show, release, reject (授权开发).",
                                                    subcommands: [Submit.self, List.self, Show.self, Release.self, Reject.self, Exec.self])

    static func service(_ catalog: any CatalogStore) -> JobService {
        JobService(catalog: catalog, executable: JobService.selfExecutable, defaultPolicy: embeddedSandboxPolicy)
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "submit", abstract: "Check a job for a key, queue it, and (unless --no-wait) run it here and print the outcome.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A file with the SQL ('-' for stdin); or give --sql.") var file: String?
        @Option(help: "A file with the SQL ('-' for stdin), or the SQL text itself.") var sql: String?
        @Option(help: "The key id (kf_…) the job runs for: its licenses decide which datasets it may read.") var key: String
        @Option(help: "aggregate or dp.") var mode: String = "aggregate"
        @Option(help: "dp mode: ε this query spends (default 0.5).") var epsilon: Double?
        @Option(help: "What the job is for (recorded).") var purpose: String = ""
        @Flag(help: "Run against synthetic data, without disclosure checks or budget.") var dryRun = false
        @Flag(help: "Queue only; a running server's workers pick it up.") var noWait = false
        @Option(help: .hidden) var seed: UInt64?

        func run() async throws {
            let text: String
            // `--sql` takes a file; SQL text is accepted too (it is never an existing path).
            if let sql, sql == "-" || FileManager.default.fileExists(atPath: sql) {
                guard let data = sql == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: sql) else {
                    throw KaifangError.badInput("cannot read \(sql)")
                }
                text = String(decoding: data, as: UTF8.self)
            } else if let sql { text = sql }
            else if let file {
                guard let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file) else {
                    throw KaifangError.badInput("cannot read \(file)")
                }
                text = String(decoding: data, as: UTF8.self)
            } else { throw ValidationError("give the SQL as a FILE or with --sql") }
            let catalog = try openCatalog(global)
            let service = JobCommand.service(catalog)
            let job = try service.submit(JobSubmission(sql: text, mode: mode, epsilon: epsilon, purpose: purpose, dryRun: dryRun, seed: seed), keyID: key)
            guard !noWait else {
                if global.json { try printJSON(JobView(job)) } else { print("Queued \(job.id).") }
                return
            }
            let done = try await service.run(job.id) ?? catalog.job(job.id) ?? job
            try JobCommand.show(done, service: service, json: global.json)
            // 0 released or waiting for review; 2 refused by a rule; 1 failed or timed out.
            switch done.status {
            case .released, .pending_review, .queued, .running, .checking: break
            case .rejected, .cancelled: throw ExitCode(2)
            case .failed, .timed_out: throw ExitCode(1)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this key's jobs.") var key: String?
        @Option(help: "Only jobs with this status (e.g. pending_review).") var status: String?

        func run() throws {
            let st = try status.map { s throws in
                guard let v = JobStatus(rawValue: s) else { throw ValidationError("--status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))") }
                return v
            }
            let jobs = try openCatalog(global).jobs(keyID: key, status: st)
            if global.json { try printJSON(jobs.map(JobView.init)); return }
            if jobs.isEmpty { print("No jobs."); return }
            printTable(["id", "status", "mode", "key", "datasets", "created", "reason"], jobs.map {
                [$0.id, $0.status.rawValue, $0.mode, $0.keyID, $0.datasets.map { "\($0.id)@\($0.version)" }.joined(separator: ","), $0.createdAt, String(($0.detail.reason ?? "").prefix(50))]
            })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a job: status, checks, figures, and its result once released.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The job id.") var id: String

        func run() throws {
            let catalog = try openCatalog(global)
            guard let job = try catalog.job(id) else { throw KaifangError.notFound("no job '\(id)': see kaifang job list") }
            try JobCommand.show(job, service: JobCommand.service(catalog), json: global.json)
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "release", abstract: "Release a job over restricted data after review (not your own).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The job id.") var id: String
        @Option(help: "A note for the record.") var reason: String?

        func run() throws {
            let catalog = try openCatalog(global)
            let job = try JobCommand.service(catalog).decide(id, release: true, reason: reason, actor: cliActor)
            if global.json { try printJSON(JobView(job)) } else { print("Released \(job.id).") }
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject a job waiting for review, with a reason the partner sees.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The job id.") var id: String
        @Option(help: "Why (shown to the partner).") var reason: String

        func run() throws {
            let catalog = try openCatalog(global)
            let job = try JobCommand.service(catalog).decide(id, release: false, reason: reason, actor: cliActor)
            if global.json { try printJSON(JobView(job)) } else { print("Rejected \(job.id).") }
        }
    }

    /// The child process of a job (not for humans): limits itself and runs the job in DIR.
    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run one job's child process (used by the runner).", shouldDisplay: false)
        @Argument var directory: String

        func run() throws {
            let code = JobExecutor.main(directory: directory)
            if code != 0 { throw ExitCode(code) }
        }
    }

    static func show(_ job: JobRecord, service: JobService, json: Bool) throws {
        let result = job.status == .released ? try? service.result(job.id) : nil
        if json {
            struct Out: Encodable { var job: JobView; var result: JobResult? }
            try printJSON(Out(job: JobView(job), result: result))
            return
        }
        print("\(job.id)  \(job.status.rawValue)  (\(job.mode)\(job.dryRun ? ", dry run" : ""))")
        print("  datasets: \(job.datasets.map { "\($0.id) v\($0.version) [\($0.tier.rawValue)]" }.joined(separator: ", "))")
        if let r = job.detail.reason { print("  reason:   \(r)\(job.detail.rule.map { " [\($0)]" } ?? "")") }
        if !job.detail.rules.isEmpty { print("  checks:   \(job.detail.rules.joined(separator: " "))") }
        if let n = job.detail.outputRows { print("  output:   \(n) rows; \(job.detail.rowsSuppressed ?? 0) rows under the unit minimum dropped; \(job.detail.cellsSuppressed ?? 0) dominated cells blanked") }
        if let eps = job.epsilon { print("  ε:        \(eps) spent\(job.detail.epsilonLeft.map { "; left this month: " + $0.map { "\($0.key) \(String(format: "%g", $0.value))" }.joined(separator: ", ") } ?? "")") }
        for n in job.detail.notes { print("  note:     \(n)") }
        if let result {
            print("")
            printTable(result.columns, result.rows.map { $0.map(\.text) })
            print("\n  output sha256: \(job.detail.outputSHA256 ?? "")")
        }
    }
}

/// A job as the CLI prints it in JSON (the API's shape).
struct JobView: Encodable {
    var id: String, status: String, mode: String, key_id: String, purpose: String, dry_run: Bool
    var epsilon: Double?, datasets: [JobDataset], created_at: String, started_at: String?, finished_at: String?
    var detail: JobDetail

    init(_ j: JobRecord) {
        id = j.id; status = j.status.rawValue; mode = j.mode; key_id = j.keyID; purpose = j.purpose; dry_run = j.dryRun
        epsilon = j.epsilon; datasets = j.datasets; created_at = j.createdAt; started_at = j.startedAt; finished_at = j.finishedAt
        detail = j.detail
    }
}
