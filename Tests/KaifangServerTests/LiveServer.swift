import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KaifangServer
import Logging
import Publishing
import Storage

/// The real server on a loopback port over a temporary data directory with the sample datasets.
final class LiveServer: @unchecked Sendable {
    let dataDir: String
    let catalog: any CatalogStore
    private(set) var port = 0
    private var task: Task<Void, any Error>?

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    var configuration = AppConfiguration(host: "127.0.0.1", port: 0)

    init(loadSamples: Bool = true, configure: (inout AppConfiguration) -> Void = { _ in }) throws {
        configuration.keyRate = 0
        configuration.anonymousRate = 0
        // Sandbox jobs run `kaifang job exec`; this process is the test runner, not kaifang.
        configuration.sandboxExecutable = SandboxAPITests.kaifang
        configure(&configuration)
        ownsDataDir = true
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-e2e-\(UUID().uuidString)").path
        catalog = try TestStore.make(dataDir: dataDir)
        if loadSamples {
            _ = try Demo.load(datasetsFolder: Self.repo.appendingPathComponent("datasets").path, into: catalog, actor: "test")
        }
    }

    private let ownsDataDir: Bool

    /// A second server on `other`'s data directory and catalog (which it leaves in place).
    init(sharing other: LiveServer, configure: (inout AppConfiguration) -> Void) {
        configuration = other.configuration
        configure(&configuration)
        dataDir = other.dataDir
        catalog = other.catalog
        ownsDataDir = false
    }

    /// Starts the server on port 0 and waits until it listens.
    func start() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "kaifang-test")
        logger.logLevel = .warning
        let app = try buildApplication(configuration, catalog: catalog, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        task = Task { try await app.run() }
        for await p in stream { port = p }
        guard port > 0 else { throw URLError(.cannotConnectToHost) }
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        if ownsDataDir {
            TestStore.close(catalog)
            try? FileManager.default.removeItem(atPath: dataDir)
        }
    }

    /// A session without a cache: every request reaches the server as written.
    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.urlCache = nil
        c.requestCachePolicy = .reloadIgnoringLocalCacheData
        return URLSession(configuration: c)
    }()

    struct Reply {
        let status: Int
        let headers: [String: String]
        let body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func get(_ path: String, key: String? = nil, method: String = "GET", json: Any? = nil, body: Data? = nil, headers extra: [String: String] = [:]) async throws -> Reply {
        var req = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        req.httpMethod = method
        // What the server answers, never a cached copy (responses carry entity tags).
        req.cachePolicy = .reloadIgnoringLocalCacheData
        for (name, value) in extra { req.setValue(value, forHTTPHeaderField: name) }
        if let json {
            if method == "GET" { req.httpMethod = "POST" }
            req.httpBody = try JSONSerialization.data(withJSONObject: json)
            req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let body { req.httpBody = body }
        if let key { req.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await Self.session.data(for: req)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields { headers[String(describing: k).lowercased()] = String(describing: v) }
        return Reply(status: http.statusCode, headers: headers, body: data)
    }

    /// Runs `body` against a started server and always stops it.
    static func with(loadSamples: Bool = true, configure: (inout AppConfiguration) -> Void = { _ in },
                     _ body: (LiveServer) async throws -> Void) async throws {
        let server = try LiveServer(loadSamples: loadSamples, configure: configure)
        try await server.start()
        do { try await body(server) } catch { await server.stop(); throw error }
        await server.stop()
    }
}
