import Audit
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import KaifangCore
import Logging
import Publishing
import ServiceLifecycle
import Storage

/// Where webhooks may point: every address a URL's host resolves to must be in one of the
/// allowed networks, checked when a webhook is registered and again before each delivery.
/// Loopback addresses are allowed only with `allowLoopback`, whatever the networks say.
public struct WebhookNetworks: Sendable, Equatable {
    /// Public unicast addresses (not private, shared, link-local, documentation, multicast…).
    public var allowPublic: Bool
    public var networks: [IPNetwork]
    public var allowLoopback: Bool

    public static let `default` = WebhookNetworks(allowPublic: true, networks: [], allowLoopback: false)

    public init(allowPublic: Bool, networks: [IPNetwork], allowLoopback: Bool) {
        self.allowPublic = allowPublic; self.networks = networks; self.allowLoopback = allowLoopback
    }

    /// From `--webhook-allow` values: `public` or a CIDR block each (none: `public`).
    /// - Throws: `KaifangError.badInput` naming the value that is neither.
    public init(allow: [String], loopback: Bool) throws {
        var pub = allow.isEmpty, nets: [IPNetwork] = []
        for spec in allow {
            if spec.lowercased() == "public" { pub = true; continue }
            guard let n = IPNetwork(spec) else {
                throw KaifangError.badInput("--webhook-allow '\(spec)' is neither 'public' nor a network such as 10.20.0.0/16 or fd00::/8")
            }
            nets.append(n)
        }
        self.init(allowPublic: pub, networks: nets, allowLoopback: loopback)
    }

    /// What the allowed networks are, for messages.
    public var summary: String {
        let parts = (allowPublic ? ["public addresses"] : []) + networks.map(\.description) + (allowLoopback ? ["loopback"] : [])
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// Whether one address may receive webhooks.
    public func allows(_ address: IPAddress) -> Bool {
        let a = address.unmapped
        if a.isLoopback { return allowLoopback }
        if networks.contains(where: { $0.contains(a) }) { return true }
        return allowPublic && a.isPublic
    }

    /// Checks where `url` points; the addresses its host resolves to.
    /// - Throws: `KaifangError.badInput` saying which address is outside the allowed networks and
    ///   what the operator can do, or that the host does not resolve.
    @discardableResult
    public func check(url: String) throws -> [IPAddress] {
        guard let host = URLComponents(string: url)?.host, !host.isEmpty else {
            throw KaifangError.badInput("url has no host: write it as https://host/path")
        }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let addresses = IPAddress(bare).map { [$0] } ?? IPAddress.resolve(bare)
        guard !addresses.isEmpty else {
            throw KaifangError.badInput("url's host '\(bare)' does not resolve here: give a host name this server can look up, or an address")
        }
        for a in addresses where !allows(a) {
            if a.unmapped.isLoopback {
                throw KaifangError.badInput("url's host '\(bare)' is a loopback address (\(a)): webhooks go to loopback only on a server started with --webhook-loopback")
            }
            throw KaifangError.badInput("url's host '\(bare)' resolves to \(a), outside the networks this server sends webhooks to (\(summary)): use a public address, or ask the operator to allow the network (--webhook-allow CIDR)")
        }
        return addresses
    }
}

/// An IPv4 or IPv6 address, as its 4 or 16 bytes.
public struct IPAddress: Sendable, Equatable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The addresses a host name resolves to (empty when it does not).
    static func resolve(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var out: [IPAddress] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let info = p {
            if let sa = info.pointee.ai_addr {
                if info.pointee.ai_family == AF_INET {
                    sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { s in
                        var a = s.pointee.sin_addr
                        out.append(IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }))
                    }
                } else if info.pointee.ai_family == AF_INET6 {
                    sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { s in
                        var a = s.pointee.sin6_addr
                        out.append(IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }))
                    }
                }
            }
            p = info.pointee.ai_next
        }
        var seen: [IPAddress] = []
        for a in out where !seen.contains(a) { seen.append(a) }
        return seen
    }

    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 address.
    var unmapped: IPAddress {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return IPAddress(bytes: Array(bytes[12...]))
        }
        return self
    }

    var isLoopback: Bool {
        bytes.count == 4 ? bytes[0] == 127 : bytes == Array(repeating: 0, count: 15) + [1]
    }

    /// Global unicast: not in the special-purpose blocks of RFC 6890 and its successors.
    var isPublic: Bool {
        if bytes.count == 4 {
            return !Self.specialV4.contains { $0.contains(self) }
        }
        guard IPNetwork("2000::/3")!.contains(self) else { return false }
        return !Self.specialV6.contains { $0.contains(self) }
    }

    static let specialV4: [IPNetwork] = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                                         "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
                                         "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"].map { IPNetwork($0)! }
    /// Teredo and 6to4 embed IPv4 addresses that may be private; documentation addresses.
    static let specialV6: [IPNetwork] = ["2001::/32", "2001:db8::/32", "2002::/16", "3fff::/20"].map { IPNetwork($0)! }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var b = bytes
        let ok = b.withUnsafeMutableBytes { raw in
            inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A block of addresses (`10.0.0.0/8`, `fd00::/8`).
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    public var base: IPAddress
    public var prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let base = IPAddress(parts[0]) else { return nil }
        let width = base.bytes.count * 8
        let prefix = parts.count == 2 ? Int(parts[1]) : width
        guard let prefix, (0...width).contains(prefix) else { return nil }
        self.base = base; self.prefix = prefix
    }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.bytes.count == base.bytes.count else { return false }
        var bits = prefix
        for i in 0..<a.bytes.count where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
            if a.bytes[i] & mask != base.bytes[i] & mask { return false }
            bits -= 8
        }
        return true
    }

    public var description: String { "\(base)/\(prefix)" }
}

