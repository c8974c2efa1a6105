import ArgumentParser
import Audit
import Foundation
import Hummingbird
import KaifangCore
import KaifangServer
import Logging
import NIOCore
import Publishing
import Storage

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the HTTP server (open API) on a data directory.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "The port to listen on (0 picks a free one).") var port: Int = 8080
    @OptionGroup var limits: LimitOptions

    func run() async throws {
        let catalog = try openCatalog(global)
        try await runServer(catalog: catalog, host: host, port: port, limits: limits) { port in
            FileHandle.standardOutput.write(Data("Kaifang serving \(catalog.directory.root.path) on http://\(host):\(port)/ (Ctrl-C stops)\n".utf8))
        }
    }
}

/// Runs the server until SIGINT/SIGTERM.
func runServer(catalog: any CatalogStore, host: String, port: Int, limits: LimitOptions, announce: @escaping @Sendable (Int) -> Void) async throws {
    let logger = Logger(label: "kaifang")
    var config = AppConfiguration(host: host, port: port)
    config.keyRate = limits.keyRate
    config.keyBurst = limits.keyRate * 2
    config.anonymousRate = limits.anonymousRate
    config.anonymousBurst = limits.anonymousRate * 2
    config.exportsPerDay = limits.exportsPerDay
    config.anonymousExportsPerDay = limits.anonymousExportsPerDay
    config.sandboxWorkers = limits.sandboxWorkers
    guard limits.maxUploadMiB >= 1 else { throw KaifangError.badInput("--max-upload-mib \(limits.maxUploadMiB): give at least 1") }
    config.maxUploadBytes = Int64(limits.maxUploadMiB) << 20
    guard (1...250).contains(limits.requestDays) else { throw KaifangError.badInput("--request-days \(limits.requestDays): give 1–250 working days") }
    config.requestWorkingDays = limits.requestDays
    guard (1...250).contains(limits.reportDays) else { throw KaifangError.badInput("--report-days \(limits.reportDays): give 1–250 working days") }
    config.reportWorkingDays = limits.reportDays
    config.signupOpen = limits.signup == "open"
    guard limits.signupsPerAddress >= 0, limits.signupsPerHour >= 0 else {
        throw KaifangError.badInput("--signups-per-address and --signups-per-hour take 0 (no limit) or more")
    }
    config.signupsPerAddress = limits.signupsPerAddress
    config.signupsPerHour = limits.signupsPerHour
    guard limits.jobLease >= 1 else { throw KaifangError.badInput("--job-lease \(limits.jobLease): give at least 1 second") }
    config.jobLease = limits.jobLease
    if let loops = limits.eventLoops {
        guard loops >= 1 else { throw KaifangError.badInput("--event-loops \(loops): give at least 1") }
        config.eventLoops = loops
    }
    config.webhooks.networks = try WebhookNetworks(allow: limits.webhookAllow, loopback: limits.webhookLoopback)
    if let url = limits.publicURL {
        guard let c = URLComponents(string: url), ["http", "https"].contains(c.scheme ?? ""), c.host != nil else {
            throw KaifangError.badInput("--public-url '\(url)': give the address users reach the server at, such as https://data.example.gov.cn")
        }
        config.webhooks.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
    }
    let app = try buildApplication(config, catalog: catalog, logger: logger) { bound in
        announce(bound)
    }
    do {
        try await app.runService()
    } catch is CancellationError {
        // SIGTERM or SIGINT while a service waited: the graceful stop asked for, not a failure.
    } catch let e as IOError where e.errnoCode == EADDRINUSE {
        throw KaifangError.runtime("port \(port) on \(host) is already in use: stop what listens there or pick another port with --port")
    } catch {
        throw KaifangError.runtime("the server stopped", cause: error)
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Import and publish the sample datasets into a fresh data directory, print a developer key, and serve.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The port to listen on.") var port: Int = 8080
    @Option(help: "The folder of sample datasets (each a folder with dataset.json and a CSV).") var datasets: String = "datasets"
    @OptionGroup var limits: LimitOptions

    func run() async throws {
        let path: String
        if let explicit = global.dataDir ?? ProcessInfo.processInfo.environment["KAIFANG_DATA_DIR"].flatMap({ $0.isEmpty ? nil : $0 }) {
            path = explicit
        } else {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-demo-\(UUID().uuidString.prefix(8).lowercased())").path
        }
        var options = global
        options.dataDir = path
        let catalog = try openCatalog(options, create: true)
        if let n = try? catalog.datasetCount(), n > 0 {
            throw KaifangError.badInput(global.resolvedStore != nil
                ? "the store already holds a catalog with \(n) datasets: the demo needs an empty one"
                : "\(path) already holds a catalog with \(n) datasets: the demo needs a fresh data directory; omit --data-dir to use a temporary one")
        }
        let imported = try Demo.load(datasetsFolder: datasets, into: catalog, actor: cliActor)
        let (devRecord, devKey) = try catalog.createKey(role: .developer, name: "demo developer", actor: cliActor)
        let (_, stewardKey) = try catalog.createKey(role: .steward, name: "demo steward", actor: cliActor)
        // A partner with a sandbox license on residents, so the sandbox can be tried at once.
        let (partnerRecord, partnerKey) = try catalog.createKey(role: .partner, name: "demo partner", actor: cliActor)
        // A publisher of the department that owns residents, so an upload can be tried at once.
        let residentsDepartment = try catalog.dataset("residents")?.manifest.department
        let publisherKey = try residentsDepartment.map {
            try catalog.createKey(role: .publisher, name: "demo publisher", account: nil, department: $0, actor: cliActor).1
        }
        // Its duty list (责任清单): residents shared (done), and a dataset it owes and is late with.
        if let department = residentsDepartment {
            func day(_ offset: Double) -> String { String(AuditChain.timestamp(Date().addingTimeInterval(offset * 86_400)).prefix(10)) }
            _ = try catalog.createDuty(department: department, dataset: "residents", kind: .share, title: "居民服务记录 Resident service records",
                                       due: day(30), actor: cliActor)
            _ = try catalog.createDuty(department: department, dataset: "elderly-care-homes", kind: .open, title: "养老机构名录 Elderly-care homes",
                                       due: day(-30), actor: cliActor)
        }
        // Data requests (数据需求) on the board: one the sample enterprises fulfil, one still open
        // (its purpose quotes a phone number, which the board masks).
        if let market = try catalog.dataset("enterprises")?.manifest.department {
            let due = CatalogRules.workingDaysAfter(String(AuditChain.timestamp().prefix(10)), 20)
            let fulfilled = try catalog.createRequest(NewDataRequest(
                title: "企业登记信息 Enterprise registrations", items: ["统一社会信用代码", "企业名称", "年报"], purpose: "核验供应商主体资格 Checking suppliers",
                department: market, due: due, filerKey: devRecord.id), actor: "key:\(devRecord.id)")
            _ = try catalog.answerRequest(fulfilled.id, .accept("已列入需求清单"), keyID: "cli", actor: cliActor)
            _ = try catalog.answerRequest(fulfilled.id, .fulfil(dataset: "enterprises", version: nil, reply: "已开放；年报信息另行发布"), keyID: "cli", actor: cliActor)
            let open = try catalog.createRequest(NewDataRequest(
                title: "个体工商户名录 Sole traders", items: ["经营者姓名", "经营场所", "行业"], purpose: "社区便民地图，联系人 13912345678 Community service map",
                department: market, due: due, filerKey: devRecord.id), actor: "key:\(devRecord.id)")
            _ = try catalog.voteRequest(open.id, keyID: devRecord.id, actor: "key:\(devRecord.id)")
            // Feedback on enterprises: a rating, and an error report its department closed.
            _ = try catalog.rate(dataset: "enterprises", keyID: devRecord.id, stars: 4, comment: "字段齐全，更新及时", actor: "key:\(devRecord.id)")
            let report = try catalog.createReport(NewErrorReport(dataset: "enterprises", field: "industry", version: nil, row: nil,
                                                                 text: "部分企业行业分类与经营范围不符 Some industries look wrong",
                                                                 due: CatalogRules.workingDaysAfter(String(AuditChain.timestamp().prefix(10)), 10),
                                                                 filerKey: devRecord.id), actor: "key:\(devRecord.id)")
            _ = try catalog.closeReport(report.id, .resolve(.notAnError, answer: "行业按国民经济行业分类登记，与经营范围可不同", fixedVersion: nil),
                                        keyID: "cli", actor: cliActor)
        }
        // An approved showcase (应用场景) built on the open enterprises.
        if (try? catalog.publishedVersion("enterprises")) != nil {
            let showcase = try catalog.createShowcase(NewShowcase(
                title: "小微企业地图 Small-business map", description: "按区县和行业展示企业分布，供创业者选址参考。Where firms are, by district and industry.",
                url: nil, datasets: ["enterprises"], licenses: [], filerKey: devRecord.id), actor: "key:\(devRecord.id)")
            _ = try catalog.decideShowcase(showcase.id, .approve, keyID: "cli", actor: cliActor)
        }
        if (try? catalog.publishedVersion("residents")) != nil {
            let app = try catalog.createApplication(keyID: partnerRecord.id, dataset: "residents", purpose: "demo: district statistics in the sandbox",
                                                    fields: [], use: .sandbox, durationDays: 30)
            _ = try catalog.approve(application: app.id, actor: cliActor)
        }
        FileHandle.standardOutput.write(Data(imported.map { $0 + "\n" }.joined().utf8))
        // The demo listens on loopback only: a webhook receiver on this machine is how one tries them.
        var limits = limits
        limits.webhookLoopback = true
        try await runServer(catalog: catalog, host: "127.0.0.1", port: port, limits: limits) { bound in
            let base = "http://127.0.0.1:\(bound)"
            FileHandle.standardOutput.write(Data("""

            Kaifang demo is running; data directory \(path)
              developer key: \(devKey)
              steward key:   \(stewardKey)
              partner key:   \(partnerKey)   (sandbox license on residents)
            \(publisherKey.map { "  publisher key: \($0)   (of \(residentsDepartment ?? ""), which owns residents)" } ?? "")
            Open the portal at \(base)/ in a browser, or try the API:
              curl \(base)/v1/datasets
              curl '\(base)/v1/datasets/enterprises/rows?_limit=3'
              curl -H 'Authorization: Bearer \(devKey)' \(base)/v1/licenses
              curl -H 'Authorization: Bearer \(partnerKey)' -H 'Content-Type: application/json' \\
                   -d '{"sql": "SELECT district, COUNT(*) AS n FROM residents GROUP BY district"}' \(base)/v1/sandbox/jobs
            Sign up as a developer of your own (or at \(base)/signup), then see your usage:
              curl -H 'Content-Type: application/json' -d '{"email": "you@example.org", "name": "…"}' \(base)/v1/accounts
              curl -H 'Authorization: Bearer <your key>' \(base)/v1/me/usage
            \(publisherKey.map { """
            Upload a new version of residents as its department's publisher (not published until released):
              curl -H 'Authorization: Bearer \($0)' -H 'Content-Type: text/csv' -H 'Idempotency-Key: first-upload' \\
                   --data-binary @datasets/residents/residents.csv \(base)/v1/datasets/residents/versions

            """ } ?? "")Follow publications: \(base)/v1/feed.atom, or by webhook (loopback receivers allowed in the demo):
              curl -H 'Authorization: Bearer \(devKey)' -H 'Content-Type: application/json' \\
                   -d '{"url": "http://127.0.0.1:9000/hook"}' \(base)/v1/me/webhooks
            Ctrl-C stops the server.

            """.utf8))
        }
    }
}

/// Rate limits, quotas and webhook targets of the server.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("key-rate"), help: "Requests a second per API key (bursts of twice that; 0 disables).") var keyRate: Double = 50
    @Option(name: .customLong("anonymous-rate"), help: "Requests a second per anonymous address (bursts of twice that; 0 disables).") var anonymousRate: Double = 10
    @Option(name: .customLong("exports-per-day"), help: "Exports per key per UTC day (0: unlimited).") var exportsPerDay: Int = 100
    @Option(name: .customLong("anonymous-exports-per-day"), help: "Exports per anonymous address per UTC day (0: unlimited).") var anonymousExportsPerDay: Int = 20
    @Option(help: "open: anyone may sign up for a developer account (POST /v1/accounts, the portal's form); closed: stewards make accounts.")
    var signup: String = "open"
    @Option(name: .customLong("signups-per-address"), help: "Accounts one peer address may open an hour (0: no limit).") var signupsPerAddress: Int = 5
    @Option(name: .customLong("signups-per-hour"), help: "Accounts everyone together may open an hour (0: no limit).") var signupsPerHour: Int = 100
    @Option(name: .customLong("sandbox-workers"), help: "Sandbox jobs run at once, each in its own process (0: none run).") var sandboxWorkers: Int = 2
    @Option(name: .customLong("job-lease"), help: "Seconds a worker's claim on a sandbox job lasts unrenewed; with a shared store, the job of a stopped replica goes to another after it.") var jobLease: Double = 30
    @Option(name: .customLong("event-loops"), help: "Network I/O threads (default: half the cores, at least 1; handlers run on the concurrency pool).") var eventLoops: Int?
    @Option(name: .customLong("webhook-allow"), help: "Networks webhooks may be sent to: 'public' (public addresses, the default) or a CIDR block such as 10.20.0.0/16; repeat for several.")
    var webhookAllow: [String] = []
    @Flag(name: .customLong("webhook-loopback"), help: "Also send webhooks to loopback addresses (127.0.0.0/8, ::1): for a receiver on this machine.")
    var webhookLoopback = false
    @Option(name: .customLong("public-url"), help: "The address users reach this server at, for links in webhook events (default: http://HOST:PORT).")
    var publicURL: String?
    @Option(name: .customLong("max-upload-mib"), help: "The largest file publishers may upload as a version (POST /v1/datasets/{id}/versions), in MiB as sent and as inflated from gzip.")
    var maxUploadMiB: Int = 2048
    @Option(name: .customLong("request-days"), help: "Working days (Monday to Friday) a department has to answer a data request (POST /v1/requests).")
    var requestDays: Int = 20
    @Option(name: .customLong("report-days"), help: "Working days a dataset's department has to close an error report (POST /v1/datasets/{id}/reports).")
    var reportDays: Int = 10

    func validate() throws {
        guard signup == "open" || signup == "closed" else { throw ValidationError("--signup must be open or closed") }
    }
}
