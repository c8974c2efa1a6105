import Foundation
import Hummingbird
import KaifangAPI
import Logging
import NIOCore
import OpenAPIHummingbird
import Storage

/// How to run the server.
public struct AppConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level

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
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: ProblemMiddleware(logger: logger))
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: AuthMiddleware(catalog: catalog))
    let api = APIHandler(catalog: catalog, metrics: metrics, version: kaifangVersion)
    try api.registerHandlers(on: router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kaifang/\(kaifangVersion)"),
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger
    )
}
