import ArgumentParser
import Foundation
import KaifangCore
import Publishing
import Storage

/// `kaifang scorecard`: department scorecards now, the monthly snapshots kept, taking one.
struct ScorecardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scorecard", abstract: "Department scorecards: open rate by data items, timeliness, on-demand sharing, quality.",
        subcommands: [Show.self, Snapshot.self, History.self], defaultSubcommand: Show.self)

    static func percent(_ x: Double?) -> String { x.map { String(format: "%.1f %%", $0 * 100) } ?? "—" }

    /// One row per card, led by its month when given.
    static func table(_ cards: [(month: String?, card: Scorecard)]) {
        let months = cards.contains { $0.month != nil }
        printTable((months ? ["month"] : []) + ["department", "datasets", "items opened", "open rate", "timely", "sharing", "pending", "completeness", "metadata"],
                   cards.map { month, c in
            (months ? [month ?? ""] : []) + [c.department, String(c.datasets), "\(c.itemsOpened)/\(c.items)", percent(c.openRate),
                                          "\(c.timely)/\(c.published)", c.applicationsDecided == 0 ? "—" : "\(c.applicationsApproved)/\(c.applicationsDecided)",
                                          String(c.applicationsPending), percent(c.completeness), c.metadataScore.map { String(format: "%.0f", $0) } ?? "—"]
        })
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Every department's figures now (applications counted over this month so far).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let catalog = try openCatalog(global)
            let now = Date()
            let month = ScorecardMonth.of(now)
            let cards = try Scorecard.compute(catalog: catalog, start: try ScorecardMonth.bounds(month).start, end: now)
            if global.json { try printJSON(cards); return }
            if cards.isEmpty { print("No dataset in the catalog yet: scorecards count each department's datasets."); return }
            print("Scorecards of \(month), so far:")
            ScorecardCommand.table(cards.map { (nil, $0) })
        }
    }

    struct Snapshot: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "snapshot",
            abstract: "Keeps a month's scorecards (as of its last instant), unless kept already; the server does it within the hour after a month ends.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The month (YYYY-MM); default: last month.") var month: String?

        func run() throws {
            let catalog = try openCatalog(global)
            let target = try month ?? ScorecardMonth.previous(ScorecardMonth.of(Date()))
            let stored = try ScorecardSnapshots.take(target, catalog: catalog, actor: "cli:steward")
            if stored > 0 {
                print("Kept the scorecards of \(target): \(stored) department\(stored == 1 ? "" : "s").")
            } else if let kept = try catalog.scorecards(month: target).first {
                print("The scorecards of \(target) were kept at \(kept.takenAt); a kept month never changes.")
            } else {
                print("No dataset was in the catalog by the end of \(target): nothing to keep.")
            }
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "history", abstract: "The months kept, oldest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this department.") var department: String?
        @Flag(help: "CSV, one row per month and department.") var csv = false

        func run() throws {
            let catalog = try openCatalog(global)
            let kept = try ScorecardSnapshots.history(catalog: catalog).filter { department == nil || $0.card.department == department }
            if csv { print(ScorecardSnapshots.csv(kept), terminator: ""); return }
            if global.json {
                struct Out: Encodable { var month: String, taken_at: String, scorecard: Scorecard }
                try printJSON(kept.map { Out(month: $0.month, taken_at: $0.takenAt, scorecard: $0.card) })
                return
            }
            if kept.isEmpty { print("No month kept yet: `kaifang scorecard snapshot` keeps last month."); return }
            ScorecardCommand.table(kept.map { ($0.month, $0.card) })
        }
    }
}
