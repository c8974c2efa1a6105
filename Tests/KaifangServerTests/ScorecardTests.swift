import Audit
import Foundation
import KaifangCore
@testable import KaifangServer
import Publishing
import Storage
import Testing

/// Department scorecards on a catalog small enough to count by hand, on either store: each
/// figure, the catalog's history read back as of a past instant, a month kept once and never
/// changed, and the same data through the API (JSON, CSV) and the portal's SVG charts.
@Suite struct ScorecardTests {
    static let roads = DatasetManifest(id: "roads", title: "道路 roads", department: "省交通运输厅", updateFrequency: "daily", shouldOpen: true, fields: [
        FieldSpec(name: "road", level: .L1), FieldSpec(name: "district", level: .L1),
        FieldSpec(name: "length", type: .number, level: .L1), FieldSpec(name: "note", level: .L1, action: .suppress),
    ])
    static let bridges = DatasetManifest(id: "bridges", title: "桥梁 bridges", department: "省交通运输厅", shouldOpen: true, fields: [
        FieldSpec(name: "bridge", level: .L1), FieldSpec(name: "river", level: .L1), FieldSpec(name: "built", type: .integer, level: .L1),
    ])
    static let internalUse = DatasetManifest(id: "internal", title: "内部 internal", department: "省交通运输厅", updateFrequency: "irregular", fields: [
        FieldSpec(name: "a", level: .L1), FieldSpec(name: "b", level: .L1),
    ])
    static let rivers = DatasetManifest(id: "rivers", title: "河流 rivers", department: "省水利厅", updateFrequency: "monthly", shouldOpen: true, fields: [
        FieldSpec(name: "river", level: .L1), FieldSpec(name: "flow", type: .number, level: .L1),
    ])

    /// roads: published open, `note` suppressed in the public view, one empty `district` of two
    /// (completeness 1, ½, 1, 1 → 0.875). bridges: should open, never published. internal: not
    /// meant to open, published restricted, complete. rivers: conditional, complete; three
    /// applications: one approved, one rejected, one pending.
    static func load(_ catalog: any CatalogStore, _ dir: String) throws {
        let publisher = Publisher(catalog: catalog)
        for (m, csv) in [(roads, "road,district,length,note\nG1,玄武区,12.5,x\nG2,,3,y\n"), (bridges, "bridge,river,built\nB1,秦淮河,1990\n"),
                         (internalUse, "a,b\n1,2\n"), (rivers, "river,flow\n长江,30000\n秦淮河,40\n")] {
            let path = (dir as NSString).appendingPathComponent("\(m.id).csv")
            try csv.write(toFile: path, atomically: true, encoding: .utf8)
            _ = try publisher.importCSV(path: path, datasetID: m.id, manifest: m, onError: .reject, actor: "t")
        }
        try catalog.publish(dataset: "roads", tier: .open, actor: "t")
        try catalog.publish(dataset: "internal", tier: .restricted, actor: "t")
        try catalog.publish(dataset: "rivers", tier: .conditional, actor: "t")
        let (partner, _) = try catalog.createKey(role: .partner, name: "伙伴", actor: "t")
        var ids: [Int64] = []
        for _ in 0..<3 {
            ids.append(try catalog.createApplication(keyID: partner.id, dataset: "rivers", purpose: "研究全省河流流量的统计分析与防汛规划", fields: [], use: .rows, durationDays: 30).id)
        }
        _ = try catalog.approve(application: ids[0], actor: "t")
        try catalog.reject(application: ids[1], reason: "用途不明确 unclear purpose", actor: "t")
    }

