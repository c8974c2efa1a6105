import Crypto
import Foundation
import Hummingbird
import KaifangCore
@testable import KaifangServer
import Logging
import Audit
import Storage
import Testing

/// A webhook receiver on a loopback port: records every POST and answers the status set.
final class WebhookReceiver: @unchecked Sendable {
    struct Hit { let headers: [String: String]; let body: Data; let at: Date }
    private let lock = NSLock()
    private var recorded: [Hit] = []
    private var answer = 200
    private(set) var port = 0
    private var task: Task<Void, any Error>?

    var hits: [Hit] { lock.withLock { recorded } }
    var status: Int {
        get { lock.withLock { answer } }
        set { lock.withLock { answer = newValue } }
    }
    var url: String { "http://127.0.0.1:\(port)/hook" }

    private func record(_ hit: Hit) -> Int { lock.withLock { recorded.append(hit); return answer } }

    func start() async throws {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let status = self.record(Hit(headers: headers, body: Data(buffer.readableBytesView), at: Date()))
            return Response(status: .init(code: status))
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .warning
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0); continuation.finish() },
                              logger: logger)
        task = Task { try await app.run() }
        for await p in stream { port = p }
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
    }
}

/// Webhooks end to end: registered through the API, fired by a publication, signed, retried
/// with backoff against a failing receiver and finally disabled; bad targets refused.
@Suite struct WebhookTests {
    /// Fast retries for the tests: the same mechanism, seconds instead of minutes.
    static func configure(_ c: inout AppConfiguration, maxFailures: Int = 3, window: Double = 60) {
        c.webhooks.networks = WebhookNetworks(allowPublic: true, networks: [], allowLoopback: true)
        c.webhooks.pollPeriod = .milliseconds(50)
        c.webhooks.retryBase = 0.3
        c.webhooks.retryCap = 5
        c.webhooks.maxFailures = maxFailures
        c.webhooks.window = window
    }

