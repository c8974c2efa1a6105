import CSQLiteGuard
import Foundation
import Hummingbird
import KaifangAPI
import Logging
import NIOCore
import NIOPosix
import OpenAPIHummingbird
import Publishing
import ServiceLifecycle
import Sandbox
import Storage
import VersionFormat

/// How to run the server.
public struct AppConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    /// Requests a second per API key (token bucket; 0 disables) and the burst allowed.
    public var keyRate: Double = 50
    public var keyBurst: Double = 100
    /// Requests a second per anonymous address, and the burst.
    public var anonymousRate: Double = 10
    public var anonymousBurst: Double = 20
    /// Exports per key per UTC day (0: unlimited), and per anonymous address.
    public var exportsPerDay: Int = 100
    public var anonymousExportsPerDay: Int = 20
    /// Whether anyone may open an account (`POST /v1/accounts`, the portal's sign-up form), and
    /// how many a peer address (and everyone together) may open an hour (0: no limit).
    public var signupOpen = true
    public var signupsPerAddress: Int = 5
    public var signupsPerHour: Int = 100
    /// How often counted usage is added to the store.
    public var usageFlushPeriod: Duration = .seconds(15)
    /// How often the harvest scheduler looks for due sources (nil: no scheduler).
    public var harvestPeriod: Duration? = .seconds(30)
    /// Sandbox worker processes run at once (0: no workers; jobs stay queued).
    /// The largest upload (`POST /v1/datasets/{id}/versions`) taken, in bytes as sent and as
    /// inflated from gzip.
    public var maxUploadBytes: Int64 = 2 << 30
    /// Working days (Monday to Friday) a department has to answer a data request.
    public var requestWorkingDays: Int = 20
    /// Working days a dataset's department has to close an error report.
    public var reportWorkingDays: Int = 10
    public var sandboxWorkers: Int = 2
    /// Seconds a sandbox worker's claim on a job lasts without renewal (a shared store gives the
    /// job of a stopped replica to another once it runs out).
    public var jobLease: Double = JobService.defaultLease
    /// The executable whose `job exec` runs a job (nil: this process's own, i.e. `kaifang`).
    public var sandboxExecutable: URL?
    /// NIO event-loop threads (network I/O). Handlers run on Swift's concurrency pool, one
    /// thread per core, so the default is half the cores (at least one): on 2 cores one loop
    /// served 8–15 % more requests/s than two, with a lower p99 (`bench/api.sh` pages).
    public var eventLoops: Int = AppConfiguration.defaultEventLoops
    /// Pages in row order read straight from the version file's pages (`TableFile`), and
    /// category filters answered from the file's row sets; false reads every page through
    /// SQLite's own plan (`--sqlite-only`; the two give the same bytes, tests compare them).
    public var pageReader = VersionEngine.current == .pages
    /// Where webhooks may point, and how they are retried.
    public var webhooks = WebhookSettings()
    public static let defaultEventLoops = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)

    public init(host: String = "127.0.0.1", port: Int = 8080, logLevel: Logger.Level = .info) {
        self.host = host; self.port = port; self.logLevel = logLevel
    }
}

/// The Kaifang version string.
public let kaifangVersion = "0.1.0"

