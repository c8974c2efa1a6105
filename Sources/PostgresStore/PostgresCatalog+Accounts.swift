import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

extension PostgresCatalog {
    // MARK: - Accounts

    func accountRecord(_ r: PGRow) throws -> AccountRecord {
        AccountRecord(id: try r.string("id"), email: try r.string("email"), name: try r.string("name"), organisation: try r.string("organisation"),
                      tier: try r.string("tier"), createdAt: try r.string("created_at"), createdBy: try r.string("created_by"),
                      suspendedAt: try r.optString("suspended_at"), suspendedReason: try r.optString("suspended_reason"))
    }

    public func createAccount(email: String, name: String, organisation: String, tier: String?, keyName: String,
                              actor: String) throws -> (AccountRecord, APIKeyRecord, String) {
        let a = try NewAccount(email: email, name: name, organisation: organisation, keyName: keyName, tier: tier)
        return try write { tx, chain in
            guard try !tx.query("SELECT 1 FROM account_tiers WHERE name = \(a.tier)").isEmpty else {
                throw CatalogRules.unknownTier(a.tier)
            }
            guard let row = try tx.query("""
                INSERT INTO accounts (id, email, name, organisation, tier, created_at, created_by) VALUES (\(a.id), \(a.email), \(a.name), \(a.organisation), \(a.tier), \(a.at), \(actor))
                ON CONFLICT (email) DO NOTHING RETURNING *
                """).first else {
                throw CatalogRules.duplicateAccount
            }
            try chain.append(tx, actor: actor, action: "account.create", dataset: nil, detail: ["account": .string(a.id), "tier": .string(a.tier)])
            let (key, secret) = try insertKey(tx, &chain, role: .developer, name: a.keyName, account: a.id, actor: actor)
            return (try accountRecord(row), key, secret)
        }
    }

    public func account(_ id: String) throws -> AccountRecord? {
        try client.query("SELECT * FROM accounts WHERE id = \(id)").first.map(accountRecord)
    }

    public func accounts() throws -> [AccountRecord] {
        try client.query("SELECT * FROM accounts ORDER BY created_at DESC, id").map(accountRecord)
    }

    @discardableResult
    public func setSuspended(account id: String, reason: String?, actor: String) throws -> AccountRecord {
        let reason = try reason.map { try CatalogRules.accountText($0, field: "reason", required: true, limit: 500) }
        return try write { tx, chain in
            let changed = reason == nil
                ? try tx.query("UPDATE accounts SET suspended_at = NULL, suspended_reason = NULL WHERE id = \(id) AND suspended_at IS NOT NULL RETURNING id")
                : try tx.query("UPDATE accounts SET suspended_at = \(CatalogRules.now()), suspended_reason = \(reason) WHERE id = \(id) AND suspended_at IS NULL RETURNING id")
            guard let row = try tx.query("SELECT * FROM accounts WHERE id = \(id)").first else {
                throw CatalogRules.unknownAccount(id)
            }
            guard !changed.isEmpty else { throw CatalogRules.alreadyInState(id, suspending: reason != nil) }
            var detail: [String: JSONValue] = ["account": .string(id)]
            if let reason { detail["reason"] = .string(reason) }
            try chain.append(tx, actor: actor, action: reason == nil ? "account.reinstate" : "account.suspend", dataset: nil, detail: detail)
            return try accountRecord(row)
        }
    }

    @discardableResult
    public func setTier(account id: String, tier: String, actor: String) throws -> AccountRecord {
        try write { tx, chain in
            guard try !tx.query("SELECT 1 FROM account_tiers WHERE name = \(tier)").isEmpty else {
                throw CatalogRules.unknownTier(tier)
            }
            guard let row = try tx.query("UPDATE accounts SET tier = \(tier) WHERE id = \(id) RETURNING *").first else {
                throw CatalogRules.unknownAccount(id)
            }
            try chain.append(tx, actor: actor, action: "account.tier", dataset: nil, detail: ["account": .string(id), "tier": .string(tier)])
            return try accountRecord(row)
        }
    }

    public func tiers() throws -> [AccountTier] {
        try client.query("SELECT * FROM account_tiers ORDER BY name COLLATE \"C\"").map {
            AccountTier(name: try $0.string("name"), rate: try $0.double("rate"), burst: try $0.double("burst"),
                        exportsPerDay: try $0.int("exports_per_day"), maxKeys: try $0.int("max_keys"))
        }
    }

    public func putTier(_ tier: AccountTier, actor: String) throws {
        try CatalogRules.checkTier(tier)
        try write { tx, chain in
            try tx.query("""
                INSERT INTO account_tiers (name, rate, burst, exports_per_day, max_keys) VALUES (\(tier.name), \(tier.rate), \(tier.burst), \(tier.exportsPerDay), \(tier.maxKeys))
                ON CONFLICT (name) DO UPDATE SET rate = excluded.rate, burst = excluded.burst, exports_per_day = excluded.exports_per_day, max_keys = excluded.max_keys
                """)
            try chain.append(tx, actor: actor, action: "tier.set", dataset: nil, detail: CatalogRules.tierDetail(tier))
        }
    }

    // MARK: - Usage

    /// One statement for the whole batch (arrays unnested), outside the chain's order: usage
    /// counts are not audited changes and take no lock of the head.
    public func addUsage(_ entries: [UsageEntry], pruneBefore: String?) throws {
        guard !entries.isEmpty || pruneBefore != nil else { return }
        try client.transaction { tx in
            if !entries.isEmpty {
                try tx.query("""
                    INSERT INTO usage_daily (day, key_id, dataset_id, requests, rows_served, bytes, exports)
                    SELECT * FROM unnest(\(entries.map(\.day))::text[], \(entries.map(\.keyID))::text[], \(entries.map(\.dataset))::text[],
                                         \(entries.map(\.requests))::bigint[], \(entries.map(\.rows))::bigint[], \(entries.map(\.bytes))::bigint[],
                                         \(entries.map(\.exports))::bigint[])
                    ON CONFLICT (day, key_id, dataset_id) DO UPDATE SET requests = usage_daily.requests + excluded.requests,
                        rows_served = usage_daily.rows_served + excluded.rows_served, bytes = usage_daily.bytes + excluded.bytes,
                        exports = usage_daily.exports + excluded.exports
                    """)
            }
            if let pruneBefore { try tx.query("DELETE FROM usage_daily WHERE day < \(pruneBefore)") }
        }
    }

    public func usage(keys: [String]?, dataset: String?, from: String, to: String) throws -> [UsageRow] {
        if keys?.isEmpty == true { return [] }
        var binds = PostgresBindings()
        binds.append(from)
        binds.append(to)
        for k in keys ?? [] { binds.append(k) }
        if let dataset { binds.append(dataset) }
        var sql = ""
        for (i, part) in CatalogRules.usageSQL(keys: keys?.count, dataset: dataset != nil).split(separator: "?", omittingEmptySubsequences: false).enumerated() {
            if i > 0 { sql += "$\(i)" }
            sql += part
        }
        return try client.query(PostgresQuery(unsafeSQL: sql, binds: binds)).map {
            UsageRow(day: try $0.string("day"), keyID: try $0.string("key_id"), dataset: try $0.string("dataset_id"), requests: try $0.int64("requests"),
                     rows: try $0.int64("rows_served"), bytes: try $0.int64("bytes"), exports: try $0.int64("exports"), jobs: try $0.int64("jobs"),
                     epsilon: try $0.double("epsilon"))
        }
    }
}
