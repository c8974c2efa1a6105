import Audit
import Foundation
import GRDB
import KaifangCore

extension CatalogDatabase {
    // MARK: - Accounts

    static func accountRecord(_ row: Row) -> AccountRecord {
        AccountRecord(id: row["id"], email: row["email"], name: row["name"], organisation: row["organisation"], tier: row["tier"],
                      createdAt: row["created_at"], createdBy: row["created_by"], suspendedAt: row["suspended_at"],
                      suspendedReason: row["suspended_reason"])
    }

    public func createAccount(email: String, name: String, organisation: String, tier: String?, keyName: String,
                              actor: String) throws -> (AccountRecord, APIKeyRecord, String) {
        let a = try NewAccount(email: email, name: name, organisation: organisation, keyName: keyName, tier: tier)
        return try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM account_tiers WHERE name = ?", arguments: [a.tier]) == true else {
                throw CatalogRules.unknownTier(a.tier)
            }
            try db.execute(sql: """
                INSERT INTO accounts (id, email, name, organisation, tier, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (email) DO NOTHING
                """, arguments: [a.id, a.email, a.name, a.organisation, a.tier, a.at, actor])
            guard db.changesCount == 1 else {
                throw CatalogRules.duplicateAccount
            }
            _ = try Self.appendAudit(db, actor: actor, action: "account.create", dataset: nil,
                                     detail: ["account": .string(a.id), "tier": .string(a.tier)])
            let (key, secret) = try Self.insertKey(db, role: .developer, name: a.keyName, account: a.id, actor: actor)
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE id = ?", arguments: [a.id]) else {
                throw KaifangError.runtime("the account just made is missing")
            }
            return (Self.accountRecord(row), key, secret)
        }
    }

    public func account(_ id: String) throws -> AccountRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE id = ?", arguments: [id]).map(Self.accountRecord) }
    }

    public func accounts() throws -> [AccountRecord] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM accounts ORDER BY created_at DESC, id").map(Self.accountRecord) }
    }

    @discardableResult
    public func setSuspended(account id: String, reason: String?, actor: String) throws -> AccountRecord {
        let reason = try reason.map { try CatalogRules.accountText($0, field: "reason", required: true, limit: 500) }
        return try write { db in
            if let reason {
                try db.execute(sql: "UPDATE accounts SET suspended_at = ?, suspended_reason = ? WHERE id = ? AND suspended_at IS NULL",
                               arguments: [Self.now(), reason, id])
            } else {
                try db.execute(sql: "UPDATE accounts SET suspended_at = NULL, suspended_reason = NULL WHERE id = ? AND suspended_at IS NOT NULL",
                               arguments: [id])
            }
            let changed = db.changesCount
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE id = ?", arguments: [id]) else {
                throw CatalogRules.unknownAccount(id)
            }
            guard changed == 1 else { throw CatalogRules.alreadyInState(id, suspending: reason != nil) }
            var detail: [String: JSONValue] = ["account": .string(id)]
            if let reason { detail["reason"] = .string(reason) }
            _ = try Self.appendAudit(db, actor: actor, action: reason == nil ? "account.reinstate" : "account.suspend", dataset: nil, detail: detail)
            return Self.accountRecord(row)
        }
    }

    @discardableResult
    public func setTier(account id: String, tier: String, actor: String) throws -> AccountRecord {
        try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM account_tiers WHERE name = ?", arguments: [tier]) == true else {
                throw CatalogRules.unknownTier(tier)
            }
            try db.execute(sql: "UPDATE accounts SET tier = ? WHERE id = ?", arguments: [tier, id])
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE id = ?", arguments: [id]) else {
                throw CatalogRules.unknownAccount(id)
            }
            _ = try Self.appendAudit(db, actor: actor, action: "account.tier", dataset: nil, detail: ["account": .string(id), "tier": .string(tier)])
            return Self.accountRecord(row)
        }
    }

    public func tiers() throws -> [AccountTier] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM account_tiers ORDER BY name").map {
                AccountTier(name: $0["name"], rate: $0["rate"], burst: $0["burst"], exportsPerDay: $0["exports_per_day"], maxKeys: $0["max_keys"])
            }
        }
    }

    public func putTier(_ tier: AccountTier, actor: String) throws {
        try CatalogRules.checkTier(tier)
        try write { db in
            try db.execute(sql: """
                INSERT INTO account_tiers (name, rate, burst, exports_per_day, max_keys) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET rate = excluded.rate, burst = excluded.burst, exports_per_day = excluded.exports_per_day, max_keys = excluded.max_keys
                """, arguments: [tier.name, tier.rate, tier.burst, tier.exportsPerDay, tier.maxKeys])
            _ = try Self.appendAudit(db, actor: actor, action: "tier.set", dataset: nil, detail: CatalogRules.tierDetail(tier))
        }
    }

    // MARK: - Usage

    public func addUsage(_ entries: [UsageEntry], pruneBefore: String?) throws {
        guard !entries.isEmpty || pruneBefore != nil else { return }
        try write(signal: false) { db in
            let insert = try db.cachedStatement(sql: """
                INSERT INTO usage_daily (day, key_id, dataset_id, requests, rows_served, bytes, exports) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (day, key_id, dataset_id) DO UPDATE SET requests = requests + excluded.requests,
                    rows_served = rows_served + excluded.rows_served, bytes = bytes + excluded.bytes, exports = exports + excluded.exports
                """)
            for e in entries {
                try insert.execute(arguments: [e.day, e.keyID, e.dataset, e.requests, e.rows, e.bytes, e.exports])
            }
            if let pruneBefore { try db.execute(sql: "DELETE FROM usage_daily WHERE day < ?", arguments: [pruneBefore]) }
        }
    }

    public func usage(keys: [String]?, dataset: String?, from: String, to: String) throws -> [UsageRow] {
        if keys?.isEmpty == true { return [] }
        var args: [DatabaseValueConvertible?] = [from, to]
        if let keys { args += keys.map { $0 as DatabaseValueConvertible? } }
        if let dataset { args.append(dataset) }
        return try read { db in
            try Row.fetchAll(db, sql: CatalogRules.usageSQL(keys: keys?.count, dataset: dataset != nil), arguments: StatementArguments(args)).map {
                UsageRow(day: $0["day"], keyID: $0["key_id"], dataset: $0["dataset_id"], requests: $0["requests"], rows: $0["rows_served"],
                         bytes: $0["bytes"], exports: $0["exports"], jobs: $0["jobs"], epsilon: $0["epsilon"])
            }
        }
    }
}
