import ArgumentParser
import Foundation
import KaifangCore
import Storage

struct ShowcaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "showcase",
        abstract: "Showcases (应用场景) registered through the API: list, approve or refuse them.",
        discussion: "Users register applications and research results with POST /v1/showcases; they are shown on the portal and counted once approved.",
        subcommands: [List.self, Approve.self, Refuse.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List showcases, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only those in one status: pending, approved, refused or withdrawn.") var status: String?

        func validate() throws {
            if let status, ShowcaseStatus(rawValue: status) == nil { throw ValidationError("--status must be pending, approved, refused or withdrawn") }
        }

        func run() throws {
            let list = try openCatalog(global).showcases(status: status.flatMap(ShowcaseStatus.init(rawValue:)))
            let header = ["id", "title", "datasets", "licenses", "status", "filed", "url"]
            let rows = list.map { s in
                [String(s.id), s.title, s.datasets.joined(separator: ","), String(s.licenses.count), s.status.rawValue, String(s.filedAt.prefix(10)), s.url ?? ""]
            }
            if global.json { try printJSON(rows.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }) } else if rows.isEmpty { print("No showcases.") } else { printTable(header, rows) }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve a pending showcase: it is shown and counted.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The showcase's id (`kaifang showcase list`).") var id: Int64
        func run() throws {
            let s = try openCatalog(global).decideShowcase(id, .approve, keyID: "cli", actor: cliActor)
            if global.json { try printJSON(["id": String(s.id), "status": s.status.rawValue]) } else { print("Showcase \(s.id) (\(s.title)) is approved.") }
        }
    }

    struct Refuse: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "refuse", abstract: "Refuse a pending showcase, with the reason.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The showcase's id.") var id: Int64
        @Option(help: "Why (1–2000 characters).") var reason: String
        func run() throws {
            let s = try openCatalog(global).decideShowcase(id, .refuse(reason: reason), keyID: "cli", actor: cliActor)
            if global.json { try printJSON(["id": String(s.id), "status": s.status.rawValue]) } else { print("Showcase \(s.id) is refused.") }
        }
    }
}