    @Test func eachFigureIsTheOneCountedByHand() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            let before = Date().addingTimeInterval(-1)
            try Self.load(s.catalog, s.dataDir)
            let now = Date()
            func cards(from start: Date, at end: Date) throws -> [String: Scorecard] {
                Dictionary(uniqueKeysWithValues: try Scorecard.compute(catalog: s.catalog, start: start, end: end).map { ($0.department, $0) })
            }
            let soon = try cards(from: before, at: now.addingTimeInterval(3600))
            let roads = try #require(soon["省交通运输厅"]), water = try #require(soon["省水利厅"])
            #expect(soon.count == 2)
            // Items: roads 4 (3 served: note suppressed) + bridges 3 (unpublished); internal is not meant to open.
            #expect(roads.datasets == 3 && roads.shouldOpen == 2 && roads.items == 7 && roads.itemsOpened == 3 && roads.openRate == 3.0 / 7)
            #expect(roads.published == 2 && roads.timely == 2 && roads.timelinessRate == 1)
            #expect(roads.completeness == (0.875 + 1) / 2)
            #expect(roads.applicationsDecided == 0 && roads.sharingRate == nil && roads.applicationsPending == 0)
            // rivers: conditional, both fields served in the licensed view; one of two decisions an approval.
            #expect(water.items == 2 && water.itemsOpened == 2 && water.openRate == 1 && water.completeness == 1)
            #expect(water.applicationsDecided == 2 && water.applicationsApproved == 1 && water.sharingRate == 0.5 && water.applicationsPending == 1)
            // The mean of the datasets' metadata scores.
            var scores: [Int] = []
            for id in ["roads", "bridges", "internal"] { scores.append(MetadataScore.of(try #require(try s.catalog.dataset(id))).points) }
            #expect(roads.metadataScore == Double(scores.reduce(0, +)) / 3)

            // /v1/stats counts the same items as they stand now, the platform's first.
            func openItems() async throws -> [String: (shouldOpen: Int?, items: Int?, opened: Int?, rate: Double?)] {
                let list = try #require(try await s.get("/v1/stats").object["open_items"] as? [[String: Any]])
                #expect(list.first?["department"] as? String == "")
                return Dictionary(uniqueKeysWithValues: list.map {
                    ($0["department"] as? String ?? "?", ($0["should_open"] as? Int, $0["items"] as? Int, $0["items_opened"] as? Int, $0["open_rate"] as? Double))
                })
            }
            let items = try await openItems()
            #expect(items.count == 3)
            #expect(items[""]?.shouldOpen == 3 && items[""]?.items == 9 && items[""]?.opened == 5 && items[""]?.rate == 5.0 / 9)
            #expect(items["省交通运输厅"]?.items == 7 && items["省交通运输厅"]?.opened == 3 && items["省交通运输厅"]?.rate == 3.0 / 7)
            #expect(items["省水利厅"]?.items == 2 && items["省水利厅"]?.opened == 2 && items["省水利厅"]?.rate == 1)
            // The portal's home and the department's page show the same rates.
            let home = try await s.get("/").text
            #expect(home.contains("数据项开放率") && home.contains("5 / 9") && home.contains("3/7"))
            #expect(try await s.get("/departments/\(Portal.pathComponent("省交通运输厅"))").text.contains("43\u{00A0}% (3 / 7)"))

            // 40 days on, the daily dataset is delinquent, the monthly one due (still timely), the
            // irregular one never late; at 50 days the monthly one is overdue.
            let later = try cards(from: before, at: now.addingTimeInterval(40 * 86_400))
            #expect(later["省交通运输厅"]?.timely == 1 && later["省交通运输厅"]?.timelinessRate == 0.5 && later["省水利厅"]?.timely == 1)
            #expect(try cards(from: before, at: now.addingTimeInterval(50 * 86_400))["省水利厅"]?.timelinessRate == 0)
            // Applications decided before the period are not counted in it; the pending one still is pending.
            let nextPeriod = try cards(from: now.addingTimeInterval(1), at: now.addingTimeInterval(3600))["省水利厅"]
            #expect(nextPeriod?.applicationsDecided == 0 && nextPeriod?.sharingRate == nil && nextPeriod?.applicationsPending == 1)
            // Before anything was imported there is nothing to count.
            #expect(try cards(from: before.addingTimeInterval(-60), at: before).isEmpty)

            // Withdrawn now, roads still counts as published as of its publication's instant.
            let published = try #require(try s.catalog.datasetEvents(dataset: "roads", limit: 1).first)
            try await Task.sleep(for: .milliseconds(5))
            try s.catalog.withdraw(dataset: "roads", actor: "t")
            let asOfPublication = try cards(from: before, at: try #require(AuditChain.date(published.at)))["省交通运输厅"]
            #expect(asOfPublication?.itemsOpened == 3)
            let afterWithdrawal = try cards(from: before, at: Date().addingTimeInterval(1))["省交通运输厅"]
            #expect(afterWithdrawal?.itemsOpened == 0 && afterWithdrawal?.published == 1 && afterWithdrawal?.openRate == 0)
            // Withdrawn, roads' four fields are still on the list and none is open.
            let withdrawn = try await openItems()
            #expect(withdrawn[""]?.items == 9 && withdrawn[""]?.opened == 2 && withdrawn["省交通运输厅"]?.opened == 0 && withdrawn["省交通运输厅"]?.rate == 0)
        }
    }

    @Test func aMonthIsKeptOnceAndServedAsJSONCSVAndCharts() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            try Self.load(s.catalog, s.dataDir)
            let month = ScorecardMonth.of(Date())
            let (start, end) = try ScorecardMonth.bounds(month)
            #expect(throws: KaifangError.self) { try ScorecardSnapshots.take(month, catalog: s.catalog, actor: "t") }
            // Taken a day after the month ends: the figures as of its last instant.
            let afterwards = end.addingTimeInterval(86_400)
            #expect(try ScorecardSnapshots.take(month, catalog: s.catalog, actor: "t", now: afterwards) == 2)
            let kept = try ScorecardSnapshots.history(catalog: s.catalog)
            let expected = try Scorecard.compute(catalog: s.catalog, start: start, end: end.addingTimeInterval(-0.001))
            #expect(kept.map(\.card) == expected && kept.allSatisfy { $0.month == month })
            // A kept month never changes: a second take stores nothing, even after the catalog changed.
            try s.catalog.withdraw(dataset: "rivers", actor: "t")
            #expect(try ScorecardSnapshots.take(month, catalog: s.catalog, actor: "t", now: afterwards) == 0)
            #expect(try ScorecardSnapshots.history(catalog: s.catalog).map(\.card) == expected)
            #expect(try s.catalog.auditEvents().filter { $0.event.action == "scorecards.snapshot" }.count == 1)
            #expect(throws: KaifangError.self) { try ScorecardSnapshots.take("2026-13", catalog: s.catalog, actor: "t") }

            let live = try await s.get("/v1/scorecards")
            let departments = try #require(live.object["departments"] as? [[String: Any]])
            #expect(live.status == 200 && live.object["month"] as? String == month && departments.count == 2)
            let water = try #require(departments.first { $0["department"] as? String == "省水利厅" })
            #expect(water["items_opened"] as? Int == 0 && water["sharing_rate"] as? Double == 0.5 && water["applications_pending"] as? Int == 1)
            let history = try await s.get("/v1/scorecards/history").object["months"] as? [[String: Any]]
            #expect(history?.count == 1 && history?.first?["month"] as? String == month && (history?.first?["departments"] as? [Any])?.count == 2)
            let csv = try await s.get("/v1/scorecards/history?format=csv&department=%E7%9C%81%E4%BA%A4%E9%80%9A%E8%BF%90%E8%BE%93%E5%8E%85")
            let lines = csv.text.split(separator: "\n")
            #expect(csv.status == 200 && csv.headers["content-type"]?.hasPrefix("text/csv") == true && lines.count == 2, "\(csv.text)")
            let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let row = lines[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(header.count == 17 && row.count == 17)
            let cell = Dictionary(uniqueKeysWithValues: zip(header, row))
            #expect(cell["department"] == "省交通运输厅" && cell["items"] == "7" && cell["items_opened"] == "3" && cell["open_rate"] == "0.4286" && cell["sharing_rate"] == "")
            #expect(try await s.get("/v1/scorecards/history?from=2026-13").status == 400)
            #expect(try await s.get("/v1/scorecards/history?from=2099-01").object["months"] as? [Any] != nil)

            // The portal: the month so far in a table, one chart per rate with a line per department.
            let page = try await s.get("/scorecards")
            #expect(page.status == 200 && page.text.contains("省水利厅") && page.text.contains("3 / 7"))
            #expect(page.text.components(separatedBy: "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 520 240\"").count - 1 == Scorecard.rates.count)
            #expect(page.text.contains("<polyline") && page.text.contains("\(month)*") && !page.text.contains("<script"))
        }
    }

    /// A chart's geometry: 0 % at the plot's bottom, 100 % at its top, points spread over the
    /// width; a gap breaks the line; names and labels are escaped.
    @Test func aChartPlacesItsPointsAndEscapesItsText() {
        let svg = LineChart.svg(title: "T<1>", labels: ["2026-10", "2026-11", "2026-12*"],
                                series: [.init(name: "局<script>&", values: [0, nil, 1]), .init(name: "b", values: [0.5, 0.25, 1])])
        let bottom = LineChart.height - LineChart.bottom, top = LineChart.top
        #expect(svg.contains("<circle cx=\"44.0\" cy=\"\(String(format: "%.1f", bottom))\""))
        #expect(svg.contains("<circle cx=\"500.0\" cy=\"\(String(format: "%.1f", top))\""))
        #expect(svg.contains("<circle cx=\"272.0\" cy=\"\(String(format: "%.1f", top + (bottom - top) * 0.75))\""))
        // The first series has a gap in the middle: no line of its own, only the second's.
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 1)
        #expect(!svg.contains("<script") && svg.contains("局&lt;script&gt;&amp; 2026-12*: 100.0 %") && svg.contains("T&lt;1&gt;"))
    }
}