    /// Waits (up to 20 s) for `condition`.
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(20)
        while Date() < end {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// The signature a receiver computes: HMAC-SHA256 of "t.body" keyed by the secret.
    static func verify(_ hit: WebhookReceiver.Hit, secret: String) -> Bool {
        guard let header = hit.headers["kaifang-signature"] else { return false }
        var parts: [String: String] = [:]
        for p in header.split(separator: ",") {
            let kv = p.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { parts[String(kv[0])] = String(kv[1]) }
        }
        guard let t = parts["t"], let v1 = parts["v1"] else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(t).".utf8) + hit.body, using: SymmetricKey(data: Data(secret.utf8)))
        return Array(mac).hexString == v1
    }

    @Test func aPublicationDeliversASignedEvent() async throws {
        let receiver = WebhookReceiver()
        try await receiver.start()
        defer { Task { await receiver.stop() } }
        try await LiveServer.with(configure: { Self.configure(&$0) }) { s in
            let (_, key) = try s.catalog.createKey(role: .developer, name: "app", account: nil, actor: "t")
            let (_, otherKey) = try s.catalog.createKey(role: .developer, name: "other", account: nil, actor: "t")
            let made = try await s.get("/v1/me/webhooks", key: key, json: ["url": receiver.url, "dataset": "enterprises"])
            #expect(made.status == 201, "\(made.text)")
            let hook = try #require(made.object["webhook"] as? [String: Any])
            let id = try #require(hook["id"] as? String)
            let secret = try #require(made.object["secret"] as? String)
            #expect(secret.hasPrefix("whsec_") && hook["active"] as? Bool == true && hook["dataset"] as? String == "enterprises")
            let everything = try await s.get("/v1/me/webhooks", key: otherKey, json: ["url": receiver.url])
            #expect(everything.status == 201)
            let allSecret = try #require(everything.object["secret"] as? String)
            #expect(allSecret != secret)

            _ = try VersionChangesTests.secondVersion(s)
            try s.catalog.publish(dataset: "enterprises", version: 2, tier: .open, actor: "t")
            #expect(try await Self.eventually { receiver.hits.count == 2 })
            let hits = receiver.hits
            let mine = try #require(hits.first { Self.verify($0, secret: secret) })
            let theirs = try #require(hits.first { Self.verify($0, secret: allSecret) })
            #expect(mine.headers["kaifang-delivery"] != theirs.headers["kaifang-delivery"])
            #expect(!Self.verify(mine, secret: allSecret), "each webhook signs with its own secret")
            #expect(mine.headers["kaifang-event"] == "dataset.published" && mine.headers["content-type"] == "application/json")
            let event = try #require(try JSONSerialization.jsonObject(with: mine.body) as? [String: Any])
            #expect(event["type"] as? String == "dataset.published" && event["dataset"] as? String == "enterprises")
            #expect(event["version"] as? Int == 2 && event["tier"] as? String == "open" && (event["id"] as? String)?.hasPrefix("evt_") == true)
            let changes = try #require(event["changes"] as? [String: Any])
            #expect(changes["base"] as? Int == 1 && changes["added"] as? Int == 1 && changes["removed"] as? Int == 10 && changes["changed"] as? Int == 10)
            let links = try #require(event["links"] as? [String: String])
            #expect(links["changes"] == "http://127.0.0.1:\(s.port)/v1/datasets/enterprises/versions/2/changes")
            #expect(try await s.get(String(links["dataset"]!.dropFirst("http://127.0.0.1:\(s.port)".count))).status == 200)
            #expect(try JSONSerialization.jsonObject(with: theirs.body) as? [String: Any] != nil)

            // The holder reads the log; another key sees none of it.
            let log = try await s.get("/v1/me/webhooks/\(id)/deliveries", key: key)
            let entries = try #require(log.object["deliveries"] as? [[String: Any]])
            #expect(entries.count == 1 && entries[0]["status"] as? String == "delivered" && entries[0]["attempts"] as? Int == 1)
            #expect(entries[0]["last_status"] as? Int == 200 && entries[0]["event"] as? String == event["id"] as? String)
            #expect(String(describing: entries[0]["id"]!) == mine.headers["kaifang-delivery"])
            #expect(try await s.get("/v1/me/webhooks/\(id)/deliveries", key: otherKey).status == 404)
            #expect(try await s.get("/v1/me/webhooks/\(id)", key: otherKey, method: "DELETE").status == 404)

            // A withdrawal of another dataset reaches only the catalog-wide webhook.
            try s.catalog.withdraw(dataset: "residents", actor: "t")
            #expect(try await Self.eventually { receiver.hits.count == 3 })
            let withdrawn = receiver.hits[2]
            #expect(Self.verify(withdrawn, secret: allSecret) && withdrawn.headers["kaifang-event"] == "dataset.withdrawn")

            // Removed: no more deliveries; the record and its log stay.
            #expect(try await s.get("/v1/me/webhooks/\(id)", key: key, method: "DELETE").status == 204)
            #expect(try await s.get("/v1/me/webhooks/\(id)", key: key, method: "DELETE").status == 404)
            let listed = try #require(try await s.get("/v1/me/webhooks", key: key).object["webhooks"] as? [[String: Any]])
            #expect(listed.count == 1 && listed[0]["active"] as? Bool == false && listed[0]["disabled_reason"] as? String == CatalogRules.removedByHolder)
            try s.catalog.publish(dataset: "enterprises", version: 1, tier: .open, actor: "t")
            #expect(try await Self.eventually { receiver.hits.count == 4 })
            #expect(Self.verify(receiver.hits[3], secret: allSecret))
            #expect(try s.catalog.webhookDeliveries(webhook: id, limit: 10).count == 1)
        }
    }

    @Test func aFailingReceiverIsRetriedWithBackoffThenDisabled() async throws {
        let receiver = WebhookReceiver()
        try await receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.status = 500
        try await LiveServer.with(configure: { Self.configure(&$0, maxFailures: 3) }) { s in
            let (_, key) = try s.catalog.createKey(role: .developer, name: "app", account: nil, actor: "t")
            let made = try await s.get("/v1/me/webhooks", key: key, json: ["url": receiver.url])
            let id = try #require((made.object["webhook"] as? [String: Any])?["id"] as? String)
            try s.catalog.publish(dataset: "air-quality", version: nil, tier: .open, actor: "t")
            #expect(try await Self.eventually { try s.catalog.webhook(id)?.isActive == false })
            let hits = receiver.hits
            #expect(hits.count == 3, "three attempts, then disabled")
            #expect(Set(hits.map { $0.headers["kaifang-delivery"] ?? "" }).count == 1, "the same delivery each time")
            // Each wait at least the backoff, doubling: 0.3 s, then 0.6 s (later under load, never sooner).
            let gaps = zip(hits.dropFirst(), hits).map { $0.at.timeIntervalSince($1.at) }
            #expect(gaps.count == 2 && gaps[0] >= 0.3 - 0.02 && gaps[1] >= 0.6 - 0.02, "\(gaps)")
            let listed = try #require(try await s.get("/v1/me/webhooks", key: key).object["webhooks"] as? [[String: Any]])
            #expect(listed[0]["active"] as? Bool == false && (listed[0]["disabled_reason"] as? String)?.contains("3 failed deliveries in a row") == true)
            let log = try #require(try await s.get("/v1/me/webhooks/\(id)/deliveries", key: key).object["deliveries"] as? [[String: Any]])
            #expect(log.count == 1 && log[0]["status"] as? String == "failed" && log[0]["attempts"] as? Int == 3 && log[0]["last_status"] as? Int == 500)
            #expect((log[0]["last_error"] as? String)?.contains("answered HTTP 500") == true)
            #expect(try s.catalog.auditEvents(dataset: nil, actor: "webhooks", limit: nil).map(\.event.action) == ["webhook.disable"])
            // Disabled: a publication adds nothing to its queue.
            receiver.status = 200
            try s.catalog.publish(dataset: "air-quality", version: nil, tier: .open, actor: "t")
            #expect(try s.catalog.webhookDeliveries(webhook: id, limit: 10).count == 1)
        }
    }

    @Test func anEventNotDeliveredWithinTheWindowIsGivenUp() async throws {
        let receiver = WebhookReceiver()
        try await receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.status = 503
        // Retries after 0.3 s, 0.6 s, 1.2 s: the third lies past a window of 2 s (on a busy
        // machine fewer attempts fit; the delivery is given up all the same).
        try await LiveServer.with(configure: { Self.configure(&$0, maxFailures: 10, window: 2) }) { s in
            let (_, key) = try s.catalog.createKey(role: .developer, name: "app", account: nil, actor: "t")
            let made = try await s.get("/v1/me/webhooks", key: key, json: ["url": receiver.url, "dataset": "air-quality"])
            let id = try #require((made.object["webhook"] as? [String: Any])?["id"] as? String)
            try s.catalog.publish(dataset: "air-quality", version: nil, tier: .open, actor: "t")
            #expect(try await Self.eventually { try s.catalog.webhookDeliveries(webhook: id, limit: 1).first?.status == "failed" })
            let d = try #require(try s.catalog.webhookDeliveries(webhook: id, limit: 1).first)
            // How many attempts fit depends on the machine's pace; each one reached the receiver,
            // and the event stopped long before the webhook's ten failures.
            #expect(d.attempts < 10 && receiver.hits.count == d.attempts, "\(d)")
            #expect(d.attempts == 0 || d.lastStatus == 503, "\(d)")
            #expect(try s.catalog.webhook(id)?.isActive == true, "given up on one event, the webhook stays")
        }
    }

    @Test func badTargetsAreRefusedWithWhatToDo() async throws {
        try await LiveServer.with(configure: { Self.configure(&$0) }) { s in
            let (_, key) = try s.catalog.createKey(role: .developer, name: "app", account: nil, actor: "t")
            for (body, status, words) in [
                (["url": "ftp://example.org/hook"], 400, "http:// or https://"),
                (["url": "http://10.1.2.3/hook"], 400, "outside the networks"),
                (["url": "http://[fd00::1]/hook"], 400, "outside the networks"),
                (["url": "http://user:pw@127.0.0.1:9/hook"], 400, "user name or password"),
                (["url": "http://127.0.0.1:9/hook", "dataset": "nobody"], 404, "no dataset 'nobody'"),
                (["url": ""], 400, "url"),
            ] as [([String: String], Int, String)] {
                let r = try await s.get("/v1/me/webhooks", key: key, json: body)
                #expect(r.status == status && r.headers["content-type"]?.hasPrefix("application/problem+json") == true, "\(body): \(r.text)")
                #expect((r.object["detail"] as? String)?.contains(words) == true, "\(body): \(r.text)")
            }
            #expect(try await s.get("/v1/me/webhooks", json: ["url": "http://127.0.0.1:9/hook"]).status == 401)
            for i in 0..<CatalogRules.webhooksPerKey {
                #expect(try await s.get("/v1/me/webhooks", key: key, json: ["url": "http://127.0.0.1:9/\(i)"]).status == 201)
            }
            let full = try await s.get("/v1/me/webhooks", key: key, json: ["url": "http://127.0.0.1:9/x"])
            #expect(full.status == 409 && full.text.contains("already has \(CatalogRules.webhooksPerKey) active webhooks"))
        }
    }

    @Test func theNetworksAllowWhatTheOperatorSaid() throws {
        let standard = try WebhookNetworks(allow: [], loopback: false)
        #expect(standard.allowPublic && !standard.allowLoopback)
        for (a, isPublic) in [("8.8.8.8", true), ("2606:4700::1", true), ("10.1.2.3", false), ("172.16.0.1", false), ("192.168.1.1", false),
                            ("100.64.0.1", false), ("169.254.169.254", false), ("127.0.0.1", false), ("::1", false), ("fd00::1", false),
                            ("fe80::1", false), ("::ffff:10.0.0.1", false), ("::ffff:8.8.8.8", true), ("2001:db8::1", false),
                            ("224.0.0.1", false), ("0.0.0.0", false), ("192.0.2.7", false)] {
            #expect(standard.allows(try #require(IPAddress(a))) == isPublic, "\(a)")
        }
        #expect { try standard.check(url: "http://127.0.0.1:8080/h") } throws: { ($0 as? KaifangError)?.message.contains("--webhook-loopback") == true }
        #expect { try standard.check(url: "http://localhost:8080/h") } throws: { ($0 as? KaifangError)?.message.contains("loopback") == true }
        let office = try WebhookNetworks(allow: ["10.20.0.0/16"], loopback: false)
        #expect(!office.allowPublic)
        #expect(office.allows(try #require(IPAddress("10.20.3.4"))))
        #expect(!office.allows(try #require(IPAddress("10.21.0.1"))))
        #expect(!office.allows(try #require(IPAddress("8.8.8.8"))))
        let loop = try WebhookNetworks(allow: ["127.0.0.0/8"], loopback: false)
        #expect(!loop.allows(try #require(IPAddress("127.0.0.1"))), "loopback only with the flag")
        #expect(try WebhookNetworks(allow: ["public"], loopback: true).allows(try #require(IPAddress("::1"))))
        #expect { try WebhookNetworks(allow: ["10.0.0.0/33"], loopback: false) } throws: { ($0 as? KaifangError)?.message.contains("10.0.0.0/33") == true }
        #expect { try WebhookNetworks(allow: ["intranet"], loopback: false) } throws: { ($0 as? KaifangError)?.kind == .badInput }
        // The retry schedule: doubling from the base, capped; no retry past the window.
        let catalog = try TestStore.make(dataDir: FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-wh-\(UUID().uuidString)").path)
        defer { TestStore.close(catalog) }
        let dispatcher = WebhookDispatcher(catalog: catalog, settings: WebhookSettings(), baseURL: "http://x", logger: Logger(label: "t"))
        func delivery(age: Double, attempts: Int) -> WebhookDelivery {
            WebhookDelivery(id: 1, webhookID: "wh_1", event: DatasetEvent(seq: 1, dataset: "d", kind: "published", version: 1, tier: .open, at: ""),
                            status: "pending", attempts: attempts, nextAt: nil, lastStatus: nil, lastError: nil,
                            createdAt: AuditChain.timestamp(Date().addingTimeInterval(-age)), deliveredAt: nil)
        }
        guard case .failed(_, _, let soon?) = dispatcher.failure(delivery(age: 0, attempts: 0), status: 500, error: "e") else {
            Issue.record("a first failure is retried"); return
        }
        #expect(abs((AuditChain.date(soon) ?? .distantPast).timeIntervalSinceNow - 30) < 2)
        #expect(dispatcher.failure(delivery(age: 86_400 - 100, attempts: 3), status: 500, error: "e") == .failed(status: 500, error: "e", retryAt: nil))
        var settings = WebhookSettings()
        #expect((1...9).map { settings.delay(afterAttempts: $0) } == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600])
        settings.retryBase = 1
        #expect(settings.delay(afterAttempts: 3) == 4)
    }
}