/// Builds the application for `serve`, `demo` and every test: the router with its middleware
/// and the OpenAPI handlers. `onRunning` receives the bound port (useful with port 0).
public func buildApplication(
    _ configuration: AppConfiguration,
    catalog: any CatalogStore,
    logger: Logger,
    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    // One malloc arena, and large blocks mapped on their own: an upload's import runs on threads
    // of its own and holds tens of MiB of index keys, which otherwise stayed in per-thread arenas
    // and in the heap after it (peak RSS 152 → 184 MiB over three 1 M-row uploads; with these
    // settings 127–131 MiB, back to 62 MiB after each). Small allocations come from each thread's
    // cache either way; the rows API's throughput at 64 connections measured the same.
    kaifang_server_malloc_settings()
    let metrics = ServerMetrics()
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: ProblemMiddleware(logger: logger))
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: AuthMiddleware(catalog: catalog))
    let usage = UsageMeter(store: catalog)
    router.add(middleware: UsageMiddleware(meter: usage, logger: logger))
    let jobs = JobService(catalog: catalog, executable: configuration.sandboxExecutable ?? JobService.selfExecutable,
                          defaultPolicy: embeddedSandboxPolicy, lease: configuration.jobLease)
    let jobWake = JobWake()
    let children = ChildRegistry()
    let api = APIHandler(catalog: catalog, metrics: metrics, version: kaifangVersion, configuration: configuration,
                         jobs: jobs, jobWake: jobWake, children: children, usage: usage)
    try api.registerHandlers(on: SelectiveTransport(base: router, skip: ["GET /v1/datasets/{id}/rows", "POST /v1/datasets/{id}/versions"]))
    router.get("/v1/datasets/:id/rows") { request, context -> Response in
        let id = try context.parameters.require("id")
        let query = QueryString(request.uri.query ?? "")
        func int(_ name: String) throws -> Int? {
            guard let v = query[name] else { return nil }
            guard let n = Int(v) else { throw Problem(status: .badRequest, detail: "\(name) must be an integer") }
            return n
        }
        let page = try await api.rowsBody(id: id, limit: try int("_limit"), fields: query["_fields"], sort: query["_sort"], cursor: query["_cursor"],
                                          sinceVersion: try int("_since_version"), query: query,
                                          ifNoneMatch: request.headers[values: .ifNoneMatch].joined(separator: ","))
        let headers: HTTPFields = [.eTag: page.tag, .cacheControl: page.cacheControl, .vary: "Authorization"]
        guard let body = page.body else { return Response(status: .notModified, headers: headers) }
        var all = headers
        all[.contentType] = "application/json; charset=utf-8"
        return Response(status: .ok, headers: all, body: .init(byteBuffer: body))
    }
    let uploads = Uploads(catalog: catalog, maxBytes: configuration.maxUploadBytes)
    router.post("/v1/datasets/:id/versions") { request, context -> Response in
        try await uploads.handle(id: try context.parameters.require("id"), request: request)
    }
    let portal = Portal(library: try Portal.templates(), catalog: catalog, stewardship: api.stewardship, plans: api.plans)
    portal.addRoutes(to: router, api: api)
    var services: [any Service] = [UsageFlushService(meter: usage, period: configuration.usageFlushPeriod, logger: logger)]
    if configuration.sandboxWorkers > 0 {
        services.append(SandboxWorkers(jobs: jobs, wake: jobWake, children: children, count: configuration.sandboxWorkers, logger: logger))
    }
    if let embedded = catalog as? CatalogDatabase {
        services.append(CheckpointService(checkpointer: Checkpointer(catalog: embedded)))
    }
    let webhooks = WebhookDispatcher(catalog: catalog, settings: configuration.webhooks,
                                     baseURL: configuration.webhooks.publicURL ?? "http://\(configuration.host):\(configuration.port)", logger: logger)
    services.append(WebhookService(dispatcher: webhooks))
    services.append(ScorecardService(catalog: catalog, logger: logger))
    if let period = configuration.harvestPeriod {
        services.append(HarvestService(harvester: Harvester(catalog: catalog, logger: logger), period: period))
    }
    return Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: [ExpectContinueHandler()])),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kaifang/\(kaifangVersion)"),
        services: services,
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            if configuration.webhooks.publicURL == nil { webhooks.baseURL = "http://\(configuration.host):\(port)" }
            await onRunning(port)
        },
        eventLoopGroupProvider: eventLoopGroup(threads: configuration.eventLoops),
        logger: logger
    )
}

/// The event-loop group for `threads` loops: at the default size, the process's shared loops
/// (NIO's singleton group, which the shared store's connections use too: a batch's reply is read
/// by a loop the server already keeps awake, not by a thread of its own woken for it); else a
/// group of its own for the process's life.
func eventLoopGroup(threads: Int) -> EventLoopGroupProvider {
    threads == AppConfiguration.defaultEventLoops ? .shared(MultiThreadedEventLoopGroup.singleton) : .shared(MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads)))
}

/// Sizes the process's shared loops to `AppConfiguration.defaultEventLoops`; call before
/// anything uses them (NIO fixes the size at first use).
public func useDefaultEventLoops() {
    NIOSingletons.groupLoopCountSuggestion = AppConfiguration.defaultEventLoops
}

/// Runs the catalog's WAL checkpoints off the request path while the server runs (see `Checkpointer`).
struct CheckpointService: Service {
    let checkpointer: Checkpointer

    func run() async throws {
        try checkpointer.start()
        defer { checkpointer.stop() }
        try? await gracefulShutdown()
    }
}

/// The sandbox's worker pool: recovers jobs a previous run left running, then runs queued jobs,
/// at most `count` child processes at once.
struct SandboxWorkers: Service {
    let jobs: JobService
    let wake: JobWake
    let children: ChildRegistry
    let count: Int
    let logger: Logger

    func run() async throws {
        recover()
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        while !Task.isCancelled {
                            do {
                                if let done = try await jobs.run(nil, registry: children) {
                                    logger.info("sandbox job finished", metadata: ["job": "\(done.id)", "status": "\(done.status.rawValue)"])
                                    continue
                                }
                            } catch is CancellationError {
                                return
                            } catch {
                                logger.error("sandbox worker error", metadata: ["error": "\(error)"])
                            }
                            await wake.wait(timeout: .milliseconds(500))
                        }
                    }
                }
                if jobs.catalog.isShared {
                    // Jobs of a replica that stopped are recovered once their lease runs out.
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .seconds(jobs.lease / 3))
                            if !Task.isCancelled { recover() }
                        }
                    }
                }
            }
        }
    }

    /// Requeues (once) or fails the jobs of stopped workers: with the embedded store every job
    /// left running at start, with a shared store those whose lease ran out.
    func recover() {
        do {
            let recovered = try jobs.recover()
            if !recovered.requeued.isEmpty || !recovered.failed.isEmpty {
                logger.warning("sandbox jobs recovered from a stopped worker", metadata: ["requeued": "\(recovered.requeued.count)", "failed": "\(recovered.failed.count)"])
                Task { await wake.wake() }
            }
        } catch {
            logger.error("sandbox job recovery failed", metadata: ["error": "\(error)"])
        }
    }
}
