import ArgumentParser
import Audit
import Foundation
import KaifangCore
import Storage

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Error reports (纠错) on published datasets: list them and close them with a resolution.",
        discussion: "Users report errors with POST /v1/datasets/{id}/reports; the dataset's department closes them within its working days. The steward closes them here for any department.",
        subcommands: [List.self, Resolve.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List error reports, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only those on one dataset.") var dataset: String?
        @Option(help: "Only those on one department's datasets.") var department: String?
        @Flag(help: "Only those still open after their due day.") var overdue = false

        func run() throws {
            let today = String(AuditChain.timestamp().prefix(10))
            let list = try openCatalog(global).errorReports(dataset: dataset, department: department).filter { !overdue || $0.isOverdue(today: today) }
            let header = ["id", "dataset", "field", "version", "row", "status", "due", "overdue", "resolution", "text"]
            let rows = list.map { r in
                [String(r.id), r.dataset, r.field ?? "", r.version.map(String.init) ?? "", r.row ?? "", r.status.rawValue, r.due,
                 r.isOverdue(today: today) ? "yes" : "", r.resolution.map { $0.rawValue + (r.fixedVersion.map { " v\($0)" } ?? "") } ?? "", r.text]
            }
            if global.json {
                try printJSON(rows.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) })
            } else if rows.isEmpty {
                print(overdue ? "No report is overdue on \(today)." : "No error reports.")
            } else {
                printTable(header, rows)
            }
        }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resolve", abstract: "Close a report: fixed (in a later version), not_an_error or wont_fix.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The report's id (`kaifang report list`).") var id: Int64
        @Option(help: "fixed, not_an_error or wont_fix.") var resolution: String
        @Option(help: "The answer (1–2000 characters).") var text: String
        @Option(help: "For fixed: the version that corrects it.") var version: Int?

        func validate() throws {
            guard ReportResolution(rawValue: resolution) != nil else { throw ValidationError("--resolution must be fixed, not_an_error or wont_fix") }
        }

        func run() throws {
            let r = try openCatalog(global).closeReport(id, .resolve(ReportResolution(rawValue: resolution)!, answer: text, fixedVersion: version),
                                                        keyID: "cli", actor: cliActor)
            if global.json { try printJSON(["id": String(r.id), "status": r.status.rawValue, "resolution": r.resolution?.rawValue ?? ""]) } else {
                print("Report \(r.id) on \(r.dataset) is closed: \(r.resolution?.rawValue ?? "")\(r.fixedVersion.map { " in version \($0)" } ?? "").")
            }
        }
    }
}
