import ArgumentParser
import Audit
import Foundation
import Publishing
import KaifangCore
import Storage

/// `kaifang stats`: the platform's figures, as `GET /v1/stats` gives them.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Datasets by tier and department, the open rate, reads per dataset over 30 days, sandbox jobs, departments' duty lists.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Count reads over this many days.") var days: Int = 30
    @Flag(help: "List instead the published datasets that are overdue or delinquent against their update frequency, by department.")
    var overdue = false
    @Option(help: "Judge freshness at this time instead of now (YYYY-MM-DD or an ISO 8601 time, UTC).") var at: String?

    func run() throws {
        let catalog = try openCatalog(global)
        if overdue || at != nil {
            try listLate(catalog, now: try Self.time(at))
            return
        }
        let since = String(AuditChain.timestamp(Date().addingTimeInterval(-Double(max(days, 1)) * 86_400)).prefix(10))
        let s = try catalog.stats(since: since)
        var jobs: [String: Int] = [:]
        for j in try catalog.jobs(limit: 1_000_000) { jobs[j.status.rawValue, default: 0] += 1 }
        let today = String(AuditChain.timestamp().prefix(10))
        var duties: [String: [String: Int]] = [:]
        for d in try catalog.duties(department: nil) { duties[d.department, default: [:]][d.state(today: today).rawValue, default: 0] += 1 }
        let figures = try Figures.of(catalog: catalog, today: today)
        let (demand, feedback, showcases) = (figures.demand, figures.feedback, figures.showcases)
        if global.json {
            struct Out: Encodable {
                var datasets: Int, published: Int, should_open: Int, opened: Int, open_rate: Double
                var open_items: [OpenItems]
                var by_tier: [String: Int], by_department: [String: Int], reads: [String: Int], jobs: [String: Int]
                var duties: [String: [String: Int]]
                var demand: [Demand]
                var feedback: [Feedback]
                var showcases: [Showcases]
            }
            struct OpenItems: Encodable { var department: String, should_open: Int, items: Int, items_opened: Int, open_rate: Double? }
            struct Showcases: Encodable { var department: String, approved: Int, pending: Int }
            struct Feedback: Encodable {
                var department: String, reports: Int, closed: Int, closed_on_time: Int, overdue: Int, on_time_rate: Double?, ratings: Int, mean_stars: Double?
            }
            struct Demand: Encodable {
                var department: String, requests: Int, listed_items: Int, delivered_items: Int, on_demand_rate: Double?
                var answered: Int, answered_on_time: Int, overdue: Int, on_time_rate: Double?
            }
            func dict(_ f: [FacetCount]) -> [String: Int] { Dictionary(f.map { ($0.value, $0.count) }, uniquingKeysWith: +) }
            try printJSON(Out(datasets: s.datasets, published: s.published, should_open: s.shouldOpen, opened: s.opened, open_rate: s.openRate,
                              open_items: figures.openItems.map { OpenItems(department: $0.department, should_open: $0.shouldOpen, items: $0.items,
                                                                            items_opened: $0.itemsOpened, open_rate: $0.openRate) },
                              by_tier: dict(s.byTier), by_department: dict(s.byDepartment), reads: dict(s.reads), jobs: jobs, duties: duties,
                              demand: demand.map { Demand(department: $0.department, requests: $0.requests, listed_items: $0.listedItems,
                                                          delivered_items: $0.deliveredItems, on_demand_rate: $0.onDemandRate, answered: $0.answered,
                                                          answered_on_time: $0.answeredOnTime, overdue: $0.overdue, on_time_rate: $0.onTimeRate) },
                              feedback: feedback.map { Feedback(department: $0.department, reports: $0.reports, closed: $0.closed, closed_on_time: $0.closedOnTime,
                                                                overdue: $0.overdue, on_time_rate: $0.onTimeRate, ratings: $0.ratings, mean_stars: $0.meanStars) },
                              showcases: showcases.map { Showcases(department: $0.department, approved: $0.approved, pending: $0.pending) }))
            return
        }
        print("datasets: \(s.datasets), published \(s.published)")
        printOpenItems(figures.openItems)
        print("datasets that should open, opened: \(s.opened) of \(s.shouldOpen) = \(String(format: "%.0f", s.openRate * 100)) %")
        print("by tier: " + s.byTier.map { "\($0.value) \($0.count)" }.joined(separator: ", "))
        print("by department: " + s.byDepartment.map { "\($0.value) \($0.count)" }.joined(separator: ", "))
        print("reads since \(since): " + (s.reads.isEmpty ? "none" : s.reads.map { "\($0.value) \($0.count)" }.joined(separator: ", ")))
        print("sandbox jobs: " + (jobs.isEmpty ? "none" : jobs.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
        if duties.isEmpty {
            print("duty lists (责任清单): none (kaifang duty add)")
        } else {
            print("duty lists (责任清单) on \(today), by department:")
            for (department, states) in duties.sorted(by: { $0.key < $1.key }) {
                let late = states[DutyState.late.rawValue] ?? 0
                print("  \(department): " + DutyState.allCases.compactMap { s in states[s.rawValue].map { "\(s.rawValue) \($0)" } }.joined(separator: ", ")
                      + (late > 0 ? "  ← \(late) late: kaifang duty list --late --department '\(department)'" : ""))
            }
        }
        printDemand(demand)
        printFeedback(feedback)
        let all = showcases.first ?? ShowcaseFigures(department: "")
        print("showcases (应用场景): \(all.approved) approved, \(all.pending) pending" + (all.pending > 0 ? "  ← kaifang showcase list --status pending" : "")
              + showcases.dropFirst().map { "\n  \($0.department): \($0.approved) approved" }.joined())
    }

    /// The open rate by data items, for the platform and each department with datasets that should open.
    func printOpenItems(_ figures: [OpenItemFigures]) {
        func line(_ f: OpenItemFigures) -> String {
            "\(f.itemsOpened) of \(f.items) items open" + (f.openRate.map { String(format: " = %.0f %%", $0 * 100) } ?? "")
                + " (\(f.shouldOpen) dataset\(f.shouldOpen == 1 ? "" : "s") that should open)"
        }
        guard let all = figures.first, all.shouldOpen > 0 else {
            print("open rate by data items (数据项开放率): no dataset should open (a manifest's should_open marks one)")
            return
        }
        print("open rate by data items (数据项开放率): " + line(all))
        for f in figures.dropFirst() { print("  \(f.department): \(line(f))") }
    }

    /// Error reports closed on time and ratings, for the platform and each department.
    func printFeedback(_ feedback: [FeedbackFigures]) {
        guard let all = feedback.first, all.reports + all.ratings > 0 else {
            print("error reports and ratings (纠错, 好差评): none")
            return
        }
        print("error reports and ratings (纠错, 好差评), by the datasets' department:")
        for f in feedback {
            print("  \(f.department.isEmpty ? "all" : f.department): \(f.reports) reports, closed on time \(f.closedOnTime) of \(f.closed + f.overdue)"
                  + (f.onTimeRate.map { String(format: " = %.0f %%", $0 * 100) } ?? "")
                  + "; \(f.ratings) ratings" + (f.meanStars.map { String(format: ", mean %.1f stars", $0) } ?? "")
                  + (f.overdue > 0 ? "  ← \(f.overdue) overdue: kaifang report list --overdue" + (f.department.isEmpty ? "" : " --department '\(f.department)'") : ""))
        }
    }

    /// Data requests and the on-demand sharing rate, for the platform and each department asked.
    func printDemand(_ demand: [DemandFigures]) {
        func pct(_ r: Double?) -> String { r.map { String(format: "%.0f %%", $0 * 100) } ?? "–" }
        guard let all = demand.first, all.requests > 0 else {
            print("data requests (数据需求): none (users file them with POST /v1/requests)")
            return
        }
        print("data requests (数据需求) on the demand list, by department asked:")
        for f in demand {
            print("  \(f.department.isEmpty ? "all" : f.department): \(f.requests) filed; 按需共享率 \(f.deliveredItems) of \(f.listedItems) items = \(pct(f.onDemandRate));"
                  + " answered on time \(f.answeredOnTime) of \(f.answered + f.overdue) = \(pct(f.onTimeRate))"
                  + (f.overdue > 0 ? "  ← \(f.overdue) overdue: kaifang request list --overdue\(f.department.isEmpty ? "" : " --department '\(f.department)'")" : ""))
        }
    }

    /// `--at`: a day (its start, UTC) or a time; now when absent.
    /// - Throws: `KaifangError.badInput` naming the form expected.
    static func time(_ text: String?) throws -> Date {
        guard let text else { return Date() }
        if let d = AuditChain.date(text) { return d }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let d = day.date(from: text) { return d }
        throw KaifangError.badInput("--at '\(text)' is not a day or a time: write 2027-03-01 or 2027-03-01T08:00:00Z")
    }

    /// The published datasets overdue or delinquent at `now`, by department, latest first.
    func listLate(_ catalog: any CatalogStore, now: Date) throws {
        var late: [(record: DatasetRecord, updatedAt: Date, state: Freshness)] = []
        for state in [Freshness.overdue, .delinquent] {
            var cursor: String?
            repeat {
                let page = try catalog.search(DatasetQuery(limit: 100, cursor: cursor, freshness: state, now: now))
                for item in page.datasets {
                    guard let at = item.updatedAt.flatMap(AuditChain.date) else { continue }
                    late.append((item.record, at, state))
                }
                cursor = page.nextCursor
            } while cursor != nil
        }
        late.sort { ($0.record.manifest.department, $0.updatedAt, $0.record.id) < ($1.record.manifest.department, $1.updatedAt, $1.record.id) }
        func daysLate(_ l: (record: DatasetRecord, updatedAt: Date, state: Freshness)) -> Int {
            let due = Freshness.nextDue(frequency: l.record.manifest.updateFrequency, updatedAt: l.updatedAt) ?? now
            return Int(now.timeIntervalSince(due) / 86_400)
        }
        if global.json {
            try printJSON(late.map { ["dataset": $0.record.id, "department": $0.record.manifest.department, "update_frequency": $0.record.manifest.updateFrequency,
                                      "updated_at": AuditChain.timestamp($0.updatedAt), "freshness": $0.state.rawValue, "days_late": String(daysLate($0))] })
            return
        }
        let when = AuditChain.timestamp(now).prefix(16).replacingOccurrences(of: "T", with: " ")
        if late.isEmpty { print("No published dataset is overdue at \(when) UTC."); return }
        print("Overdue or delinquent at \(when) UTC (\(late.count)):")
        printTable(["department", "dataset", "frequency", "updated", "state", "days late"], late.map {
            [$0.record.manifest.department.isEmpty ? "—" : $0.record.manifest.department, $0.record.id, $0.record.manifest.updateFrequency,
             String(AuditChain.timestamp($0.updatedAt).prefix(10)), $0.state.rawValue, String(daysLate($0))]
        })
    }
}
