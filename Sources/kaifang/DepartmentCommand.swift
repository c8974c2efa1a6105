import ArgumentParser
import Foundation
import KaifangCore
import Storage

struct DepartmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "department", abstract: "Add and list the departments that own datasets.",
                                                    subcommands: [Add.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a department; its datasets are those whose manifest names it in \"department\".")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The name, exactly as manifests write it (for example 省民政厅).") var name: String
        @Option(help: "The department above it (province → city → county), which must exist.") var parent: String?

        func run() throws {
            let d = try openCatalog(global).createDepartment(name: name, parent: parent, actor: cliActor)
            if global.json {
                try printJSON(["name": d.name, "parent": d.parent ?? "", "created_at": d.createdAt])
            } else {
                print("Added department \(d.name)\(d.parent.map { " under \($0)" } ?? ""). Its people's keys: kaifang key create --role publisher|reviewer --department '\(d.name)' --name …")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List departments with their parent, datasets and active publisher and reviewer keys.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let catalog = try openCatalog(global)
            let departments = try catalog.departments()
            let keys = try catalog.keys(account: nil).filter(\.isActive)
            let owned = Dictionary(uniqueKeysWithValues: try catalog.search(DatasetQuery(limit: 1, includeUnpublished: true)).departments.map { ($0.value, $0.count) })
            let rows = departments.map { d -> [String] in
                let people = keys.filter { $0.department == d.name }
                return [d.name, d.parent ?? "", String(owned[d.name] ?? 0),
                        String(people.filter { $0.role == .publisher }.count), String(people.filter { $0.role == .reviewer }.count)]
            }
            if global.json {
                try printJSON(rows.map { ["name": $0[0], "parent": $0[1], "datasets": $0[2], "publishers": $0[3], "reviewers": $0[4]] })
            } else {
                printTable(["name", "parent", "datasets", "publishers", "reviewers"], rows)
            }
        }
    }
}