/// How webhooks are delivered.
public struct WebhookSettings: Sendable {
    public var networks: WebhookNetworks = .default
    /// The address the payload's links start with (the server as its users reach it).
    public var publicURL: String?
    /// How often the outbox is looked at for due deliveries.
    public var pollPeriod: Duration = .seconds(5)
    /// The first retry waits `retryBase` seconds, each next one twice as long, at most `retryCap`.
    public var retryBase: Double = 30
    public var retryCap: Double = 3600
    /// An event not delivered within this many seconds is given up.
    public var window: Double = 86_400
    /// Failed attempts in a row that disable a webhook.
    public var maxFailures: Int = 15
    /// Seconds a receiver has to answer.
    public var timeout: Double = 10
    /// Deliveries sent at once by one process.
    public var batch: Int = 16

    public init() {}

    /// Seconds before the next attempt after `attempts` failed ones (1, 2, …).
    public func delay(afterAttempts attempts: Int) -> Double {
        min(retryCap, retryBase * pow(2, Double(max(0, attempts - 1))))
    }
}

/// The JSON body of a webhook delivery.
struct WebhookEvent: Encodable {
    struct Changes: Encodable { var base: Int; var added: Int; var removed: Int; var changed: Int }
    var id: String
    var type: String
    var dataset: String
    var title: String
    var version: Int?
    var tier: String?
    var at: String
    var rows: Int?
    var changes: Changes?
    var links: [String: String]
}

