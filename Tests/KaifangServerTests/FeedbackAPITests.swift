import Foundation
import KaifangCore
import KaifangServer
import Publishing
import Storage
import Testing

/// Error reports (纠错) and ratings (好差评) against the live server: a developer reports an
/// error in a row of enterprises; the department that owns it (not another) closes it as fixed in
/// the version that corrects it; ratings are one per key and change in place; `/v1/stats` counts
/// both per department.
@Suite struct FeedbackAPITests {
    static let market = "省市场监督管理局"

    @Test func aReportIsClosedByItsDepartmentAndARatingChangesInPlace() async throws {
        try await LiveServer.with { s in
            let (_, developer) = try s.catalog.createKey(role: .developer, name: "开发者", account: nil, department: nil, actor: "t")
            let (_, other) = try s.catalog.createKey(role: .developer, name: "另一位", account: nil, department: nil, actor: "t")
            let (_, reviewer) = try s.catalog.createKey(role: .reviewer, name: "市场监管 reviewer", account: nil, department: Self.market, actor: "t")
            let (_, elsewhere) = try s.catalog.createKey(role: .reviewer, name: "民政 reviewer", account: nil, department: "省民政厅", actor: "t")
            let filed = try await s.get("/v1/datasets/enterprises/reports", key: developer, json: [
                "field": "注册资本(万元)", "version": 1, "row": "#3", "text": "注册资本单位应为万元，联系我 13912345678",
            ])
            #expect(filed.status == 201, "\(filed.text)")
            let id = try #require(filed.object["id"] as? Int)
            #expect(filed.object["field"] as? String == "registered_capital" && filed.object["department"] as? String == Self.market)
            #expect(filed.object["due"] as? String == CatalogRules.workingDaysAfter(String(CatalogRules.now().prefix(10)), 10))
            // Public, masked for all but the filer and the department.
            let list = try await s.get("/v1/datasets/enterprises/reports")
            #expect(list.status == 200 && !list.text.contains("13912345678") && list.text.contains("〔已脱敏〕"))
            #expect(try await s.get("/v1/reports/\(id)", key: reviewer).text.contains("13912345678"))
            #expect(!(try await s.get("/v1/reports/\(id)", key: other).text.contains("13912345678")))
            // Bad input: an unknown field (named with the dataset's), a row without a version, empty text.
            let field = try await s.get("/v1/datasets/enterprises/reports", key: developer, json: ["field": "收入", "text": "t"])
            #expect(field.status == 400 && field.text.contains("uscc"))
            #expect(try await s.get("/v1/datasets/enterprises/reports", key: developer, json: ["row": "#1", "text": "t"]).status == 400)
            #expect(try await s.get("/v1/datasets/enterprises/reports", key: developer, json: ["text": ""]).status == 400)
            #expect(try await s.get("/v1/datasets/nope/reports", key: developer, json: ["text": "t"]).status == 404)
            // Another department's reviewer does not close it; the owning department's does, as fixed in a later version.
            let fix: [String: Any] = ["resolution": "fixed", "text": "已在新版本更正", "version": 2]
            #expect(try await s.get("/v1/reports/\(id)/resolution", key: elsewhere, json: fix).status == 403)
            let noVersion = try await s.get("/v1/reports/\(id)/resolution", key: reviewer, json: fix)
            #expect(noVersion.status == 404 && noVersion.text.contains("version 2"))
            let csv = try String(contentsOf: LiveServer.repo.appendingPathComponent("datasets/enterprises/enterprises.csv"), encoding: .utf8)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ent-\(UUID().uuidString).csv")
            defer { try? FileManager.default.removeItem(at: path) }
            try csv.write(to: path, atomically: true, encoding: .utf8)
            _ = try Publisher(catalog: s.catalog).importCSV(path: path.path, datasetID: "enterprises", manifest: nil, actor: "t")
            let closed = try await s.get("/v1/reports/\(id)/resolution", key: reviewer, json: fix)
            #expect(closed.status == 200, "\(closed.text)")
            #expect(closed.object["status"] as? String == "closed" && closed.object["fixed_version"] as? Int == 2 && closed.object["closed_on_time"] as? Bool == true)
            let again = try await s.get("/v1/reports/\(id)/resolution", key: reviewer, json: ["resolution": "wont_fix", "text": "x"])
            #expect(again.status == 409 && again.headers["content-type"]?.hasPrefix("application/problem+json") == true)

            // Ratings: 1–5, one per key, changed in place.
            #expect(try await s.get("/v1/datasets/enterprises/ratings", key: developer, method: "PUT", json: ["stars": 6]).status == 400)
            #expect(try await s.get("/v1/datasets/enterprises/ratings", method: "PUT", json: ["stars": 4]).status == 401)
            #expect(try await s.get("/v1/datasets/enterprises/ratings", key: developer, method: "PUT", json: ["stars": 2, "comment": "缺少注销企业"]).status == 201)
            let changed = try await s.get("/v1/datasets/enterprises/ratings", key: developer, method: "PUT", json: ["stars": 4, "comment": "已补充"])
            #expect(changed.status == 200 && changed.object["stars"] as? Int == 4)
            #expect(try await s.get("/v1/datasets/enterprises/ratings", key: other, method: "PUT", json: ["stars": 5]).status == 201)
            let summary = try await s.get("/v1/datasets/enterprises/ratings")
            #expect(summary.object["count"] as? Int == 2 && summary.object["mean"] as? Double == 4.5)
            #expect(summary.object["histogram"] as? [Int] == [0, 0, 0, 1, 1])

            // The figures, per department.
            let stats = try await s.get("/v1/stats")
            let feedback = try #require(stats.object["feedback"] as? [[String: Any]])
            let market = try #require(feedback.first { $0["department"] as? String == Self.market })
            #expect(market["reports"] as? Int == 1 && market["closed_on_time"] as? Int == 1 && market["on_time_rate"] as? Double == 1)
            #expect(market["ratings"] as? Int == 2 && market["mean_stars"] as? Double == 4.5)
            let events = try s.catalog.auditEvents(dataset: "enterprises", actor: nil, limit: nil).map(\.event.action).filter { $0.hasPrefix("report.") || $0.hasPrefix("rating.") }
            #expect(events == ["report.create", "report.close", "rating.create", "rating.change", "rating.create"])
        }
    }
}

