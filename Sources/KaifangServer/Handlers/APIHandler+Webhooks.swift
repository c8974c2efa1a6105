import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Storage

/// A key's webhooks: registering (checked against the allowed networks), listing, removing,
/// and their delivery logs. Each key sees and changes its own only.
extension APIHandler {
    static func webhook(_ w: WebhookRecord) -> Components.Schemas.Webhook {
        .init(id: w.id, url: w.url, dataset: w.dataset, createdAt: date(w.createdAt) ?? Date(timeIntervalSince1970: 0), active: w.isActive,
              disabledAt: date(w.disabledAt), disabledReason: w.disabledReason, failures: w.failures)
    }

    static func delivery(_ d: WebhookDelivery) -> Components.Schemas.WebhookDelivery {
        .init(id: d.id, event: "evt_\(d.event.seq)", _type: .init(rawValue: "dataset.\(d.event.kind)") ?? .init(rawValue: "dataset.withdrawn")!,
              dataset: d.event.dataset, version: d.event.version, status: .init(rawValue: d.status) ?? .failed, attempts: d.attempts,
              nextAttemptAt: date(d.nextAt), lastStatus: d.lastStatus, lastError: d.lastError,
              createdAt: date(d.createdAt) ?? Date(timeIntervalSince1970: 0), deliveredAt: date(d.deliveredAt))
    }

    func createMyWebhook(_ input: Operations.CreateMyWebhook.Input) async throws -> Operations.CreateMyWebhook.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let url = try CatalogRules.webhookURL(body.url)
        try configuration.webhooks.networks.check(url: url)
        let hook = try catalog.createWebhook(keyID: key.id, url: url, dataset: body.dataset, actor: caller.actor)
        let secret = try WebhookDispatcher.secret(webhook: hook.id, catalog: catalog)
        return .created(.init(body: .json(.init(webhook: Self.webhook(hook), secret: secret))))
    }

    func listMyWebhooks(_ input: Operations.ListMyWebhooks.Input) async throws -> Operations.ListMyWebhooks.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        return .ok(.init(body: .json(.init(webhooks: try catalog.webhooks(keyID: key.id).map(Self.webhook)))))
    }

    /// The caller's webhook `id`, or 404 (another key's is not told apart from none).
    func requireOwnWebhook(_ id: String, _ caller: Caller) throws -> WebhookRecord {
        let key = try Self.requireKey(caller)
        guard let w = try catalog.webhook(id), w.keyID == key.id else {
            throw Problem(status: .notFound, detail: "no webhook '\(id)' of this key: GET /v1/me/webhooks lists them")
        }
        return w
    }

    func removeMyWebhook(_ input: Operations.RemoveMyWebhook.Input) async throws -> Operations.RemoveMyWebhook.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let w = try requireOwnWebhook(input.path.webhookId, caller)
        guard w.isActive else {
            throw Problem(status: .notFound, detail: "webhook '\(w.id)' is already stopped (\(w.disabledReason ?? "disabled")): its log stays readable")
        }
        try catalog.disableWebhook(w.id, reason: CatalogRules.removedByHolder, actor: caller.actor)
        return .noContent(.init())
    }

    func listMyWebhookDeliveries(_ input: Operations.ListMyWebhookDeliveries.Input) async throws -> Operations.ListMyWebhookDeliveries.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let w = try requireOwnWebhook(input.path.webhookId, caller)
        let log = try catalog.webhookDeliveries(webhook: w.id, limit: CatalogRules.deliveryLogLength)
        return .ok(.init(body: .json(.init(deliveries: log.map(Self.delivery)))))
    }
}
