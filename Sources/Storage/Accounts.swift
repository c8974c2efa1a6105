import Audit
import Foundation
import KaifangCore

/// A developer account: made by sign-up (`POST /v1/accounts`) or by a steward; it holds one or
/// more application keys, whose limits come from the account's tier.
public struct AccountRecord: Sendable, Equatable {
    public var id: String
    /// Lower-cased; one account per address.
    public var email: String
    public var name: String
    public var organisation: String
    /// The name of its `AccountTier`.
    public var tier: String
    public var createdAt: String
    /// `signup`, or the steward's actor that made it.
    public var createdBy: String
    public var suspendedAt: String?
    public var suspendedReason: String?
    public var isSuspended: Bool { suspendedAt != nil }

    package init(id: String, email: String, name: String, organisation: String, tier: String, createdAt: String, createdBy: String,
                 suspendedAt: String?, suspendedReason: String?) {
        self.id = id; self.email = email; self.name = name; self.organisation = organisation; self.tier = tier
        self.createdAt = createdAt; self.createdBy = createdBy; self.suspendedAt = suspendedAt; self.suspendedReason = suspendedReason
    }
}

/// What every key of an account on a tier may do: stewards set tiers (`kaifang account tier`).
public struct AccountTier: Sendable, Equatable {
    public var name: String
    /// Requests a second per key, and the burst.
    public var rate: Double
    public var burst: Double
    /// Exports per key per UTC day (0: unlimited).
    public var exportsPerDay: Int
    /// Active keys an account may hold.
    public var maxKeys: Int

    public init(name: String, rate: Double, burst: Double, exportsPerDay: Int, maxKeys: Int) {
        self.name = name; self.rate = rate; self.burst = burst; self.exportsPerDay = exportsPerDay; self.maxKeys = maxKeys
    }

    /// The tier sign-up puts new accounts on.
    public static let signupTier = "basic"
}

/// A key's limits from its account's tier (keys without an account use the server's defaults).
public struct KeyLimits: Sendable, Equatable {
    public var rate: Double
    public var burst: Double
    public var exportsPerDay: Int

    package init(rate: Double, burst: Double, exportsPerDay: Int) {
        self.rate = rate; self.burst = burst; self.exportsPerDay = exportsPerDay
    }
}

/// Usage counted by a server process and added to the store in batches (`addUsage`). The key is
/// empty for anonymous callers; the dataset is empty for requests that read no dataset's rows.
public struct UsageEntry: Sendable, Equatable, Hashable {
    public var day: String
    public var keyID: String
    public var dataset: String
    public var requests: Int64 = 0
    public var rows: Int64 = 0
    public var bytes: Int64 = 0
    public var exports: Int64 = 0

    public init(day: String, keyID: String, dataset: String, requests: Int64 = 0, rows: Int64 = 0, bytes: Int64 = 0, exports: Int64 = 0) {
        self.day = day; self.keyID = keyID; self.dataset = dataset
        self.requests = requests; self.rows = rows; self.bytes = bytes; self.exports = exports
    }
}

/// One day of one key's use of one dataset (or of no dataset: `dataset` empty), with the
/// sandbox jobs it submitted and the ε they spent.
public struct UsageRow: Sendable, Equatable {
    public var day: String
    public var keyID: String
    public var dataset: String
    public var requests: Int64
    public var rows: Int64
    public var bytes: Int64
    public var exports: Int64
    public var jobs: Int64
    public var epsilon: Double

    public init(day: String, keyID: String, dataset: String, requests: Int64 = 0, rows: Int64 = 0, bytes: Int64 = 0, exports: Int64 = 0,
                jobs: Int64 = 0, epsilon: Double = 0) {
        self.day = day; self.keyID = keyID; self.dataset = dataset; self.requests = requests; self.rows = rows; self.bytes = bytes
        self.exports = exports; self.jobs = jobs; self.epsilon = epsilon
    }
}

extension UsageRow {
    /// Adds another row's counts to this one's.
    public mutating func add(_ r: UsageRow) {
        requests += r.requests; rows += r.rows; bytes += r.bytes; exports += r.exports; jobs += r.jobs; epsilon += r.epsilon
    }

