import ArgumentParser
import Audit
import Foundation
import KaifangCore
import Storage

struct AccountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account", abstract: "Developer accounts: list, open, suspend and reinstate them; their tiers and limits.",
        subcommands: [List.self, Show.self, Create.self, Suspend.self, Reinstate.self, SetTier.self, Tiers.self, Tier.self])

    static func row(_ a: AccountRecord) -> [String] {
        [a.id, a.email, a.name, a.tier, a.createdAt, a.isSuspended ? "suspended" : "active"]
    }

    static func json(_ a: AccountRecord) -> [String: String] {
        ["id": a.id, "email": a.email, "name": a.name, "organisation": a.organisation, "tier": a.tier, "created_at": a.createdAt,
         "created_by": a.createdBy, "suspended_at": a.suspendedAt ?? "", "suspended_reason": a.suspendedReason ?? ""]
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List accounts, newest first.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let accounts = try openCatalog(global).accounts()
            if global.json { try printJSON(accounts.map(AccountCommand.json)); return }
            printTable(["id", "email", "name", "tier", "created", "state"], accounts.map(AccountCommand.row))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "An account, its keys and this month's usage.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account id (acct_…).") var id: String

        func run() throws {
            let catalog = try openCatalog(global)
            guard let a = try catalog.account(id) else { throw CatalogRules.unknownAccount(id) }
            let keys = try catalog.keys(account: id)
            let today = String(AuditChain.timestamp().prefix(10))
            let month = try catalog.usage(keys: keys.map(\.id), dataset: nil, from: String(today.prefix(7)) + "-01", to: today)
            let total = UsageRow.grouped(month) { _ in "" }.total
            if global.json {
                var out = AccountCommand.json(a)
                out["keys"] = keys.map { "\($0.id):\($0.isActive ? "active" : "revoked")" }.joined(separator: ",")
                out["requests_this_month"] = String(total.requests)
                try printJSON(out)
                return
            }
            print("\(a.id)  \(a.email)  \(a.name)\(a.organisation.isEmpty ? "" : " (\(a.organisation))")")
            print("tier \(a.tier); opened \(a.createdAt) by \(a.createdBy)")
            if let at = a.suspendedAt { print("SUSPENDED since \(at): \(a.suspendedReason ?? "")") }
            printTable(["key", "name", "role", "created", "revoked"], keys.map { [$0.id, $0.name, $0.role.rawValue, $0.createdAt, $0.revokedAt ?? ""] })
            print("This month: \(total.requests) requests, \(total.rows) rows, \(total.bytes) bytes, \(total.exports) exports, \(total.jobs) jobs, ε \(total.epsilon).")
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Open an account for someone, with its first key (shown once).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The holder's email address (one account per address).") var email: String
        @Option(help: "The holder's name.") var name: String
        @Option(help: "The holder's organisation.") var organisation: String = ""
        @Option(help: "The account's tier (`kaifang account tiers`).") var tier: String = "standard"

        func run() throws {
            let (a, key, secret) = try openCatalog(global).createAccount(email: email, name: name, organisation: organisation, tier: tier,
                                                                         keyName: name, actor: cliActor)
            if global.json {
                var out = AccountCommand.json(a)
                out["key_id"] = key.id
                out["key"] = secret
                try printJSON(out)
            } else {
                print(secret)
                FileHandle.standardError.write(Data("Opened account \(a.id) (tier \(a.tier)) with key \(key.id). This is the only time the key is shown: hand it over now.\n".utf8))
            }
        }
    }

    struct Suspend: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "suspend", abstract: "Suspend an account: every key of it is refused from its next request.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account id.") var id: String
        @Option(help: "Why: recorded in the audit log, and told to the holder when a key is refused (no personal data).") var reason: String

        func run() throws {
            let a = try openCatalog(global).setSuspended(account: id, reason: reason, actor: cliActor)
            if global.json { try printJSON(AccountCommand.json(a)) } else { print("Suspended account \(a.id); its keys are refused from their next request.") }
        }
    }

    struct Reinstate: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reinstate", abstract: "Lift an account's suspension.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account id.") var id: String

        func run() throws {
            let a = try openCatalog(global).setSuspended(account: id, reason: nil, actor: cliActor)
            if global.json { try printJSON(AccountCommand.json(a)) } else { print("Reinstated account \(a.id).") }
        }
    }

    struct SetTier: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-tier", abstract: "Move an account to another tier (its keys' limits change from their next request).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account id.") var id: String
        @Argument(help: "The tier (`kaifang account tiers`).") var tier: String

        func run() throws {
            let a = try openCatalog(global).setTier(account: id, tier: tier, actor: cliActor)
            if global.json { try printJSON(AccountCommand.json(a)) } else { print("Account \(a.id) is on tier \(a.tier).") }
        }
    }

    static func tierRow(_ t: AccountTier) -> [String] {
        [t.name, String(t.rate), String(t.burst), String(t.exportsPerDay), String(t.maxKeys)]
    }

    struct Tiers: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tiers", abstract: "List the account tiers and their limits per key.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let tiers = try openCatalog(global).tiers()
            if global.json {
                try printJSON(tiers.map { ["name": $0.name, "rate": String($0.rate), "burst": String($0.burst), "exports_per_day": String($0.exportsPerDay), "max_keys": String($0.maxKeys)] })
                return
            }
            printTable(["tier", "requests/s", "burst", "exports/day", "keys"], tiers.map(AccountCommand.tierRow))
        }
    }

    struct Tier: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tier", abstract: "Add a tier or change one's limits (for every key of its accounts, from their next request).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The tier's name.") var name: String
        @Option(help: "Requests a second per key (0: unlimited).") var rate: Double
        @Option(help: "The burst allowed (default: twice the rate).") var burst: Double?
        @Option(name: .customLong("exports-per-day"), help: "Exports per key per UTC day (0: unlimited).") var exportsPerDay: Int
        @Option(name: .customLong("max-keys"), help: "Active keys an account may hold.") var maxKeys: Int = 5

        func run() throws {
            let tier = AccountTier(name: name, rate: rate, burst: burst ?? max(1, rate * 2), exportsPerDay: exportsPerDay, maxKeys: maxKeys)
            try openCatalog(global).putTier(tier, actor: cliActor)
            if global.json { try printJSON(["name": name]) } else { print("Tier \(name): \(rate) requests/s (bursts of \(tier.burst)), \(exportsPerDay) exports/day, \(maxKeys) keys.") }
        }
    }
}

