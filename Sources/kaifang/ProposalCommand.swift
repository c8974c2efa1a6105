import ArgumentParser
import Foundation
import KaifangCore
import Storage

struct ProposalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proposal",
        abstract: "Departments' proposals to publish (two-person rule): who proposed, who approved, what they wait for.",
        subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List proposals, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only one department's.") var department: String?
        @Option(help: "pending, published, refused or withdrawn.") var status: String?

        func validate() throws {
            if let status, ProposalStatus(rawValue: status) == nil {
                throw ValidationError("--status must be one of \(ProposalStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let list = try openCatalog(global).proposals(department: department, status: status.flatMap(ProposalStatus.init(rawValue:)))
            let rows = list.map { p -> [String] in
                [p.id, p.dataset, String(p.version), p.tier.rawValue, p.department, p.status.rawValue,
                 p.awaiting.map(\.rawValue).joined(separator: "+"), p.proposedBy, p.reviewedBy ?? "", p.securityBy ?? "",
                 p.refusedReason ?? p.overrideReason ?? "", p.proposedAt]
            }
            let header = ["id", "dataset", "version", "tier", "department", "status", "awaiting", "proposed by", "reviewer", "security", "reason", "proposed"]
            if global.json {
                try printJSON(rows.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) })
            } else if rows.isEmpty {
                print("No proposals.")
            } else {
                printTable(header, rows)
            }
        }
    }
}
