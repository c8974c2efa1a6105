import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KaifangCore
@testable import KaifangServer
import Masking
import Publishing
import Storage
import Testing

/// Every portal page rendered from the real server with an empty, a typical and a long catalog.
@Suite(.serialized) struct PortalTests {
    static let pages = ["/", "/datasets", "/datasets?tier=open", "/sandbox", "/docs/api", "/requests"]

    func assertPage(_ r: LiveServer.Reply, _ path: String) {
        #expect(r.status == 200, "\(path)")
        #expect(r.headers["content-type"] == "text/html; charset=utf-8", "\(path)")
        #expect(r.text.hasPrefix("<!doctype html>"), "\(path)")
        #expect(r.text.contains("</html>"), "\(path)")
        #expect(!r.text.contains("{{"), "\(path): an unrendered tag")
        #expect(!r.text.contains("<script"), "\(path): no JavaScript")
        #expect(!r.text.contains("https://") || path == "/docs/api", "\(path): nothing fetched from outside")
    }

    @Test func anEmptyCatalogRendersEveryPage() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            for path in Self.pages {
                let r = try await s.get(path)
                assertPage(r, path)
            }
            let catalog = try await s.get("/datasets")
            #expect(catalog.text.contains("没有找到数据集"))
            let home = try await s.get("/")
            #expect(home.text.contains("暂无访问"))
            let missing = try await s.get("/datasets/nope")
            #expect(missing.status == 404 && missing.text.contains("未找到"))
        }
    }

    @Test func theTypicalCatalogShowsTiersFacetsAndMaskedPreviews() async throws {
        try await LiveServer.with { s in
            for path in Self.pages + ["/datasets/residents", "/datasets/enterprises", "/datasets/air-quality"] {
                assertPage(try await s.get(path), path)
            }
            let home = try await s.get("/")
            // The headline open rate is the one /v1/stats counts by data items.
            let items = try #require((try await s.get("/v1/stats").object["open_items"] as? [[String: Any]])?.first)
            let (opened, all) = (try #require(items["items_opened"] as? Int), try #require(items["items"] as? Int))
            #expect(opened > 0 && opened <= all)
            #expect(home.text.contains(Portal.percent(Double(opened) / Double(all))) && home.text.contains("(\(opened) / \(all))"))
            #expect(home.text.contains("无条件开放"))
            let catalog = try await s.get("/datasets?department=%E7%9C%81%E6%B0%91%E6%94%BF%E5%8E%85")
            #expect(catalog.text.contains("居民服务记录") && !catalog.text.contains("空气质量小时数据"))
            #expect(catalog.text.contains("aria-current"))
            let enterprises = try await s.get("/datasets/enterprises")
            #expect(enterprises.text.contains("/v1/datasets/enterprises/export?format=csv"))
            #expect(enterprises.text.contains("curl &#39;http://127.0.0.1:\(s.port)/v1/datasets/enterprises/rows") || enterprises.text.contains("curl 'http://127.0.0.1:\(s.port)/v1/datasets/enterprises/rows"))
            // The preview is the public view: the legal representative is masked, exactly as the API serves it.
            let api = try await s.get("/v1/datasets/enterprises/rows?_limit=5")
            for row in rows(api) { #expect(enterprises.text.contains(row["legal_representative"] as? String ?? "?")) }
            // Conditional: no rows, no preview, the way to apply.
            let residents = try await s.get("/datasets/residents")
            #expect(!residents.text.contains("预览") && residents.text.contains("/datasets/residents/apply"))
            #expect(!residents.text.contains("/v1/datasets/residents/export"))
            // No value on any page validates as a resident ID, phone or bank card.
            for path in ["/datasets/residents", "/datasets/enterprises", "/"] {
                let text = try await s.get(path).text
                for token in text.split(whereSeparator: { !$0.isNumber && $0 != "X" }) where token.count >= 11 {
                    let d = Detector.detect(String(token))
                    #expect(!(d.valid && [SemanticType.resident_id, .phone, .bank_card].contains(d.type)), "\(path)")
                }
            }
            let docs = try await s.get("/docs/api")
            #expect(docs.text.contains("/v1/datasets/{id}/rows") && docs.text.contains("_cursor"))
        }
    }

    @Test func longTitlesManyFieldsAndMarkupAreEscapedAndRendered() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            let fields = (0..<60).map { FieldSpec(name: "field_\($0)", title: "很长的字段名称\($0)", type: .integer, level: Level.allCases[$0 % 4]) }
            let title = String(repeating: "江苏省公共数据开放平台长标题", count: 12) + " <script>alert(1)</script>"
            let m = DatasetManifest(id: "long", title: title, description: String(repeating: "描述", count: 300), department: "省大数据管理中心",
                                    topic: "other", tier: .open, fields: fields)
            var csv = fields.map(\.name).joined(separator: ",") + "\n"
            for r in 0..<20 { csv += (0..<60).map { String($0 * r) }.joined(separator: ",") + "\n" }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("long-\(UUID().uuidString).csv").path
            FileManager.default.createFile(atPath: path, contents: Data(csv.utf8))
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = try Publisher(catalog: s.catalog).importCSV(path: path, datasetID: "long", manifest: m, actor: "t")
            try s.catalog.publish(dataset: "long", tier: .open, actor: "t")
            for p in Self.pages + ["/datasets/long"] { assertPage(try await s.get(p), p) }
            let page = try await s.get("/datasets/long")
            #expect(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(page.text.contains("field_59") && page.text.contains("很长的字段名称59"))
        }
    }

    @Test func theApplyFormPostsAnApplicationWithAKey() async throws {
        try await LiveServer.with { s in
            let (_, key) = try s.catalog.createKey(role: .developer, name: "web", actor: "t")
            func post(_ body: String) async throws -> LiveServer.Reply {
                var req = URLRequest(url: URL(string: "http://127.0.0.1:\(s.port)/datasets/residents/apply")!)
                req.httpMethod = "POST"
                req.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
                req.httpBody = Data(body.utf8)
                let (data, response) = try await URLSession.shared.data(for: req)
                return LiveServer.Reply(status: (response as! HTTPURLResponse).statusCode, headers: [:], body: data)
            }
            let ok = try await post("key=\(key)&purpose=%E7%A0%94%E7%A9%B6%E4%BD%8E%E4%BF%9D%E5%8F%91%E6%94%BE%E7%9A%84%E5%8C%BA%E5%8E%BF%E5%88%86%E5%B8%83&fields=district&fields=benefit_amount&use=rows&duration_days=30")
            #expect(ok.status == 201 && ok.text.contains("申请已提交"))
            let app = try #require(try s.catalog.applications().first)
            #expect(app.fields == ["district", "benefit_amount"] && app.durationDays == 30 && app.status == "pending")
            let badKey = try await post("key=kf_00000000_\(String(repeating: "0", count: 64))&purpose=xxxxxxxxxxxx&use=rows")
            #expect(badKey.status == 401)
            let short = try await post("key=\(key)&purpose=short&use=rows")
            #expect(short.status == 400 && short.text.contains("purpose"))
        }
    }

    @Test func theReviewPageShowsADepartmentItsQueueAndTakesItsDecisions() async throws {
        try await LiveServer.with { s in
            // Demo.load made the sample datasets' departments; residents belongs to 省民政厅.
            let (publisherRecord, publisher) = try s.catalog.createKey(role: .publisher, name: "发布员", account: nil, department: "省民政厅", actor: "t")
            let (_, reviewer) = try s.catalog.createKey(role: .reviewer, name: "审核员", account: nil, department: "省民政厅", actor: "t")
            let (_, otherReviewer) = try s.catalog.createKey(role: .reviewer, name: "他部门", account: nil, department: "省市场监督管理局", actor: "t")
            let (_, security) = try s.catalog.createKey(role: .security, name: "安全", account: nil, department: nil, actor: "t")
            let (_, developer) = try s.catalog.createKey(role: .developer, name: "dev", actor: "t")
            let p = try s.catalog.createProposal(NewProposal(dataset: "residents", version: nil, tier: .conditional, overrideReason: nil,
                                                             needsSecurity: true, proposerKey: publisherRecord.id), actor: "t")
            func post(_ fields: [(String, String)]) async throws -> LiveServer.Reply {
                var req = URLRequest(url: URL(string: "http://127.0.0.1:\(s.port)/review")!)
                req.httpMethod = "POST"
                req.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-_.")
                req.httpBody = Data(fields.map { "\($0)=\($1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&").utf8)
                let (data, response) = try await URLSession.shared.data(for: req)
                let http = response as! HTTPURLResponse
                return LiveServer.Reply(status: http.statusCode, headers: ["cache-control": http.value(forHTTPHeaderField: "Cache-Control") ?? ""], body: data)
            }
            let form = try await s.get("/review")
            #expect(form.status == 200 && form.text.contains("name=\"key\""))
            // The reviewer sees the proposal with its decisions; the page is kept by no cache.
            let queue = try await post([("key", reviewer)])
            #expect(queue.status == 200 && queue.text.contains(p.id) && queue.text.contains("批准") && queue.headers["cache-control"] == "no-store")
            // The publisher sees it, with nothing to decide; another department's reviewer does not see it.
            let own = try await post([("key", publisher)])
            #expect(own.text.contains(p.id) && !own.text.contains("value=\"approve\""))
            #expect(try await post([("key", otherReviewer)]).text.contains(p.id) == false)
            #expect(try await post([("key", developer)]).status == 403)
            #expect(try await post([("key", "kf_00000000_\(String(repeating: "0", count: 64))")]).status == 401)
            // The publisher's approval is refused with the rule's words; nothing changes.
            let selfApproval = try await post([("key", publisher), ("proposal", p.id), ("action", "approve")])
            #expect(selfApproval.status == 409 && selfApproval.text.contains("role=\"alert\""))
            #expect(try s.catalog.proposal(p.id)?.reviewedBy == nil)
            // The reviewer approves, then security: published.
            let approved = try await post([("key", reviewer), ("proposal", p.id), ("action", "approve")])
            #expect(approved.status == 200 && approved.text.contains("security"), "\(approved.text)")
            let published = try await post([("key", security), ("proposal", p.id), ("action", "approve")])
            #expect(published.status == 200 && published.text.contains("已发布"))
            #expect(try s.catalog.proposal(p.id)?.status == .published)
            // A refusal needs a reason.
            let q = try s.catalog.createProposal(NewProposal(dataset: "residents", version: nil, tier: .restricted, overrideReason: nil,
                                                             needsSecurity: false, proposerKey: publisherRecord.id), actor: "t")
            #expect(try await post([("key", reviewer), ("proposal", q.id), ("action", "refuse"), ("reason", " ")]).status == 409)
            let refused = try await post([("key", reviewer), ("proposal", q.id), ("action", "refuse"), ("reason", "理由不足 not justified")])
            #expect(refused.status == 200 && refused.text.contains("理由不足"))
            #expect(try s.catalog.proposal(q.id)?.status == .refused)
        }
    }

    @Test func theRequestBoardIsMaskedTakesAFiledRequestAndShowsItsAnswer() async throws {
        try await LiveServer.with { s in
            let (_, developer) = try s.catalog.createKey(role: .developer, name: "dev", actor: "t")
            func post(_ fields: [(String, String)], to path: String = "/requests") async throws -> LiveServer.Reply {
                var req = URLRequest(url: URL(string: "http://127.0.0.1:\(s.port)\(path)")!)
                req.httpMethod = "POST"
                req.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-_.")
                req.httpBody = Data(fields.map { "\($0)=\($1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&").utf8)
                let (data, response) = try await URLSession.shared.data(for: req)
                let http = response as! HTTPURLResponse
                return LiveServer.Reply(status: http.statusCode, headers: ["cache-control": http.value(forHTTPHeaderField: "Cache-Control") ?? ""], body: data)
            }
            let empty = try await s.get("/requests")
            #expect(empty.status == 200 && empty.text.contains("暂无需求") && !empty.text.contains("nil"))
            // Filed through the form: items one per line (or 、-separated), the key never echoed.
            let filed = try await post([("title", "养老机构名录"), ("items", "机构名称\n床位数、地址"), ("purpose", "为老人找床位，电话 13912345678"),
                                        ("department", "省民政厅"), ("key", developer)])
            #expect(filed.status == 201 && filed.text.contains("已提交需求 1") && filed.headers["cache-control"] == "no-store")
            #expect(!filed.text.contains(developer))
            let r = try #require(try s.catalog.dataRequest(1))
            #expect(r.items == ["机构名称", "床位数", "地址"] && r.department == "省民政厅")
            // Anyone reads the board and the request, with the phone number masked.
            let board = try await s.get("/requests")
            #expect(board.text.contains("href=\"/requests/1\"") && board.text.contains("养老机构名录") && !board.text.contains("nil"))
            let page = try await s.get("/requests/1")
            #expect(page.status == 200 && page.text.contains("〔已脱敏〕") && !page.text.contains("13912345678"))
            // Votes and comments through the request's page, with the API's rules: one vote per key.
            let (_, other) = try s.catalog.createKey(role: .developer, name: "other", actor: "t")
            let voted = try await post([("action", "vote"), ("text", ""), ("key", other)], to: "/requests/1")
            #expect(voted.status == 200 && voted.text.contains("已投票") && !voted.text.contains(other) && voted.headers["cache-control"] == "no-store")
            #expect(try s.catalog.dataRequest(1)?.votes == 1)
            let again = try await post([("action", "vote"), ("key", other)], to: "/requests/1")
            #expect(again.status == 409 && again.text.contains("role=\"alert\""))
            #expect(try s.catalog.dataRequest(1)?.votes == 1)
            let commented = try await post([("action", "comment"), ("text", "我们也需要，联系 13700001111"), ("key", other)], to: "/requests/1")
            #expect(commented.status == 201 && commented.text.contains("已发表评论"))
            let shown = try await s.get("/requests/1")
            #expect(shown.text.contains("我们也需要") && !shown.text.contains("13700001111") && shown.text.contains("评论 <span lang=\"en\">Comments</span> (1)"))
            let emptyComment = try await post([("action", "comment"), ("text", "  "), ("key", other)], to: "/requests/1")
            #expect(emptyComment.status == 400 && emptyComment.text.contains("text is empty"))
            #expect(try await post([("action", "vote"), ("key", "nope")], to: "/requests/1").status == 401)
            #expect(try await post([("action", "vote"), ("key", other)], to: "/requests/999").status == 404)
            #expect(try s.catalog.requestComments(1).count == 1)
            // The department's answer shows on the page.
            _ = try s.catalog.answerRequest(1, .decline(reason: "已有同类数据集"), keyID: "cli", actor: "t")
            #expect(try await s.get("/requests/1").text.contains("已有同类数据集"))
            #expect(try await s.get("/requests?status=declined").text.contains("养老机构名录"))
            #expect(try await s.get("/requests?status=open").text.contains("暂无需求"))
            // Bad input answers with the API's words, and files nothing.
            let bad = try await post([("title", " "), ("items", "a"), ("purpose", "p"), ("department", "省民政厅"), ("key", developer)])
            #expect(bad.status == 400 && bad.text.contains("title is empty"))
            let wrongKey = try await post([("title", "t"), ("items", "a"), ("purpose", "p"), ("department", "省民政厅"), ("key", "kf_00000000_\(String(repeating: "0", count: 64))")])
            #expect(wrongKey.status == 401)
            #expect(try s.catalog.dataRequests(department: nil, status: nil).count == 1)
            #expect(try await s.get("/requests/999").status == 404)
            // A dataset's page shows its rating and its error reports, masked.
            _ = try s.catalog.rate(dataset: "enterprises", keyID: "k1", stars: 3, comment: "请致电 13812345678", actor: "t")
            _ = try s.catalog.rate(dataset: "enterprises", keyID: "k2", stars: 4, comment: nil, actor: "t")
            _ = try s.catalog.createReport(NewErrorReport(dataset: "enterprises", field: "industry", version: nil, row: nil, text: "行业有误 13812345678",
                                                          due: "2099-01-01", filerKey: "k1"), actor: "t")
            let dataset = try await s.get("/datasets/enterprises")
            #expect(dataset.text.contains("<strong>3.5</strong> / 5 (2)") && dataset.text.contains("行业有误") && dataset.text.contains("处理中 open"))
            #expect(!dataset.text.contains("13812345678"))
            // The home page and the department's page carry the figures.
            #expect(try await s.get("/").text.contains("按需共享率"))
            #expect(try await s.get("/departments/%E7%9C%81%E6%B0%91%E6%94%BF%E5%8E%85").text.contains("收到需求"))
        }
    }

    @Test func aDepartmentsPageShowsItsDatasetsAndItsDutyListWithTheLateMarked() async throws {
        try await LiveServer.with { s in
            _ = try s.catalog.createDuty(department: "省民政厅", dataset: "residents", kind: .open, title: "居民服务记录", due: "2099-01-31", actor: "t")
            _ = try s.catalog.createDuty(department: "省民政厅", dataset: "elderly-homes", kind: .share, title: "养老机构名录", due: "2001-01-31", actor: "t")
            let page = try await s.get("/departments/%E7%9C%81%E6%B0%91%E6%94%BF%E5%8E%85")
            #expect(page.status == 200)
            #expect(page.text.contains("href=\"/datasets/residents\"") && page.text.contains("养老机构名录"))
            #expect(page.text.contains("class=\"late\"") && page.text.components(separatedBy: "class=\"late\"").count == 2)
            #expect(page.text.contains("已完成 done"))   // residents is published conditional: opened
            // Every department a scorecard or dataset names has a page; a name nobody uses has none.
            let scorecards = try await s.get("/scorecards")
            #expect(scorecards.text.contains("href=\"/departments/%E7%9C%81%E6%B0%91%E6%94%BF%E5%8E%85\""))
            #expect(try await s.get("/departments/%E6%97%A0%E6%AD%A4%E9%83%A8%E9%97%A8").status == 404)
            let api = try await s.get("/v1/duties?department=%E7%9C%81%E6%B0%91%E6%94%BF%E5%8E%85&state=late")
            #expect((api.object["duties"] as? [[String: Any]])?.map { $0["dataset"] as? String } == ["elderly-homes"])
        }
    }
}
