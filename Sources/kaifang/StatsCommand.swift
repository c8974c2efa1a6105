import ArgumentParser
import Audit
import Foundation
import Storage

/// `kaifang stats`: the platform's figures, as `GET /v1/stats` gives them.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Datasets by tier and department, the open rate, reads per dataset over 30 days, sandbox jobs.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Count reads over this many days.") var days: Int = 30

    func run() throws {
        let catalog = try openCatalog(global)
        let since = String(AuditChain.timestamp(Date().addingTimeInterval(-Double(max(days, 1)) * 86_400)).prefix(10))
        let s = try catalog.stats(since: since)
        var jobs: [String: Int] = [:]
        for j in try catalog.jobs(limit: 1_000_000) { jobs[j.status.rawValue, default: 0] += 1 }
        if global.json {
            struct Out: Encodable {
                var datasets: Int, published: Int, should_open: Int, opened: Int, open_rate: Double
                var by_tier: [String: Int], by_department: [String: Int], reads: [String: Int], jobs: [String: Int]
            }
            func dict(_ f: [FacetCount]) -> [String: Int] { Dictionary(f.map { ($0.value, $0.count) }, uniquingKeysWith: +) }
            try printJSON(Out(datasets: s.datasets, published: s.published, should_open: s.shouldOpen, opened: s.opened, open_rate: s.openRate,
                              by_tier: dict(s.byTier), by_department: dict(s.byDepartment), reads: dict(s.reads), jobs: jobs))
            return
        }
        print("datasets: \(s.datasets), published \(s.published)")
        print("open rate (应开放公共数据开放率): \(s.opened) of \(s.shouldOpen) = \(String(format: "%.0f", s.openRate * 100)) %")
        print("by tier: " + s.byTier.map { "\($0.value) \($0.count)" }.joined(separator: ", "))
        print("by department: " + s.byDepartment.map { "\($0.value) \($0.count)" }.joined(separator: ", "))
        print("reads since \(since): " + (s.reads.isEmpty ? "none" : s.reads.map { "\($0.value) \($0.count)" }.joined(separator: ", ")))
        print("sandbox jobs: " + (jobs.isEmpty ? "none" : jobs.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
    }
}
