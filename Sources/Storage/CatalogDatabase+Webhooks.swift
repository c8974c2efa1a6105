import Audit
import Foundation
import GRDB
import KaifangCore

extension CatalogDatabase {
    // MARK: - Webhooks

    static func webhookRecord(_ row: Row) -> WebhookRecord {
        WebhookRecord(id: row["id"], keyID: row["key_id"], url: row["url"], dataset: row["dataset_id"], createdAt: row["created_at"],
                      disabledAt: row["disabled_at"], disabledReason: row["disabled_reason"], failures: row["failures"])
    }

    /// The columns `deliveryRecord` reads: a delivery with its event.
    static let deliverySelect = """
        SELECT d.*, e.dataset_id, e.kind, e.version, e.tier, e.at
        FROM webhook_deliveries d JOIN dataset_events e ON e.seq = d.event_seq
        """

    static func deliveryRecord(_ row: Row) -> WebhookDelivery {
        WebhookDelivery(id: row["id"], webhookID: row["webhook_id"],
                        event: DatasetEvent(seq: row["event_seq"], dataset: row["dataset_id"], kind: row["kind"], version: row["version"],
                                            tier: (row["tier"] as String?).flatMap(Tier.init(rawValue:)), at: row["at"]),
                        status: row["status"], attempts: row["attempts"], nextAt: row["next_at"], lastStatus: row["last_status"],
                        lastError: row["last_error"], createdAt: row["created_at"], deliveredAt: row["delivered_at"])
    }

    /// Adds event `seq` to the outbox of every active webhook that follows `dataset` (or
    /// everything) and whose key is in force; part of the publishing transaction.
    static func enqueueDeliveries(_ db: Database, seq: Int64, dataset: String) throws {
        let now = Self.now()
        try db.execute(sql: """
            INSERT INTO webhook_deliveries (webhook_id, event_seq, status, attempts, next_at, created_at)
            SELECT w.id, ?, 'pending', 0, ?, ? FROM webhooks w
            JOIN api_keys k ON k.id = w.key_id LEFT JOIN accounts a ON a.id = k.account_id
            WHERE w.disabled_at IS NULL AND k.revoked_at IS NULL AND a.suspended_at IS NULL
              AND (w.dataset_id IS NULL OR w.dataset_id = ?)
            ORDER BY w.id
            """, arguments: [seq, now, now, dataset])
    }

    public func createWebhook(keyID: String, url: String, dataset: String?, actor: String) throws -> WebhookRecord {
        let url = try CatalogRules.webhookURL(url)
        let id = CatalogRules.webhookID()
        return try write { db in
            if let dataset, try Row.fetchOne(db, sql: "SELECT 1 FROM datasets WHERE id = ?", arguments: [dataset]) == nil {
                throw CatalogRules.noDataset(dataset)
            }
            let active = try Int.fetchOne(db, sql: "SELECT count(*) FROM webhooks WHERE key_id = ? AND disabled_at IS NULL", arguments: [keyID]) ?? 0
            guard active < CatalogRules.webhooksPerKey else { throw CatalogRules.tooManyWebhooks }
            try db.execute(sql: "INSERT INTO webhooks (id, key_id, url, dataset_id, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, keyID, url, dataset, Self.now()])
            var detail: [String: JSONValue] = ["webhook": .string(id), "key": .string(keyID)]
            if let dataset { detail["followed"] = .string(dataset) }
            _ = try Self.appendAudit(db, actor: actor, action: "webhook.create", dataset: dataset, detail: detail)
            return Self.webhookRecord(try Row.fetchOne(db, sql: "SELECT * FROM webhooks WHERE id = ?", arguments: [id])!)
        }
    }

    public func webhooks(keyID: String?) throws -> [WebhookRecord] {
        try read { db in
            let rows = keyID == nil
                ? try Row.fetchAll(db, sql: "SELECT * FROM webhooks ORDER BY created_at DESC, id")
                : try Row.fetchAll(db, sql: "SELECT * FROM webhooks WHERE key_id = ? ORDER BY created_at DESC, id", arguments: [keyID])
            return rows.map(Self.webhookRecord)
        }
    }

    public func webhook(_ id: String) throws -> WebhookRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM webhooks WHERE id = ?", arguments: [id]).map(Self.webhookRecord) }
    }

