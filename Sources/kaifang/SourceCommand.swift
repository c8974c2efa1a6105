import ArgumentParser
import Foundation
import KaifangCore
import KaifangServer
import Logging
import Publishing
import Storage

struct SourceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "source", abstract: "Harvest datasets from URLs (conditional GET; a version only when the content changed).",
                                                    subcommands: [Add.self, Sync.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Set a dataset's source URL and interval; `kaifang serve` fetches it when due.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id (import a first version with --manifest before).") var id: String
        @Option(help: "The http(s) URL of a CSV, JSON Lines or bundle file.") var url: String
        @Option(help: "How often: 30m, 1h, 1d (at least 1m).") var every: String
        @Flag(help: "Publish each new version at the dataset's current tier (the k-anonymity gate applies).") var publish = false

        func validate() throws {
            guard Harvester.interval(every) != nil else { throw ValidationError("--every must look like 30m, 1h or 1d") }
        }

        func run() throws {
            try openCatalog(global).addSource(dataset: id, url: url, intervalSeconds: Harvester.interval(every)!, publish: publish, actor: cliActor)
            if global.json { try printJSON(["dataset": id, "url": url, "every": every]) } else {
                print("\(id) is harvested from \(url) every \(every)\(publish ? ", new versions published" : ""). `kaifang source sync \(id)` fetches it now.")
            }
        }
    }

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sync", abstract: "Fetch a source now.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String

        func run() async throws {
            let outcome = try await Harvester(catalog: try openCatalog(global), logger: Logger(label: "kaifang")).sync(id, actor: cliActor)
            let text: String
            switch outcome {
            case .notModified: text = "not modified (304): no new version"
            case .unchanged: text = "content unchanged: no new version"
            case .imported(let v, let rows): text = "new version \(v) with \(rows) rows"
            case .failed(let why): throw KaifangError.runtime("sync of \(id) failed: \(why); the previous version stays")
            }
            if global.json { try printJSON(["dataset": id, "outcome": text]) } else { print("\(id): \(text)") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List sources with their state.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let sources = try openCatalog(global).sources()
            if global.json {
                try printJSON(sources.map { ["dataset": $0.dataset, "url": $0.url, "interval_seconds": String($0.intervalSeconds), "next_due_at": $0.nextDueAt,
                                             "failures": String($0.failures), "last_error": $0.lastError ?? ""] })
                return
            }
            if sources.isEmpty { print("No sources."); return }
            printTable(["dataset", "every", "next due", "checked", "failures", "url"], sources.map {
                [$0.dataset, "\($0.intervalSeconds)s", $0.nextDueAt, $0.lastCheckedAt ?? "-", $0.failures == 0 ? "" : "\($0.failures): \($0.lastError ?? "")", $0.url]
            })
        }
    }
}
