import Foundation
import KaifangCore
import KaifangServer
import Publishing
import Storage
import Testing

/// Data requests (数据需求) against the live server: filed by a developer, voted, masked on the
/// public board, answered by the department asked (and refused to everyone else), fulfilled by
/// a dataset the department publishes, and the on-demand sharing rate (按需共享率) in
/// `/v1/stats` moving exactly as delivered items over listed items.
@Suite struct RequestsAPITests {
    static let market = "省市场监督管理局"

    /// The platform's figures and the market department's, from `/v1/stats`.
    static func demand(_ s: LiveServer) async throws -> (all: [String: Any], market: [String: Any]?) {
        let stats = try await s.get("/v1/stats")
        let list = try #require(stats.object["demand"] as? [[String: Any]])
        return (list[0], list.first { $0["department"] as? String == market })
    }

    @Test func aRequestIsFiledAcceptedAndFulfilledAndTheSharingRateMovesByItems() async throws {
        try await LiveServer.with { s in
            let (dev, devSecret) = try s.catalog.createKey(role: .developer, name: "开发者", account: nil, department: nil, actor: "t")
            let (_, voter) = try s.catalog.createKey(role: .developer, name: "另一位", account: nil, department: nil, actor: "t")
            let (_, reviewer) = try s.catalog.createKey(role: .reviewer, name: "市场监管 reviewer", account: nil, department: Self.market, actor: "t")
            let (_, otherPublisher) = try s.catalog.createKey(role: .publisher, name: "民政 publisher", account: nil, department: "省民政厅", actor: "t")
            let before = try await Self.demand(s)
            #expect(before.all["listed_items"] as? Int == 0 && before.all["on_demand_rate"] == nil)

            // Filed: the due day is 20 working days on; a phone number in the purpose is the filer's own.
            let filed = try await s.get("/v1/requests", key: devSecret, json: [
                "title": "企业年报信息", "items": ["统一社会信用代码", "企业名称", "年报年度"], "department": Self.market,
                "purpose": "研究小微企业存续情况，联系人电话 13912345678",
            ])
            #expect(filed.status == 201, "\(filed.text)")
            let id = try #require(filed.object["id"] as? Int)
            let today = String(CatalogRules.now().prefix(10))
            #expect(filed.object["due"] as? String == CatalogRules.workingDaysAfter(today, 20))
            #expect(filed.object["status"] as? String == "open" && filed.object["masked"] as? Bool == false)
            // The public board masks the phone number; the filer and the department read it.
            let board = try await s.get("/v1/requests")
            #expect(board.status == 200)
            #expect(!board.text.contains("13912345678") && board.text.contains("〔已脱敏〕"))
            let shown = try #require((board.object["requests"] as? [[String: Any]])?.first { $0["id"] as? Int == id })
            #expect(shown["masked"] as? Bool == true && shown["overdue"] as? Bool == false)
            #expect(try await s.get("/v1/requests/\(id)", key: reviewer).text.contains("13912345678"))
            #expect(try await s.get("/v1/requests/\(id)", key: devSecret).text.contains("13912345678"))
            #expect(!(try await s.get("/v1/requests/\(id)", key: voter).text.contains("13912345678")))

            // One vote per key.
            let vote = try await s.get("/v1/requests/\(id)/votes", key: voter, method: "POST")
            #expect(vote.status == 200 && vote.object["votes"] as? Int == 1)
            let twice = try await s.get("/v1/requests/\(id)/votes", key: voter, method: "POST")
            #expect(twice.status == 409 && twice.headers["content-type"]?.hasPrefix("application/problem+json") == true)
            #expect(twice.text.contains("one vote per key"))

            // Only the department asked answers: not another department's publisher, not the filer.
            let accept: [String: Any] = ["action": "accept", "text": "已列入需求清单"]
            let elsewhere = try await s.get("/v1/requests/\(id)/answers", key: otherPublisher, json: accept)
            #expect(elsewhere.status == 403 && elsewhere.text.contains(Self.market))
            #expect(try await s.get("/v1/requests/\(id)/answers", key: devSecret, json: accept).status == 403)
            #expect(try await s.get("/v1/requests/\(id)/answers", json: accept).status == 401)
            let accepted = try await s.get("/v1/requests/\(id)/answers", key: reviewer, json: accept)
            #expect(accepted.status == 200 && accepted.object["status"] as? String == "accepted" && accepted.object["answered_on_time"] as? Bool == true)
            var now = try await Self.demand(s)
            #expect(now.market?["listed_items"] as? Int == 3 && now.market?["delivered_items"] as? Int == 0)
            #expect(now.market?["on_demand_rate"] as? Double == 0)

            // Fulfilment names a published dataset that has the items.
            let missing = try await s.get("/v1/requests/\(id)/answers", key: reviewer, json: ["action": "fulfil", "dataset": "enterprise-reports"])
            #expect(missing.status == 404 && missing.text.contains("enterprise-reports"))
            let unrelated = try await s.get("/v1/requests/\(id)/answers", key: reviewer, json: ["action": "fulfil", "dataset": "air-quality"])
            #expect(unrelated.status == 422 && unrelated.text.contains("its fields are"))
            // The department publishes the dataset that answers it.
            let csv = FileManager.default.temporaryDirectory.appendingPathComponent("reports-\(UUID().uuidString).csv")
            defer { try? FileManager.default.removeItem(at: csv) }
            try "uscc,company_name,report_year\n91320100MA1XXXXX0A,南京某某科技有限公司,2025\n".write(to: csv, atomically: true, encoding: .utf8)
            let manifest = DatasetManifest(id: "enterprise-reports", title: "企业年报", description: "企业年度报告公示信息", department: Self.market,
                                           topic: "economy", tier: .open, fields: [
                                               FieldSpec(name: "uscc", title: "统一社会信用代码", type: .string, semantic: .uscc, level: .L1),
                                               FieldSpec(name: "company_name", title: "企业名称", type: .string, level: .L1),
                                               FieldSpec(name: "report_year", title: "报告年度", type: .integer, level: .L1),
                                           ])
            _ = try Publisher(catalog: s.catalog).importCSV(path: csv.path, datasetID: manifest.id, manifest: manifest, actor: "t")
            try s.catalog.publish(dataset: manifest.id, tier: .open, actor: "t")
            let fulfilled = try await s.get("/v1/requests/\(id)/answers", key: reviewer,
                                            json: ["action": "fulfil", "dataset": "enterprise-reports", "text": "已开放"])
            #expect(fulfilled.status == 200, "\(fulfilled.text)")
            #expect(fulfilled.object["status"] as? String == "fulfilled" && fulfilled.object["version"] as? Int == 1)
            #expect(fulfilled.object["delivered_items"] as? [String] == ["统一社会信用代码", "企业名称"])
            // 2 of 3 listed items delivered: the rate is exactly 2/3, on the platform and for the department.
            now = try await Self.demand(s)
            #expect(now.market?["delivered_items"] as? Int == 2 && now.market?["on_demand_rate"] as? Double == 2.0 / 3)
            #expect(now.all["on_demand_rate"] as? Double == 2.0 / 3 && now.all["answered_on_time"] as? Int == 1)
            // A closed request takes no answer, nor a withdrawal; the filer alone withdraws.
            #expect(try await s.get("/v1/requests/\(id)/answers", key: reviewer, json: ["action": "reply", "text": "再答"]).status == 409)
            #expect(try await s.get("/v1/requests/\(id)/withdrawal", key: devSecret, method: "POST").status == 409)
            let second = try await s.get("/v1/requests", key: voter, json: ["title": "企业名称", "items": ["企业名称"], "department": Self.market, "purpose": "核验"])
            let secondID = try #require(second.object["id"] as? Int)
            #expect(try await s.get("/v1/requests/\(secondID)/withdrawal", key: devSecret, method: "POST").status == 403)
            // Listed but withdrawn is off the list again: the rate stays 2/3.
            _ = try await s.get("/v1/requests/\(secondID)/answers", key: reviewer, json: ["action": "accept"])
            #expect(try await Self.demand(s).market?["listed_items"] as? Int == 4)
            let withdrawn = try await s.get("/v1/requests/\(secondID)/withdrawal", key: voter, method: "POST")
            #expect(withdrawn.status == 200 && withdrawn.object["status"] as? String == "withdrawn")
            #expect(try await Self.demand(s).market?["on_demand_rate"] as? Double == 2.0 / 3)

            // Comments: the department's are marked so.
            let comment = try await s.get("/v1/requests/\(id)/comments", key: reviewer, json: ["text": "数据每年更新"])
            #expect(comment.status == 201 && comment.object["from_department"] as? Bool == true)
            let detail = try await s.get("/v1/requests/\(id)")
            #expect((detail.object["comments"] as? [[String: Any]])?.map { $0["text"] as? String } == ["数据每年更新"])
            // Every step is an audit event naming the request, and none quotes its texts.
            let events = try s.catalog.auditEvents(dataset: nil, actor: nil, limit: nil).map(\.event).filter { $0.action.hasPrefix("request.") }
            #expect(events.map(\.action) == ["request.create", "request.vote", "request.accept", "request.fulfil", "request.create", "request.accept",
                                             "request.withdraw", "request.comment"])
            let chain = try s.catalog.auditEvents(dataset: nil, actor: nil, limit: nil).map { "\($0.event.detail)" }.joined()
            #expect(!chain.contains("13912345678"))
            _ = dev
        }
    }

    @Test func badRequestsSayWhatIsWrongAndWriteNothing() async throws {
        try await LiveServer.with { s in
            let (_, key) = try s.catalog.createKey(role: .developer, name: "开发者", account: nil, department: nil, actor: "t")
            let good: [String: Any] = ["title": "t", "items": ["a"], "department": Self.market, "purpose": "p"]
            func file(_ change: (inout [String: Any]) -> Void) async throws -> LiveServer.Reply {
                var body = good
                change(&body)
                return try await s.get("/v1/requests", key: key, json: body)
            }
            #expect(try await s.get("/v1/requests", json: good).status == 401)
            let empty = try await file { $0["title"] = "   " }
            #expect(empty.status == 400 && empty.text.contains("title is empty"))
            let long = try await file { $0["purpose"] = String(repeating: "长", count: 2001) }
            #expect(long.status == 400 && long.text.contains("2000"))
            let none = try await file { $0["items"] = [String]() }
            #expect(none.status == 400)
            let nowhere = try await file { $0["department"] = "无此部门" }
            #expect(nowhere.status == 404 && nowhere.text.contains("无此部门"))
            #expect((try await s.get("/v1/requests").object["requests"] as? [Any])?.isEmpty == true)
            #expect(try await s.get("/v1/requests/999").status == 404)
            let ok = try await file { _ in }
            let id = try #require(ok.object["id"] as? Int)
            let blank = try await s.get("/v1/requests/\(id)/comments", key: key, json: ["text": " "])
            #expect(blank.status == 400)
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", account: nil, department: nil, actor: "t")
            let noReason = try await s.get("/v1/requests/\(id)/answers", key: steward, json: ["action": "decline"])
            #expect(noReason.status == 400 && noReason.text.contains("reason"))
            let noDataset = try await s.get("/v1/requests/\(id)/answers", key: steward, json: ["action": "fulfil"])
            #expect(noDataset.status == 400 && noDataset.text.contains("dataset"))
            #expect(try s.catalog.dataRequest(Int64(id))?.status == .open)
            #expect(try s.catalog.dataRequests(department: nil, status: nil).count == 1)
        }
    }
}