/// Sends due webhook deliveries from the store's outbox: signed, no redirects followed, retried
/// with exponential backoff, given up after the window; a webhook failing `maxFailures` times
/// in a row is disabled. Deliveries are at least once: a receiver recognises a repeat by the
/// `Kaifang-Delivery` header.
final class WebhookDispatcher: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    let catalog: any CatalogStore
    let settings: WebhookSettings
    let logger: Logger
    private var session: URLSession!
    private let lock = NSLock()
    private var base: String

    /// What the payload's links start with: the configured public address, else the server's
    /// own once it is bound.
    var baseURL: String {
        get { lock.withLock { base } }
        set { lock.withLock { base = newValue } }
    }

    init(catalog: any CatalogStore, settings: WebhookSettings, baseURL: String, logger: Logger) {
        self.catalog = catalog; self.settings = settings; self.base = baseURL; self.logger = logger
        super.init()
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = settings.timeout
        config.timeoutIntervalForResource = settings.timeout
        config.httpCookieStorage = nil
        config.urlCache = nil
        session = URLSession(configuration: config, delegate: self, delegateQueue: nil)
    }

    /// A redirect is answered as it is (a failure): the checked address is the one delivered to.
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    /// The signing secret of webhook `id` (derived from the platform secret: never stored).
    static func secret(webhook id: String, catalog: any CatalogStore) throws -> String {
        let key = try catalog.pseudonymSecret()
        let mac = HMAC<SHA256>.authenticationCode(for: Data("kaifang-webhook:\(id)".utf8), using: key)
        return "whsec_" + Array(mac).hexString
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" keyed by the secret>`.
    static func signature(secret: String, timestamp: Int, body: Data) -> String {
        var message = Data("\(timestamp).".utf8)
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=\(Array(mac).hexString)"
    }

    func body(_ e: DatasetEvent) throws -> Data {
        let d = try catalog.dataset(e.dataset)
        let baseURL = baseURL
        let api = "\(baseURL)/v1/datasets/\(e.dataset)"
        var links = ["dataset": api, "page": "\(baseURL)/datasets/\(e.dataset)", "feed": "\(api)/feed.atom"]
        var rows: Int?, changes: WebhookEvent.Changes?
        if e.kind == "published", let n = e.version {
            rows = try catalog.version(e.dataset, n)?.rowCount
            links["rows"] = "\(api)/rows"
            if let json = try catalog.versionChanges(e.dataset, n), let diff = try? JSONDecoder().decode(VersionDiff.self, from: Data(json.utf8)) {
                changes = .init(base: diff.base, added: diff.added, removed: diff.removed, changed: diff.changed)
                links["changes"] = "\(api)/versions/\(n)/changes"
            }
        }
        let event = WebhookEvent(id: "evt_\(e.seq)", type: "dataset.\(e.kind)", dataset: e.dataset, title: d?.manifest.title ?? e.dataset,
                                 version: e.version, tier: e.tier?.rawValue, at: e.at, rows: rows, changes: changes, links: links)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(event)
    }

    /// Claims what is due and sends it; the number claimed.
    func runOnce() async -> Int {
        let giveUp = AuditChain.timestamp(Date().addingTimeInterval(-settings.window))
        let due: [DueDelivery]
        do {
            due = try catalog.claimDeliveries(limit: settings.batch, lease: settings.timeout * 3 + 30, giveUpBefore: giveUp)
        } catch {
            logger.error("webhook outbox unreadable", metadata: ["error": "\(error)"])
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for d in due { group.addTask { await self.deliver(d) } }
        }
        return due.count
    }

    func deliver(_ due: DueDelivery) async {
        let d = due.delivery
        var outcome: DeliveryOutcome
        do {
            try settings.networks.check(url: due.webhook.url)
            let body = try body(d.event)
            let timestamp = Int(Date().timeIntervalSince1970)
            let secret = try Self.secret(webhook: due.webhook.id, catalog: catalog)
            guard let url = URL(string: due.webhook.url) else { throw KaifangError.badInput("url does not parse") }
            var request = URLRequest(url: url)
            request.httpMethod = "POST"
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue("Kaifang-Webhooks/\(kaifangVersion)", forHTTPHeaderField: "User-Agent")
            request.setValue("dataset.\(d.event.kind)", forHTTPHeaderField: "Kaifang-Event")
            request.setValue(String(d.id), forHTTPHeaderField: "Kaifang-Delivery")
            request.setValue(Self.signature(secret: secret, timestamp: timestamp, body: body), forHTTPHeaderField: "Kaifang-Signature")
            let (_, response) = try await session.data(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            outcome = (200..<300).contains(status) ? .delivered(status: status) : failure(d, status: status, error: "answered HTTP \(status)")
        } catch let e as KaifangError {
            outcome = failure(d, status: nil, error: e.message)
        } catch {
            outcome = failure(d, status: nil, error: Self.describe(error))
        }
        do {
            try catalog.finishDelivery(d.id, outcome: outcome, maxFailures: settings.maxFailures, actor: "webhooks")
        } catch {
            logger.error("webhook delivery not recorded", metadata: ["webhook": "\(due.webhook.id)", "delivery": "\(d.id)", "error": "\(error)"])
        }
        if case .delivered(let status) = outcome {
            logger.info("webhook delivered", metadata: ["webhook": "\(due.webhook.id)", "delivery": "\(d.id)", "status": "\(status)"])
        } else {
            logger.notice("webhook delivery failed", metadata: ["webhook": "\(due.webhook.id)", "delivery": "\(d.id)", "attempt": "\(d.attempts + 1)"])
        }
    }

    /// A failed attempt: retried after the backoff delay, or given up past the window.
    func failure(_ d: WebhookDelivery, status: Int?, error: String) -> DeliveryOutcome {
        let next = Date().addingTimeInterval(settings.delay(afterAttempts: d.attempts + 1))
        let created = AuditChain.date(d.createdAt) ?? Date()
        let retry = next.timeIntervalSince(created) <= settings.window ? AuditChain.timestamp(next) : nil
        return .failed(status: status, error: error, retryAt: retry)
    }

    /// A transport error in words (no URL: the log of a delivery names its webhook).
    static func describe(_ error: any Error) -> String {
        guard let u = error as? URLError else { return "the request failed" }
        switch u.code {
        case .timedOut: return "no answer within the time allowed"
        case .cannotConnectToHost: return "connection refused"
        case .cannotFindHost, .dnsLookupFailed: return "the host does not resolve"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid:
            return "the TLS connection failed"
        case .networkConnectionLost: return "the connection was lost"
        default: return "the request failed (\(u.code.rawValue))"
        }
    }
}

/// The server's webhook sender: looks at the outbox every `pollPeriod` (at once again while
/// a batch came back full) until shutdown.
struct WebhookService: Service {
    let dispatcher: WebhookDispatcher

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let n = await dispatcher.runOnce()
                if n < dispatcher.settings.batch { try await Task.sleep(for: dispatcher.settings.pollPeriod) }
            }
        }
    }
}
