import ArgumentParser
import Audit
import Foundation
import KaifangCore
import Storage

struct DutyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duty",
        abstract: "Departments' duty lists (责任清单): the datasets each should open or share, by when.",
        subcommands: [Add.self, List.self, Withdraw.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Put a dataset on a department's duty list.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The department that owes it (`kaifang department list`).") var department: String
        @Option(help: "The id of the dataset that answers it (it need not be in the catalog yet).") var dataset: String
        @Option(help: "open (publish it open or conditional) or share (publish it at any tier, restricted included).") var kind: String = "open"
        @Option(help: "The last day it is on time, YYYY-MM-DD (UTC).") var due: String
        @Option(help: "What the data is, as the list names it.") var title: String

        func validate() throws {
            guard DutyKind(rawValue: kind) != nil else { throw ValidationError("--kind must be open or share") }
        }

        func run() throws {
            let d = try openCatalog(global).createDuty(department: department, dataset: dataset, kind: DutyKind(rawValue: kind)!, title: title, due: due, actor: cliActor)
            if global.json { try printJSON(["id": String(d.id), "department": d.department, "dataset": d.dataset, "due": d.due]) } else {
                print("Duty \(d.id): \(d.department) is to \(d.kind == .open ? "open" : "share") \(d.dataset) by \(d.due).")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List duty entries with where each stands (due, late, done, done late, withdrawn).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only one department's.") var department: String?
        @Flag(help: "Only the late ones.") var late = false
        @Option(help: "Judge them on this day instead of today (YYYY-MM-DD).") var at: String?

        func run() throws {
            if let at { try CatalogRules.calendarDay(at, what: "--at") }
            let today = at ?? String(AuditChain.timestamp().prefix(10))
            let list = try openCatalog(global).duties(department: department).filter { !late || $0.state(today: today) == .late }
            let rows = list.map { d in
                [String(d.id), d.department, d.dataset, d.kind.rawValue, d.title, d.due, d.state(today: today).rawValue,
                 d.fulfilledAt.map { String($0.prefix(10)) } ?? "", d.withdrawnReason ?? ""]
            }
            let header = ["id", "department", "dataset", "kind", "title", "due", "state", "fulfilled", "withdrawn"]
            if global.json {
                try printJSON(rows.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) })
            } else if rows.isEmpty {
                print(late ? "No duty is late on \(today)." : "No duties.")
            } else {
                printTable(header, rows)
            }
        }
    }

    struct Withdraw: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "withdraw", abstract: "Take an entry off the list, with the reason (it stays, marked).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The duty's id (`kaifang duty list`).") var id: Int64
        @Option(help: "Why it no longer applies.") var reason: String

        func run() throws {
            let d = try openCatalog(global).withdrawDuty(id, reason: reason, actor: cliActor)
            if global.json { try printJSON(["id": String(d.id), "withdrawn_at": d.withdrawnAt ?? ""]) } else { print("Withdrew duty \(d.id) (\(d.dataset)).") }
        }
    }
}