    /// Rows summed by day and `group`'s value (ordered by both), and the total of all.
    public static func grouped(_ rows: [UsageRow], by group: (UsageRow) -> String) -> (days: [(day: String, group: String, counts: UsageRow)], total: UsageRow) {
        var sums: [String: [String: UsageRow]] = [:]
        var total = UsageRow(day: "", keyID: "", dataset: "")
        for r in rows {
            let g = group(r)
            sums[r.day, default: [:]][g, default: UsageRow(day: r.day, keyID: "", dataset: "")].add(r)
            total.add(r)
        }
        var days: [(day: String, group: String, counts: UsageRow)] = []
        for day in sums.keys.sorted() {
            for (g, r) in sums[day]!.sorted(by: { $0.key < $1.key }) { days.append((day, g, r)) }
        }
        return (days, total)
    }
}

/// What a usage row is summed by.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case account, key, dataset

    /// The group of a row: its dataset, its key, or its key's account (a key of no account
    /// stands as `key:<id>`; anonymous use, key "", as "").
    public func group(keys: [APIKeyRecord]) -> @Sendable (UsageRow) -> String {
        switch self {
        case .key: return { $0.keyID }
        case .dataset: return { $0.dataset }
        case .account:
            let accountOf = Dictionary(keys.map { ($0.id, $0.accountID ?? "key:\($0.id)") }, uniquingKeysWith: { a, _ in a })
            return { accountOf[$0.keyID] ?? "" }
        }
    }
}

/// A new account's fields, checked alike by both stores.
package struct NewAccount {
    package let id = CatalogRules.newAccountID()
    package let at = CatalogRules.now()
    package let email: String, name: String, organisation: String, keyName: String, tier: String

    /// - Throws: `KaifangError.badInput` naming the field that is malformed.
    package init(email: String, name: String, organisation: String, keyName: String, tier: String?) throws {
        self.email = try CatalogRules.accountEmail(email)
        self.name = try CatalogRules.accountText(name, field: "name", required: true)
        self.organisation = try CatalogRules.accountText(organisation, field: "organisation", required: false, limit: 200)
        self.keyName = try CatalogRules.keyName(keyName)
        self.tier = tier ?? AccountTier.signupTier
    }
}

extension CatalogRules {
    /// Months of usage kept and served.
    public static let usageMonths = 13

    /// The first day of usage kept on `today` (`YYYY-MM-DD`): the first of the month twelve
    /// months back, so the current month and the twelve before it.
    public static func usageStart(today: String) -> String {
        let y = Int(today.prefix(4)) ?? 1970, m = Int(today.dropFirst(5).prefix(2)) ?? 1
        let months = y * 12 + (m - 1) - (usageMonths - 1)
        return String(format: "%04d-%02d-01", months / 12, months % 12 + 1)
    }

    /// The error naming an unknown tier.
    package static func unknownTier(_ tier: String) -> KaifangError {
        .notFound("no account tier '\(tier)': `kaifang account tiers` lists them")
    }

    /// The error naming an unknown account.
    package static func unknownAccount(_ id: String) -> KaifangError {
        .notFound("no account '\(id)': `kaifang account list` shows them")
    }

    /// The error of an address that has an account (the address is not repeated).
    package static let duplicateAccount = KaifangError.conflict("an account with this email address already exists: use its keys, or ask a steward")

