import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Storage

/// Sign-up, the caller's own keys and usage, and the stewards' view of accounts and usage.
extension APIHandler {
    static func account(_ a: AccountRecord) -> Components.Schemas.Account {
        .init(id: a.id, email: a.email, name: a.name, organisation: a.organisation, tier: a.tier,
              createdAt: date(a.createdAt) ?? Date(timeIntervalSince1970: 0), suspendedAt: date(a.suspendedAt),
              suspendedReason: a.suspendedReason, active: !a.isSuspended)
    }

    static func key(_ k: APIKeyRecord) -> Components.Schemas.Key {
        .init(id: k.id, name: k.name, role: .init(rawValue: k.role.rawValue) ?? .developer, department: k.department,
              createdAt: date(k.createdAt) ?? Date(timeIntervalSince1970: 0), revokedAt: date(k.revokedAt), active: k.isActive)
    }

    static func newKey(_ k: APIKeyRecord, secret: String) -> Components.Schemas.NewKey {
        .init(id: k.id, name: k.name, role: .init(rawValue: k.role.rawValue) ?? .developer,
              createdAt: date(k.createdAt) ?? Date(timeIntervalSince1970: 0), key: secret)
    }

    /// Opens an account for an anonymous caller, within the sign-up limits.
    func createAccount(_ input: Operations.CreateAccount.Input) async throws -> Operations.CreateAccount.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let (account, key, secret) = try signUp(email: body.email, name: body.name, organisation: body.organisation ?? "",
                                                keyName: body.keyName, caller: caller)
        return .created(.init(body: .json(.init(account: Self.account(account), key: Self.newKey(key, secret: secret)))))
    }

    /// Checks the sign-up limits, then opens the account (the API and the portal's form).
    /// - Throws: `Problem` 403 (sign-up closed) or 429 (a limit reached); the store's errors.
    func signUp(email: String, name: String, organisation: String, keyName: String?, caller: Caller) throws -> (AccountRecord, APIKeyRecord, String) {
        guard configuration.signupOpen else {
            throw Problem(status: .forbidden, detail: "sign-up is closed on this server: ask a data steward for an account (`kaifang account create`)")
        }
        // A malformed form costs no sign-up; a duplicate address does (it is how addresses would be probed).
        _ = try NewAccount(email: email, name: name, organisation: organisation, keyName: keyName ?? "first key", tier: nil)
        for (bucket, perHour, whose) in [("signup:a:\(caller.remote)", configuration.signupsPerAddress, "from one address"),
                                         ("signup:all", configuration.signupsPerHour, "in all")] where perHour > 0 {
            if let wait = try catalog.takeToken(bucket: bucket, rate: Double(perHour) / 3600, burst: Double(perHour)) {
                let seconds = max(1, Int(wait.rounded(.up)))
                throw Problem(status: .tooManyRequests, detail: "sign-ups are limited to \(perHour) an hour \(whose); retry after \(seconds) s", retryAfter: seconds)
            }
        }
        let trimmedName = name.trimmingCharacters(in: .whitespacesAndNewlines)
        return try catalog.createAccount(email: email, name: name, organisation: organisation, tier: nil,
                                         keyName: keyName ?? (trimmedName.isEmpty ? "first key" : trimmedName), actor: caller.actor)
    }

    func listAccounts(_ input: Operations.ListAccounts.Input) async throws -> Operations.ListAccounts.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        try Self.requireSteward(caller, "the list of accounts is")
        return .ok(.init(body: .json(.init(accounts: try catalog.accounts().map(Self.account)))))
    }

    /// An account, or 404.
    func requireAccount(_ id: String) throws -> AccountRecord {
        guard let a = try catalog.account(id) else {
            throw Problem(status: .notFound, detail: "no account '\(id)': GET /v1/accounts lists them")
        }
        return a
    }

    func getAccount(_ input: Operations.GetAccount.Input) async throws -> Operations.GetAccount.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        try Self.requireSteward(caller, "managing accounts is")
        let a = try requireAccount(input.path.accountId)
        return .ok(.init(body: .json(.init(account: Self.account(a), keys: try catalog.keys(account: a.id).map(Self.key)))))
    }

    func suspendAccount(_ input: Operations.SuspendAccount.Input) async throws -> Operations.SuspendAccount.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        try Self.requireSteward(caller, "managing accounts is")
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        _ = try requireAccount(input.path.accountId)
        return .ok(.init(body: .json(Self.account(try catalog.setSuspended(account: input.path.accountId, reason: body.reason, actor: caller.actor)))))
    }

    func reinstateAccount(_ input: Operations.ReinstateAccount.Input) async throws -> Operations.ReinstateAccount.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        try Self.requireSteward(caller, "managing accounts is")
        _ = try requireAccount(input.path.accountId)
        return .ok(.init(body: .json(Self.account(try catalog.setSuspended(account: input.path.accountId, reason: nil, actor: caller.actor)))))
    }

    /// The limits the caller's key works under.
    func limits(of key: APIKeyRecord) throws -> Components.Schemas.Limits {
        if let l = key.limits {
            let tier = try catalog.account(key.accountID ?? "").flatMap { a in try catalog.tiers().first { $0.name == a.tier } }
            return .init(rate: l.rate, burst: l.burst, exportsPerDay: l.exportsPerDay, maxKeys: tier?.maxKeys)
        }
        return .init(rate: configuration.keyRate, burst: configuration.keyBurst, exportsPerDay: configuration.exportsPerDay)
    }

    func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let account = try key.accountID.flatMap { try catalog.account($0) }
        let keys = try account.map { try catalog.keys(account: $0.id) } ?? [key]
        return .ok(.init(body: .json(.init(key: Self.key(key), account: account.map(Self.account), keys: keys.map(Self.key), limits: try limits(of: key)))))
    }

    /// The caller's account id, or 403 for a key that belongs to none.
    static func requireAccountKey(_ caller: Caller) throws -> String {
        let key = try requireKey(caller)
        guard let account = key.accountID else {
            throw Problem(status: .forbidden, detail: "this key belongs to no account: a steward manages it (`kaifang key`); sign up at POST /v1/accounts for an account of your own")
        }
        return account
    }

    func createMyKey(_ input: Operations.CreateMyKey.Input) async throws -> Operations.CreateMyKey.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let account = try Self.requireAccountKey(caller)
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let (key, secret) = try catalog.createKey(role: .developer, name: body.name, account: account, actor: caller.actor)
        return .created(.init(body: .json(Self.newKey(key, secret: secret))))
    }

    func revokeMyKey(_ input: Operations.RevokeMyKey.Input) async throws -> Operations.RevokeMyKey.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let account = try Self.requireAccountKey(caller)
        guard try catalog.keys(account: account).contains(where: { $0.id == input.path.keyId && $0.isActive }) else {
            throw Problem(status: .notFound, detail: "no active key '\(input.path.keyId)' in your account: GET /v1/me lists its keys")
        }
        try catalog.revokeKey(input.path.keyId, actor: caller.actor)
        return .noContent(.init())
    }

    /// The days asked for, checked against what is kept.
    /// - Throws: `Problem` 400 for a malformed day, an empty range, or a start before the usage kept.
    func usageRange(from: String?, to: String?) throws -> (String, String) {
        let today = String(AuditTime.now().prefix(10))
        let first = CatalogRules.usageStart(today: today)
        func day(_ s: String?, _ name: String, _ fallback: String) throws -> String {
            guard let s else { return fallback }
            guard s.utf8.count == 10, Self.date(s + "T00:00:00.000Z") != nil else {
                throw Problem(status: .badRequest, detail: "\(name) must be a day as YYYY-MM-DD")
            }
            return s
        }
        let (f, t) = (try day(from, "from", first), try day(to, "to", today))
        guard f <= t else { throw Problem(status: .badRequest, detail: "from (\(f)) is after to (\(t))") }
        guard f >= first else {
            throw Problem(status: .badRequest, detail: "usage is kept for \(CatalogRules.usageMonths) months: from must be \(first) or later")
        }
        return (f, t)
    }

    /// Usage summed by day and `by`'s value, with totals.
    static func usageBody(_ rows: [UsageRow], from: String, to: String, by: Components.Schemas.Usage.ByPayload,
                          group: (UsageRow) -> String) -> Components.Schemas.Usage {
        func counts(_ r: UsageRow) -> Components.Schemas.UsageCounts {
            .init(requests: r.requests, rows: r.rows, bytes: r.bytes, exports: r.exports, jobs: r.jobs, epsilon: r.epsilon)
        }
        let (days, total) = UsageRow.grouped(rows, by: group)
        return .init(from: from, to: to, by: by, days: days.map { d in
            .init(value1: counts(d.counts), value2: .init(day: d.day, key: by == .key ? d.group : nil, account: by == .account ? d.group : nil,
                                                        dataset: by == .dataset ? d.group : nil))
        }, totals: counts(total))
    }

    func getMyUsage(_ input: Operations.GetMyUsage.Input) async throws -> Operations.GetMyUsage.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let (from, to) = try usageRange(from: input.query.from, to: input.query.to)
        let keys = try key.accountID.map { try catalog.keys(account: $0).map(\.id) } ?? [key.id]
        try await StoreThreads.run { [usage] in try usage.flush() }
        let rows = try catalog.usage(keys: keys, dataset: nil, from: from, to: to)
        return .ok(.init(body: .json(Self.usageBody(rows, from: from, to: to, by: .key) { $0.keyID })))
    }

    func getUsage(_ input: Operations.GetUsage.Input) async throws -> Operations.GetUsage.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        try Self.requireSteward(caller, "everyone's usage is")
        let (from, to) = try usageRange(from: input.query.from, to: input.query.to)
        let by = input.query.by ?? .account
        let allKeys = try catalog.keys()
        var keys: [String]?
        if let account = input.query.account {
            _ = try requireAccount(account)
            keys = allKeys.filter { $0.accountID == account }.map(\.id)
        }
        if let dataset = input.query.dataset, try catalog.dataset(dataset) == nil {
            throw Problem(status: .notFound, detail: "no dataset '\(dataset)' in the catalog: GET /v1/datasets lists them")
        }
        try await StoreThreads.run { [usage] in try usage.flush() }
        let rows = try catalog.usage(keys: keys, dataset: input.query.dataset, from: from, to: to)
        let grouping = UsageGrouping(rawValue: by.rawValue) ?? .account
        let body = Self.usageBody(rows, from: from, to: to, by: .init(rawValue: by.rawValue) ?? .account, group: grouping.group(keys: allKeys))
        return .ok(.init(body: .json(body)))
    }
}
