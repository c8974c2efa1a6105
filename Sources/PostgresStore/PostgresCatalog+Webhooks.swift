import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

extension PostgresCatalog {
    // MARK: - Webhooks

    func webhookRecord(_ r: PGRow) throws -> WebhookRecord {
        WebhookRecord(id: try r.string("id"), keyID: try r.string("key_id"), url: try r.string("url"), dataset: try r.optString("dataset_id"),
                      createdAt: try r.string("created_at"), disabledAt: try r.optString("disabled_at"),
                      disabledReason: try r.optString("disabled_reason"), failures: try r.int("failures"))
    }

    static let deliverySelect = """
        SELECT d.*, e.dataset_id, e.kind, e.version, e.tier, e.at
        FROM webhook_deliveries d JOIN dataset_events e ON e.seq = d.event_seq
        """

    func deliveryRecord(_ r: PGRow) throws -> WebhookDelivery {
        WebhookDelivery(id: try r.int64("id"), webhookID: try r.string("webhook_id"),
                        event: DatasetEvent(seq: try r.int64("event_seq"), dataset: try r.string("dataset_id"), kind: try r.string("kind"),
                                            version: try r.optInt("version"), tier: try r.optString("tier").flatMap(Tier.init(rawValue:)),
                                            at: try r.string("at")),
                        status: try r.string("status"), attempts: try r.int("attempts"), nextAt: try r.optString("next_at"),
                        lastStatus: try r.optInt("last_status"), lastError: try r.optString("last_error"), createdAt: try r.string("created_at"),
                        deliveredAt: try r.optString("delivered_at"))
    }

    /// Adds event `seq` to the outbox of every active webhook that follows `dataset` (or
    /// everything) and whose key is in force; part of the publishing transaction.
    func enqueueDeliveries(_ tx: PGTransaction, seq: Int64, dataset: String) throws {
        let now = CatalogRules.now()
        try tx.query("""
            INSERT INTO webhook_deliveries (webhook_id, event_seq, status, attempts, next_at, created_at)
            SELECT w.id, \(seq), 'pending', 0, \(now), \(now) FROM webhooks w
            JOIN api_keys k ON k.id = w.key_id LEFT JOIN accounts a ON a.id = k.account_id
            WHERE w.disabled_at IS NULL AND k.revoked_at IS NULL AND a.suspended_at IS NULL
              AND (w.dataset_id IS NULL OR w.dataset_id = \(dataset))
            ORDER BY w.id
            """)
    }

    public func createWebhook(keyID: String, url: String, dataset: String?, actor: String) throws -> WebhookRecord {
        let url = try CatalogRules.webhookURL(url)
        let id = CatalogRules.webhookID()
        return try write { tx, chain in
            if let dataset, try tx.query("SELECT 1 FROM datasets WHERE id = \(dataset)").isEmpty { throw CatalogRules.noDataset(dataset) }
            // The key's row is locked so two registrations at once cannot both pass the count.
            _ = try tx.query("SELECT id FROM api_keys WHERE id = \(keyID) FOR UPDATE")
            let active = try tx.query("SELECT count(*) AS n FROM webhooks WHERE key_id = \(keyID) AND disabled_at IS NULL").first?.int64("n") ?? 0
            guard active < CatalogRules.webhooksPerKey else { throw CatalogRules.tooManyWebhooks }
            guard let row = try tx.query("""
                INSERT INTO webhooks (id, key_id, url, dataset_id, created_at) VALUES (\(id), \(keyID), \(url), \(dataset), \(CatalogRules.now())) RETURNING *
                """).first else { throw KaifangError.runtime("the webhook just made is missing") }
            var detail: [String: JSONValue] = ["webhook": .string(id), "key": .string(keyID)]
            if let dataset { detail["followed"] = .string(dataset) }
            try chain.append(tx, actor: actor, action: "webhook.create", dataset: dataset, detail: detail)
            return try webhookRecord(row)
        }
    }

    public func webhooks(keyID: String?) throws -> [WebhookRecord] {
        let rows = keyID == nil
            ? try client.query("SELECT * FROM webhooks ORDER BY created_at DESC, id")
            : try client.query("SELECT * FROM webhooks WHERE key_id = \(keyID) ORDER BY created_at DESC, id")
        return try rows.map(webhookRecord)
    }

    public func webhook(_ id: String) throws -> WebhookRecord? {
        try client.query("SELECT * FROM webhooks WHERE id = \(id)").first.map(webhookRecord)
    }

    public func disableWebhook(_ id: String, reason: String, actor: String) throws {
        try write { tx, chain in
            guard let row = try tx.query("SELECT * FROM webhooks WHERE id = \(id) FOR UPDATE").first else { throw CatalogRules.unknownWebhook(id) }
            guard try webhookRecord(row).isActive else { throw KaifangError.conflict("webhook '\(id)' is already stopped") }
            try stopWebhook(tx, &chain, id: id, reason: reason, actor: actor)
        }
    }

