import ArgumentParser
import Foundation
import KaifangCore
import Storage

struct WebhookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "webhook", abstract: "See developers' webhooks and their deliveries; stop one.",
                                                    subcommands: [List.self, Deliveries.self, Disable.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Webhooks, newest first: whose, which dataset, state and failures in a row.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this key's (its id, the 8 hex characters after kf_).") var key: String?

        func run() throws {
            let hooks = try openCatalog(global).webhooks(keyID: key)
            if global.json {
                try printJSON(hooks.map { ["id": $0.id, "key": $0.keyID, "url": $0.url, "dataset": $0.dataset ?? "", "created_at": $0.createdAt,
                                           "active": $0.isActive ? "true" : "false", "disabled_reason": $0.disabledReason ?? "",
                                           "failures": String($0.failures)] })
                return
            }
            printTable(["id", "key", "dataset", "url", "state", "failures"], hooks.map {
                [$0.id, $0.keyID, $0.dataset ?? "(all)", $0.url, $0.isActive ? "active" : "stopped: \($0.disabledReason ?? "")", String($0.failures)]
            })
        }
    }

    struct Deliveries: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "deliveries", abstract: "A webhook's delivery log, newest first.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The webhook id (wh_…).") var id: String
        @Option(help: "How many (at most 1000).") var limit: Int = 20

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1–1000") }
        }

        func run() throws {
            let catalog = try openCatalog(global)
            guard try catalog.webhook(id) != nil else { throw KaifangError.notFound("no webhook '\(id)': `kaifang webhook list` shows them") }
            let log = try catalog.webhookDeliveries(webhook: id, limit: limit)
            if global.json {
                try printJSON(log.map { ["id": String($0.id), "event": "evt_\($0.event.seq)", "type": "dataset.\($0.event.kind)", "dataset": $0.event.dataset,
                                         "status": $0.status, "attempts": String($0.attempts), "next_at": $0.nextAt ?? "",
                                         "last_status": $0.lastStatus.map(String.init) ?? "", "last_error": $0.lastError ?? "",
                                         "created_at": $0.createdAt, "delivered_at": $0.deliveredAt ?? ""] })
                return
            }
            printTable(["delivery", "event", "dataset", "status", "attempts", "last", "next attempt"], log.map {
                [String($0.id), "evt_\($0.event.seq) dataset.\($0.event.kind)", $0.event.dataset, $0.status, String($0.attempts),
                 $0.lastStatus.map { "HTTP \($0)" } ?? ($0.lastError ?? ""), $0.nextAt ?? ""]
            })
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "disable", abstract: "Stop a webhook (its pending deliveries are dropped; audited with the reason).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The webhook id (wh_…).") var id: String
        @Option(help: "Why: shown to its holder.") var reason: String

        func run() throws {
            let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !reason.isEmpty, reason.count <= 500 else { throw KaifangError.badInput("--reason must be 1–500 characters: its holder reads it") }
            let catalog = try openCatalog(global)
            guard try catalog.webhook(id) != nil else { throw KaifangError.notFound("no webhook '\(id)': `kaifang webhook list` shows them") }
            try catalog.disableWebhook(id, reason: "stopped by a steward: \(reason)", actor: cliActor)
            if global.json { try printJSON(["id": id, "active": "false"]) } else { print("Stopped webhook \(id).") }
        }
    }
}
