import Foundation
import KaifangCore

/// A key holder's webhook: where publications and withdrawals of a dataset (or of every dataset)
/// are POSTed, signed.
public struct WebhookRecord: Sendable, Equatable {
    public var id: String
    public var keyID: String
    public var url: String
    /// The dataset followed; nil for the whole catalog.
    public var dataset: String?
    public var createdAt: String
    public var disabledAt: String?
    public var disabledReason: String?
    /// Failed attempts since the last delivered one.
    public var failures: Int
    public var isActive: Bool { disabledAt == nil }

    package init(id: String, keyID: String, url: String, dataset: String?, createdAt: String, disabledAt: String?,
                 disabledReason: String?, failures: Int) {
        self.id = id; self.keyID = keyID; self.url = url; self.dataset = dataset; self.createdAt = createdAt
        self.disabledAt = disabledAt; self.disabledReason = disabledReason; self.failures = failures
    }
}

/// One event to one webhook, from the moment the publication commits until it is delivered or
/// given up (the outbox: filled in the publishing transaction, emptied by the delivery service).
public struct WebhookDelivery: Sendable, Equatable {
    public var id: Int64
    public var webhookID: String
    public var event: DatasetEvent
    /// `pending`, `delivered` or `failed`.
    public var status: String
    public var attempts: Int
    public var nextAt: String?
    public var lastStatus: Int?
    public var lastError: String?
    public var createdAt: String
    public var deliveredAt: String?

    package init(id: Int64, webhookID: String, event: DatasetEvent, status: String, attempts: Int, nextAt: String?, lastStatus: Int?,
                 lastError: String?, createdAt: String, deliveredAt: String?) {
        self.id = id; self.webhookID = webhookID; self.event = event; self.status = status; self.attempts = attempts
        self.nextAt = nextAt; self.lastStatus = lastStatus; self.lastError = lastError; self.createdAt = createdAt; self.deliveredAt = deliveredAt
    }
}

/// A delivery claimed by one delivery worker (for the lease), with where it goes.
public struct DueDelivery: Sendable {
    public var delivery: WebhookDelivery
    public var webhook: WebhookRecord

    package init(delivery: WebhookDelivery, webhook: WebhookRecord) { self.delivery = delivery; self.webhook = webhook }
}

/// How an attempt ended.
public enum DeliveryOutcome: Sendable, Equatable {
    /// Answered 2xx.
    case delivered(status: Int)
    /// Failed; tried again at `retryAt`, or given up when nil.
    case failed(status: Int?, error: String, retryAt: String?)
}

extension CatalogRules {
    /// Active webhooks a key may hold.
    public static let webhooksPerKey = 10
    /// Deliveries shown in a webhook's log.
    public static let deliveryLogLength = 100

    /// A new webhook id (`wh_` and 12 hex digits).
    package static func webhookID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "wh_" + (0..<12).map { _ in String(UInt8.random(in: 0...15, using: &rng), radix: 16) }.joined()
    }

    /// Checks a webhook URL's form (the server checks where its host resolves).
    /// - Throws: `KaifangError.badInput` saying what to send instead.
    package static func webhookURL(_ text: String) throws -> String {
        let url = text.trimmingCharacters(in: .whitespaces)
        guard !url.isEmpty, url.utf8.count <= 2000 else { throw KaifangError.badInput("url must be 1–2000 characters") }
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), ["http", "https"].contains(scheme) else {
            throw KaifangError.badInput("url must be an http:// or https:// address")
        }
        guard let host = c.host, !host.isEmpty else { throw KaifangError.badInput("url has no host: write it as https://host/path") }
        guard c.user == nil, c.password == nil else { throw KaifangError.badInput("url must not carry a user name or password: the signature authenticates Kaifang") }
        guard c.fragment == nil else { throw KaifangError.badInput("url must not have a #fragment") }
        return url
    }

    package static func unknownWebhook(_ id: String) -> KaifangError {
        .notFound("no webhook '\(id)' of this key: GET /v1/me/webhooks lists them")
    }

    package static let tooManyWebhooks = KaifangError.conflict("this key already has \(webhooksPerKey) active webhooks: remove one (DELETE /v1/me/webhooks/{id}) first")

    /// Why a webhook stopped after `n` failed attempts in a row.
    package static func disabledAfter(_ n: Int) -> String {
        "disabled after \(n) failed deliveries in a row: register it again once the receiver answers 2xx"
    }

    package static let removedByHolder = "removed by its holder"
}