/// Showcases (应用场景) against the live server: registered by a partner with its license,
/// invisible to others until a steward approves it, then public and counted per department.
@Suite struct ShowcaseAPITests {
    @Test func aShowcaseIsShownOnlyOnceAStewardApprovesIt() async throws {
        try await LiveServer.with { s in
            let (partnerRecord, partner) = try s.catalog.createKey(role: .partner, name: "伙伴", actor: "t")
            let (_, developer) = try s.catalog.createKey(role: .developer, name: "开发者", actor: "t")
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "管理员", actor: "t")
            let app = try s.catalog.createApplication(keyID: partnerRecord.id, dataset: "residents", purpose: "研究全省社会救助覆盖情况的统计分析",
                                                      fields: [], use: .rows, durationDays: 30)
            let license = try s.catalog.approve(application: app.id, actor: "t")
            let filed = try await s.get("/v1/showcases", key: partner, json: [
                "title": "社会救助地图", "description": "按区县展示救助覆盖", "url": "https://example.org/map",
                "datasets": ["residents", "enterprises"], "licenses": [license.id],
            ])
            #expect(filed.status == 201, "\(filed.text)")
            let id = try #require(filed.object["id"] as? Int)
            #expect(filed.object["status"] as? String == "pending")
            // Someone else's license is refused; so is a dataset that is not published.
            let stolen = try await s.get("/v1/showcases", key: developer, json: ["title": "t", "description": "d", "datasets": ["residents"], "licenses": [license.id]])
            #expect(stolen.status == 400 && stolen.text.contains("not one of your key's"))
            #expect(try await s.get("/v1/showcases", key: developer, json: ["title": "t", "description": "d", "datasets": ["nope"]]).status == 404)
            // Pending: its filer and stewards see it; nobody else does.
            #expect((try await s.get("/v1/showcases").object["showcases"] as? [Any])?.isEmpty == true)
            #expect(try await s.get("/v1/showcases/\(id)", key: developer).status == 404)
            #expect(try await s.get("/v1/showcases/\(id)", key: partner).status == 200)
            #expect(try await s.get("/v1/showcases/\(id)/approval", key: partner, method: "POST").status == 403)
            let approved = try await s.get("/v1/showcases/\(id)/approval", key: steward, method: "POST")
            #expect(approved.status == 200 && approved.object["status"] as? String == "approved")
            let board = try await s.get("/v1/showcases")
            #expect((board.object["showcases"] as? [[String: Any]])?.map { $0["title"] as? String } == ["社会救助地图"])
            let stats = try await s.get("/v1/stats")
            let figures = try #require(stats.object["showcases"] as? [[String: Any]])
            #expect(figures.first?["approved"] as? Int == 1)
            #expect(figures.first { $0["department"] as? String == "省民政厅" }?["approved"] as? Int == 1)
            #expect(figures.first { $0["department"] as? String == "省市场监督管理局" }?["approved"] as? Int == 1)
            let page = try await s.get("/showcases")
            #expect(page.status == 200 && page.text.contains("社会救助地图") && page.text.contains("href=\"/datasets/residents\""))
        }
    }
}