    public func disableWebhook(_ id: String, reason: String, actor: String) throws {
        try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM webhooks WHERE id = ?", arguments: [id]) else { throw CatalogRules.unknownWebhook(id) }
            guard Self.webhookRecord(row).isActive else { throw KaifangError.conflict("webhook '\(id)' is already stopped") }
            try Self.stopWebhook(db, id: id, reason: reason, actor: actor)
        }
    }

    static func stopWebhook(_ db: Database, id: String, reason: String, actor: String) throws {
        let now = Self.now()
        try db.execute(sql: "UPDATE webhooks SET disabled_at = ?, disabled_reason = ? WHERE id = ?", arguments: [now, reason, id])
        try db.execute(sql: """
            UPDATE webhook_deliveries SET status = 'failed', next_at = NULL, lease_until = NULL, last_error = coalesce(last_error || '; ', '') || 'the webhook was stopped: ' || ?
            WHERE webhook_id = ? AND status = 'pending'
            """, arguments: [reason, id])
        _ = try Self.appendAudit(db, actor: actor, action: "webhook.disable", dataset: nil, detail: ["webhook": .string(id), "reason": .string(reason)])
    }

    public func webhookDeliveries(webhook: String, limit: Int) throws -> [WebhookDelivery] {
        try read { db in
            try Row.fetchAll(db, sql: Self.deliverySelect + " WHERE d.webhook_id = ? ORDER BY d.id DESC LIMIT ?", arguments: [webhook, limit])
                .map(Self.deliveryRecord)
        }
    }

    public func claimDeliveries(limit: Int, lease: Double, giveUpBefore: String) throws -> [DueDelivery] {
        let now = Self.now(), until = AuditChain.timestamp(Date().addingTimeInterval(lease))
        return try write(signal: false) { db in
            try db.execute(sql: """
                UPDATE webhook_deliveries SET status = 'failed', next_at = NULL, lease_until = NULL,
                    last_error = coalesce(last_error || '; ', '') || 'given up: not delivered within the retry window'
                WHERE status = 'pending' AND created_at < ?
                """, arguments: [giveUpBefore])
            let rows = try Row.fetchAll(db, sql: Self.deliverySelect + """
                 JOIN webhooks w ON w.id = d.webhook_id JOIN api_keys k ON k.id = w.key_id LEFT JOIN accounts a ON a.id = k.account_id
                WHERE d.status = 'pending' AND d.next_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
                  AND w.disabled_at IS NULL AND k.revoked_at IS NULL AND a.suspended_at IS NULL
                ORDER BY d.next_at, d.id LIMIT ?
                """, arguments: [now, now, limit])
            var due: [DueDelivery] = []
            for row in rows {
                let d = Self.deliveryRecord(row)
                try db.execute(sql: "UPDATE webhook_deliveries SET lease_until = ? WHERE id = ?", arguments: [until, d.id])
                guard let w = try Row.fetchOne(db, sql: "SELECT * FROM webhooks WHERE id = ?", arguments: [d.webhookID]) else { continue }
                due.append(DueDelivery(delivery: d, webhook: Self.webhookRecord(w)))
            }
            return due
        }
    }

    public func finishDelivery(_ id: Int64, outcome: DeliveryOutcome, maxFailures: Int, actor: String) throws {
        let now = Self.now()
        try write(signal: false) { db in
            guard let webhookID = try String.fetchOne(db, sql: "SELECT webhook_id FROM webhook_deliveries WHERE id = ? AND status = 'pending'", arguments: [id]) else {
                return
            }
            switch outcome {
            case .delivered(let status):
                try db.execute(sql: """
                    UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL,
                        next_at = NULL, lease_until = NULL, delivered_at = ? WHERE id = ?
                    """, arguments: [status, now, id])
                try db.execute(sql: "UPDATE webhooks SET failures = 0 WHERE id = ?", arguments: [webhookID])
            case .failed(let status, let error, let retryAt):
                try db.execute(sql: """
                    UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status = ?, last_error = ?,
                        next_at = ?, lease_until = NULL WHERE id = ?
                    """, arguments: [retryAt == nil ? "failed" : "pending", status, error, retryAt, id])
                try db.execute(sql: "UPDATE webhooks SET failures = failures + 1 WHERE id = ?", arguments: [webhookID])
                let row = try Row.fetchOne(db, sql: "SELECT failures, disabled_at FROM webhooks WHERE id = ?", arguments: [webhookID])
                if let row, (row["failures"] as Int) >= maxFailures, (row["disabled_at"] as String?) == nil {
                    try Self.stopWebhook(db, id: webhookID, reason: CatalogRules.disabledAfter(maxFailures), actor: actor)
                }
            }
        }
    }
}
