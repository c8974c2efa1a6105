import ArgumentParser
import Audit
import Foundation
import KaifangCore
import Storage

struct RequestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Data requests (数据需求) filed through the API: list them and answer for a department.",
        discussion: "Users file requests with POST /v1/requests; the department asked answers within its working days. The steward answers here for any department.",
        subcommands: [List.self, Show.self, Reply.self, Accept.self, Fulfil.self, Decline.self])

    static func answer(_ global: GlobalOptions, _ id: Int64, _ a: RequestAnswer) throws {
        let r = try openCatalog(global).answerRequest(id, a, keyID: "cli", actor: cliActor)
        if global.json {
            try printJSON(["id": String(r.id), "status": r.status.rawValue, "dataset": r.dataset ?? "", "delivered_items": String(r.delivered.count)])
        } else if case .fulfil = a {
            print("Request \(r.id) fulfilled by \(r.dataset ?? "?") version \(r.version.map(String.init) ?? "?"): \(r.delivered.count) of \(r.items.count) data items delivered (\(r.delivered.joined(separator: ", "))).")
        } else {
            print("Request \(r.id) is \(r.status.rawValue).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List requests, newest first, with their status, votes and due day.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only those asking one department.") var department: String?
        @Option(help: "Only those in one status: open, accepted, fulfilled, declined or withdrawn.") var status: String?
        @Flag(help: "Only those still open after their due day.") var overdue = false

        func validate() throws {
            if let status, RequestStatus(rawValue: status) == nil { throw ValidationError("--status must be open, accepted, fulfilled, declined or withdrawn") }
        }

        func run() throws {
            let today = String(AuditChain.timestamp().prefix(10))
            let list = try openCatalog(global).dataRequests(department: department, status: status.flatMap(RequestStatus.init(rawValue:)))
                .filter { !overdue || $0.isOverdue(today: today) }
            let header = ["id", "department", "title", "items", "status", "votes", "due", "overdue", "dataset"]
            let rows = list.map { r in
                [String(r.id), r.department, r.title, String(r.items.count), r.status.rawValue, String(r.votes), r.due,
                 r.isOverdue(today: today) ? "yes" : "", r.dataset.map { d in r.version.map { "\(d) v\($0)" } ?? d } ?? ""]
            }
            if global.json {
                try printJSON(rows.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) })
            } else if rows.isEmpty {
                print(overdue ? "No request is overdue on \(today)." : "No data requests.")
            } else {
                printTable(header, rows)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One request in full, with its comments.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The request's id (`kaifang request list`).") var id: Int64

        func run() throws {
            let catalog = try openCatalog(global)
            guard let r = try catalog.dataRequest(id) else { throw CatalogRules.unknownRequest(id) }
            let comments = try catalog.requestComments(id)
            if global.json {
                try printJSON(["id": String(r.id), "title": r.title, "items": r.items.joined(separator: "、"), "purpose": r.purpose, "department": r.department,
                               "status": r.status.rawValue, "due": r.due, "votes": String(r.votes), "reply": r.reply ?? "", "reason": r.reason ?? "",
                               "dataset": r.dataset ?? "", "delivered_items": r.delivered.joined(separator: "、"), "comments": String(comments.count)])
                return
            }
            print("Request \(r.id) to \(r.department): \(r.title)")
            print("  items: \(r.items.joined(separator: "、"))")
            print("  purpose: \(r.purpose)")
            print("  status: \(r.status.rawValue), filed \(r.filedAt.prefix(10)), due \(r.due), \(r.votes) vote(s)")
            if let reply = r.reply { print("  reply: \(reply)") }
            if let reason = r.reason { print("  reason: \(reason)") }
            if let d = r.dataset { print("  fulfilled by \(d) v\(r.version ?? 0): \(r.delivered.count) of \(r.items.count) items (\(r.delivered.joined(separator: "、")))") }
            for c in comments { print("  [\(c.at.prefix(16))] \(c.fromDepartment ? "department" : c.role.rawValue): \(c.text)") }
        }
    }

    struct Reply: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reply", abstract: "Reply to a request (its status stays).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The request's id.") var id: Int64
        @Option(help: "The reply (1–2000 characters).") var text: String
        func run() throws { try RequestCommand.answer(global, id, .reply(text)) }
    }

    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "accept", abstract: "Put a request's data items on its department's demand list (需求清单).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The request's id.") var id: Int64
        @Option(help: "A reply to go with it.") var text: String?
        func run() throws { try RequestCommand.answer(global, id, .accept(text)) }
    }

    struct Fulfil: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fulfil", abstract: "Answer a request with a published dataset; records which of its data items the dataset's fields deliver.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The request's id.") var id: Int64
        @Option(help: "The published dataset that answers it.") var dataset: String
        @Option(help: "Its version (default: the published one).") var version: Int?
        @Option(help: "A reply to go with it.") var text: String?
        func run() throws { try RequestCommand.answer(global, id, .fulfil(dataset: dataset, version: version, reply: text)) }
    }

    struct Decline: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "decline", abstract: "Decline a request, with the reason (it stays, marked).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The request's id.") var id: Int64
        @Option(help: "Why (1–2000 characters).") var reason: String
        func run() throws { try RequestCommand.answer(global, id, .decline(reason: reason)) }
    }
}
