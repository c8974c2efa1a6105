import Foundation
import Hummingbird
import KaifangAPI
import Logging
import NIOCore
import OpenAPIHummingbird
import ServiceLifecycle
import Storage

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
    /// How often the harvest scheduler looks for due sources (nil: no scheduler).
    public var harvestPeriod: Duration? = .seconds(30)

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
    catalog: CatalogDatabase,
    logger: Logger,
    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let metrics = ServerMetrics()
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: ProblemMiddleware(logger: logger))
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: AuthMiddleware(catalog: catalog))
    let api = APIHandler(catalog: catalog, metrics: metrics, version: kaifangVersion, configuration: configuration)
    try api.registerHandlers(on: SelectiveTransport(base: router, skip: ["GET /v1/datasets/{id}/rows"]))
    router.get("/v1/datasets/:id/rows") { request, context -> Response in
        let id = try context.parameters.require("id")
        let query = request.uri.queryParameters
        func int(_ name: String) throws -> Int? {
            guard let v = query[name[...]].map(String.init) else { return nil }
            guard let n = Int(v) else { throw Problem(status: .badRequest, detail: "\(name) must be an integer") }
            return n
        }
        let body = try await api.rowsBody(id: id, limit: try int("_limit"), fields: query["_fields"].map(String.init),
                                    sort: query["_sort"].map(String.init), cursor: query["_cursor"].map(String.init))
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
    let portal = Portal(library: try Portal.templates(), catalog: catalog, stewardship: api.stewardship, plans: api.plans)
    portal.addRoutes(to: router, limiter: api.limiter)
    var services: [any Service] = []
    if let period = configuration.harvestPeriod {
        services.append(HarvestService(harvester: Harvester(catalog: catalog, logger: logger), period: period))
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kaifang/\(kaifangVersion)"),
        services: services,
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger
    )
}