    /// A sign-up's address, trimmed and lower-cased.
    /// - Throws: `KaifangError.badInput` unless it looks like `name@domain.tld` (at most 254 characters).
    package static func accountEmail(_ email: String) throws -> String {
        let e = email.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = e.split(separator: "@", omittingEmptySubsequences: false)
        guard e.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64,
              parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              !e.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0 == "<" || $0 == ">" || $0 == "," || $0 == ";" })
        else {
            throw KaifangError.badInput("email must be an address like name@example.org (at most 254 characters)")
        }
        return e
    }

    /// An account holder's name or organisation, trimmed.
    /// - Throws: `KaifangError.badInput` for an empty (when required) or overlong text.
    package static func accountText(_ text: String, field: String, required: Bool, limit: Int = 100) throws -> String {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !(required && t.isEmpty), t.count <= limit, !t.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw KaifangError.badInput("\(field) must be \(required ? "1" : "0")–\(limit) characters on one line")
        }
        return t
    }

    /// A tier's settings, checked.
    /// - Throws: `KaifangError.badInput` naming the setting out of range.
    package static func checkTier(_ t: AccountTier) throws {
        guard !t.name.isEmpty, t.name.count <= 40, t.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw KaifangError.badInput("a tier's name must be 1–40 letters, digits, '-' or '_'")
        }
        guard t.rate >= 0, t.rate.isFinite else { throw KaifangError.badInput("--rate must be 0 or more requests a second (0: unlimited)") }
        guard t.burst >= 1 || t.rate == 0, t.burst.isFinite else { throw KaifangError.badInput("--burst must be at least 1") }
        guard t.exportsPerDay >= 0 else { throw KaifangError.badInput("--exports-per-day must be 0 (unlimited) or more") }
        guard (1...1000).contains(t.maxKeys) else { throw KaifangError.badInput("--max-keys must be 1–1000") }
    }

    /// Whether an account may take another key.
    /// - Throws: `KaifangError.conflict` when it is suspended or holds `max` active keys.
    package static func checkRoomForKey(suspended: Bool, active: Int, max: Int) throws {
        if suspended { throw KaifangError.conflict("the account is suspended: a steward reinstates it with `kaifang account reinstate`") }
        if active >= max {
            throw KaifangError.conflict("the account already holds \(active) active keys, its tier's limit: revoke one first, or ask a steward for a higher tier")
        }
    }

    /// The error of suspending a suspended account, or reinstating an active one.
    package static func alreadyInState(_ id: String, suspending: Bool) -> KaifangError {
        .conflict("account '\(id)' is already \(suspending ? "suspended" : "active")")
    }

    /// A tier's settings as an audit event's detail.
    package static func tierDetail(_ t: AccountTier) -> [String: JSONValue] {
        ["tier": .string(t.name), "rate": .string(String(t.rate)), "burst": .string(String(t.burst)),
         "exports_per_day": .int(Int64(t.exportsPerDay)), "max_keys": .int(Int64(t.maxKeys))]
    }

    /// A new account id (`acct_` and 10 hex digits).
    package static func newAccountID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "acct_" + (0..<10).map { _ in String(UInt8.random(in: 0...15, using: &rng), radix: 16) }.joined()
    }

    /// The columns of a key with its account's state and tier limits; both stores select keys with it.
    package static let keySelect = """
        SELECT k.id, k.name, k.role, k.key_hash, k.created_at, k.revoked_at, k.account_id, k.department,
               a.suspended_at AS account_suspended_at, a.suspended_reason AS account_suspended_reason, t.rate AS tier_rate, t.burst AS tier_burst, t.exports_per_day AS tier_exports
        FROM api_keys k LEFT JOIN accounts a ON a.id = k.account_id LEFT JOIN account_tiers t ON t.name = a.tier
        """

    /// The tiers a new store starts with: `basic` for sign-ups, `standard` for accounts a
    /// steward vouches for (the server's defaults for keys without an account).
    package static let seedTiers = [
        AccountTier(name: "basic", rate: 10, burst: 20, exportsPerDay: 20, maxKeys: 5),
        AccountTier(name: "standard", rate: 50, burst: 100, exportsPerDay: 100, maxKeys: 20),
    ]

    /// The usage of `keys` (nil: all, anonymous included) on days `from`–`to`: counted requests
    /// with the sandbox jobs submitted and the ε they spent, one row per day, key and dataset.
    /// Its arguments: from, to, the keys, the dataset. Placeholders are `?` (the shared store
    /// numbers them).
    package static func usageSQL(keys: Int?, dataset: Bool) -> String {
        var filter = "day >= ? AND day <= ?"
        if let keys { filter += " AND key_id IN (" + Array(repeating: "?", count: keys).joined(separator: ", ") + ")" }
        if dataset { filter += " AND dataset_id = ?" }
        let sql = """
            SELECT day, key_id, dataset_id, CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(rows_served) AS BIGINT) AS rows_served,
                   CAST(SUM(bytes) AS BIGINT) AS bytes, CAST(SUM(exports) AS BIGINT) AS exports, CAST(SUM(jobs) AS BIGINT) AS jobs,
                   CAST(SUM(epsilon) AS DOUBLE PRECISION) AS epsilon FROM (
                SELECT day, key_id, dataset_id, requests, rows_served, bytes, exports, 0 AS jobs, 0.0 AS epsilon FROM usage_daily
                UNION ALL
                SELECT substr(created_at, 1, 10) AS day, key_id, '' AS dataset_id, 0, 0, 0, 0, 1, 0.0 FROM jobs
                UNION ALL
                SELECT substr(j.created_at, 1, 10) AS day, e.key_id, e.dataset_id, 0, 0, 0, 0, 0, e.epsilon
                    FROM epsilon_spend e JOIN jobs j ON j.id = e.job_id
            ) u WHERE \(filter)
            GROUP BY day, key_id, dataset_id ORDER BY day, key_id, dataset_id
            """
        return sql
    }
}