    func stopWebhook(_ tx: PGTransaction, _ chain: inout ChainCursor, id: String, reason: String, actor: String) throws {
        try tx.query("UPDATE webhooks SET disabled_at = \(CatalogRules.now()), disabled_reason = \(reason) WHERE id = \(id)")
        try tx.query("""
            UPDATE webhook_deliveries SET status = 'failed', next_at = NULL, lease_until = NULL,
                last_error = coalesce(last_error || '; ', '') || 'the webhook was stopped: ' || \(reason)
            WHERE webhook_id = \(id) AND status = 'pending'
            """)
        try chain.append(tx, actor: actor, action: "webhook.disable", dataset: nil, detail: ["webhook": .string(id), "reason": .string(reason)])
    }

    public func webhookDeliveries(webhook: String, limit: Int) throws -> [WebhookDelivery] {
        try client.query("\(unescaped: Self.deliverySelect) WHERE d.webhook_id = \(webhook) ORDER BY d.id DESC LIMIT \(limit)")
            .map(deliveryRecord)
    }

    public func claimDeliveries(limit: Int, lease: Double, giveUpBefore: String) throws -> [DueDelivery] {
        let now = CatalogRules.now(), until = AuditChain.timestamp(Date().addingTimeInterval(lease))
        // Outbox bookkeeping appends nothing to the audit chain: it does not take the chain's lock.
        return try client.transaction { tx in
            try tx.query("""
                UPDATE webhook_deliveries SET status = 'failed', next_at = NULL, lease_until = NULL,
                    last_error = coalesce(last_error || '; ', '') || 'given up: not delivered within the retry window'
                WHERE status = 'pending' AND created_at < \(giveUpBefore)
                """)
            // Rows another worker holds are skipped, not waited for: each goes to one worker.
            let ids = try tx.query("""
                UPDATE webhook_deliveries SET lease_until = \(until) WHERE id IN (
                    SELECT d.id FROM webhook_deliveries d
                    JOIN webhooks w ON w.id = d.webhook_id JOIN api_keys k ON k.id = w.key_id LEFT JOIN accounts a ON a.id = k.account_id
                    WHERE d.status = 'pending' AND d.next_at <= \(now) AND (d.lease_until IS NULL OR d.lease_until <= \(now))
                      AND w.disabled_at IS NULL AND k.revoked_at IS NULL AND a.suspended_at IS NULL
                    ORDER BY d.next_at, d.id LIMIT \(limit) FOR UPDATE OF d SKIP LOCKED)
                RETURNING id
                """).map { try $0.int64("id") }
            guard !ids.isEmpty else { return [] }
            let deliveries = try tx.query("\(unescaped: Self.deliverySelect) WHERE d.id = ANY(\(ids)) ORDER BY d.next_at, d.id").map(deliveryRecord)
            let hooks = try tx.query("SELECT * FROM webhooks WHERE id = ANY(\(Array(Set(deliveries.map(\.webhookID)))))").map(webhookRecord)
            let byID = Dictionary(hooks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            return deliveries.compactMap { d in byID[d.webhookID].map { DueDelivery(delivery: d, webhook: $0) } }
        }
    }

    public func finishDelivery(_ id: Int64, outcome: DeliveryOutcome, maxFailures: Int, actor: String) throws {
        let now = CatalogRules.now()
        // The attempt is recorded without the chain's lock; stopping the webhook, an audited
        // change, takes it afterwards (a process stopped in between leaves the count at the
        // limit, and the next failure stops it).
        let stop: String? = try client.transaction { tx in
            guard let webhookID = try tx.query("SELECT webhook_id FROM webhook_deliveries WHERE id = \(id) AND status = 'pending' FOR UPDATE").first?.string("webhook_id") else {
                return nil
            }
            switch outcome {
            case .delivered(let status):
                try tx.query("""
                    UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = \(status), last_error = NULL,
                        next_at = NULL, lease_until = NULL, delivered_at = \(now) WHERE id = \(id)
                    """)
                try tx.query("UPDATE webhooks SET failures = 0 WHERE id = \(webhookID)")
                return nil
            case .failed(let status, let error, let retryAt):
                try tx.query("""
                    UPDATE webhook_deliveries SET status = \(retryAt == nil ? "failed" : "pending"), attempts = attempts + 1, last_status = \(status),
                        last_error = \(error), next_at = \(retryAt), lease_until = NULL WHERE id = \(id)
                    """)
                let row = try tx.query("UPDATE webhooks SET failures = failures + 1 WHERE id = \(webhookID) RETURNING failures, disabled_at").first
                guard let row, try row.int("failures") >= maxFailures, try row.optString("disabled_at") == nil else { return nil }
                return webhookID
            }
        }
        guard let stop else { return }
        try write { tx, chain in
            guard let row = try tx.query("SELECT disabled_at FROM webhooks WHERE id = \(stop) FOR UPDATE").first, try row.optString("disabled_at") == nil else { return }
            try stopWebhook(tx, &chain, id: stop, reason: CatalogRules.disabledAfter(maxFailures), actor: actor)
        }
    }
}