struct UsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Usage per account, key or dataset and day: requests, rows, bytes, exports, sandbox jobs, ε.",
        discussion: "Servers add what they counted every 15 seconds. Usage is kept for 13 months.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Group rows by account, key or dataset.") var by: String = "account"
    @Option(help: "Only this account's keys.") var account: String?
    @Option(help: "Only this key.") var key: String?
    @Option(help: "Only reads of this dataset's rows.") var dataset: String?
    @Option(help: "First day (YYYY-MM-DD; default: the first of this month).") var from: String?
    @Option(help: "Last day (YYYY-MM-DD; default: today).") var to: String?

    func validate() throws {
        guard UsageGrouping(rawValue: by) != nil else { throw ValidationError("--by must be account, key or dataset") }
        for (name, day) in [("--from", from), ("--to", to)] {
            if let day, day.count != 10 || ISO8601DateFormatter().date(from: day + "T00:00:00Z") == nil {
                throw ValidationError("\(name) must be a day as YYYY-MM-DD")
            }
        }
    }

    func run() throws {
        let catalog = try openCatalog(global)
        let today = String(AuditChain.timestamp().prefix(10))
        let allKeys = try catalog.keys()
        var keys: [String]?
        if let account {
            guard try catalog.account(account) != nil else { throw CatalogRules.unknownAccount(account) }
            keys = allKeys.filter { $0.accountID == account }.map(\.id)
        }
        if let key { keys = (keys ?? [key]).filter { $0 == key } }
        let rows = try catalog.usage(keys: keys, dataset: dataset, from: from ?? String(today.prefix(7)) + "-01", to: to ?? today)
        let (days, total) = UsageRow.grouped(rows, by: UsageGrouping(rawValue: by)!.group(keys: allKeys))
        func cells(_ r: UsageRow) -> [String] {
            [String(r.requests), String(r.rows), String(r.bytes), String(r.exports), String(r.jobs), String(r.epsilon)]
        }
        if global.json {
            try printJSON(days.map { d in
                ["day": d.day, by: d.group, "requests": String(d.counts.requests), "rows": String(d.counts.rows), "bytes": String(d.counts.bytes),
                 "exports": String(d.counts.exports), "jobs": String(d.counts.jobs), "epsilon": String(d.counts.epsilon)]
            })
            return
        }
        let label: (String) -> String = { $0.isEmpty ? (by == "dataset" ? "(none)" : "(anonymous)") : $0 }
        printTable(["day", by, "requests", "rows", "bytes", "exports", "jobs", "ε"],
                   days.map { [$0.day, label($0.group)] + cells($0.counts) } + [["total", ""] + cells(total)])
    }
}
