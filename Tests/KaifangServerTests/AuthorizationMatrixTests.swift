import Foundation
import GRDB
import KaifangCore
import KaifangServer
import Storage
import Testing

/// Every API route × every kind of caller, from one table, against the live server. A cell is the
/// status that caller must get; every 4xx must be problem+json.
@Suite struct AuthorizationMatrixTests {
    /// The callers, in column order.
    static let roles = ["anonymous", "developer", "partner", "unlicensed", "expired", "revoked", "steward", "member", "suspended",
                        "publisher", "pub-other", "reviewer", "rev-other", "security"]

    /// Setting: enterprises open, residents conditional, air-quality restricted. `partner` holds
    /// rows and sandbox licenses on residents and a sandbox license on air-quality; `expired`
    /// held the same on residents, now expired; `unlicensed` and `developer` hold none.
    /// `{job}` is a queued sandbox job of `partner`, `{app}` an application of `partner`.
    /// `member` holds a key of a signed-up account, `suspended` one of a suspended account;
    /// `{request}` is developer's data request to 省市场监督管理局, `{report}` developer's error report on enterprises, `{showcase}` developer's pending showcase.
    /// `{account}` is member's account, `{other}` a third account, `{spare}` a second key of
    /// member's account, `{hook}` a webhook of member's key. `publisher` and `reviewer` belong to
    /// 省民政厅, which owns residents; `pub-other` and `rev-other` are a publisher and a reviewer of
    /// 省市场监督管理局, which owns enterprises; `security` is a platform security reviewer; `{proposal}` is publisher's
    /// proposal to publish residents (conditional). The owning department reads its
    /// datasets as they are (raw, every version).
    static let table: [(String, [Int])] = [
        // route                                                     anon dev  part unlic exp  rev  stew memb susp pub  pubO revw revO sec
        ("GET /healthz",                                             [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /metrics",                                             [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/openapi.yaml",                                     [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets",                                         [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/enterprises",                             [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/residents",                               [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/air-quality",                             [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/no-such-dataset",                         [404, 404, 404, 404, 404, 401, 404, 404, 403, 404, 404, 404, 404, 404]),
        ("GET /v1/datasets/enterprises/rows?_limit=2",               [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/residents/rows?_limit=2",                 [401, 403, 200, 403, 403, 401, 200, 403, 403, 200, 403, 200, 403, 403]),
        ("GET /v1/datasets/air-quality/rows?_limit=2",               [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/datasets/enterprises/export?format=csv",           [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/residents/export?format=jsonl",           [401, 403, 200, 403, 403, 401, 200, 403, 403, 200, 403, 200, 403, 403]),
        ("GET /v1/datasets/air-quality/export?format=csv",           [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/datasets/enterprises/versions/1/changes",          [404, 404, 404, 404, 404, 401, 404, 404, 403, 404, 404, 404, 404, 404]),
        ("GET /v1/datasets/residents/versions/1/changes",            [401, 403, 404, 403, 403, 401, 404, 403, 403, 404, 403, 404, 403, 403]),
        ("GET /v1/datasets/air-quality/versions/1/changes",          [401, 403, 403, 403, 403, 401, 404, 403, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/datasets/residents/versions/1/quality",            [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/residents/versions/2/quality",            [404, 404, 404, 404, 404, 401, 404, 404, 403, 404, 404, 404, 404, 404]),
        ("GET /v1/datasets/enterprises/rows?_since_version=1",       [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/residents/datapackage.json",              [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/residents/synthetic?rows=3",              [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/catalog.jsonld",                                   [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/feed.atom",                                        [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/residents/feed.atom",                     [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/stats",                                            [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/scorecards",                                       [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/scorecards/history",                               [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/audit?limit=5",                                    [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/licenses",                                         [401, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("POST /v1/applications residents",                          [401, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        ("GET /v1/applications/{app}",                               [401, 404, 200, 404, 404, 401, 200, 404, 403, 404, 404, 404, 404, 404]),
        ("POST /v1/sandbox/jobs residents",                          [401, 400, 202, 400, 400, 401, 400, 400, 403, 400, 400, 400, 400, 400]),
        ("POST /v1/sandbox/jobs air-quality",                        [401, 400, 202, 400, 400, 401, 400, 400, 403, 400, 400, 400, 400, 400]),
        ("POST /v1/sandbox/jobs enterprises",                        [401, 202, 202, 202, 202, 401, 202, 202, 403, 202, 202, 202, 202, 202]),
        ("GET /v1/sandbox/jobs",                                     [401, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/sandbox/jobs/{job}",                               [401, 404, 200, 404, 404, 401, 200, 404, 403, 404, 404, 404, 404, 404]),
        ("GET /v1/sandbox/jobs/{job}/result",                        [401, 404, 409, 404, 404, 401, 409, 404, 403, 404, 404, 404, 404, 404]),
        ("DELETE /v1/sandbox/jobs/{job}",                            [401, 404, 200, 404, 404, 401, 409, 404, 403, 404, 404, 404, 404, 404]),
        ("POST /v1/accounts",                                        [201, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        ("GET /v1/accounts",                                         [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/accounts/{account}",                               [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("PUT /v1/accounts/{other}/suspension",                      [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("DELETE /v1/accounts/{other}/suspension",                   [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/me",                                               [401, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("POST /v1/me/keys",                                         [401, 403, 403, 403, 403, 401, 403, 201, 403, 403, 403, 403, 403, 403]),
        ("DELETE /v1/me/keys/{spare}",                               [401, 403, 403, 403, 403, 401, 403, 204, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/me/usage",                                         [401, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/usage",                                            [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("POST /v1/me/webhooks",                                     [401, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        ("GET /v1/me/webhooks",                                      [401, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/me/webhooks/{hook}/deliveries",                    [401, 404, 404, 404, 404, 401, 404, 200, 403, 404, 404, 404, 404, 404]),
        ("DELETE /v1/me/webhooks/{hook}",                            [401, 404, 404, 404, 404, 401, 404, 204, 403, 404, 404, 404, 404, 404]),
        ("GET /v1/departments",                                      [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/duties",                                           [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/duties?at=2027-02-30",                             [400, 400, 400, 400, 400, 401, 400, 400, 403, 400, 400, 400, 400, 400]),
        ("GET /v1/proposals",                                        [401, 403, 403, 403, 403, 401, 200, 403, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/proposals/{proposal}",                             [401, 404, 404, 404, 404, 401, 200, 404, 403, 200, 404, 200, 404, 200]),
        ("POST /v1/datasets/residents/proposals",                    [401, 403, 403, 403, 403, 401, 409, 403, 403, 409, 403, 403, 403, 403]),
        // A description changed: applied at once for the owning department's publisher.
        ("PUT /v1/datasets/residents",                               [401, 403, 403, 403, 403, 401, 200, 403, 403, 200, 403, 403, 403, 403]),
        ("POST /v1/datasets/enterprises/proposals",                  [401, 403, 403, 403, 403, 401, 201, 403, 403, 403, 409, 403, 403, 403]),
        // The reviewer's approval, then the security reviewer's, which publishes.
        ("POST /v1/proposals/{proposal}/approval",                   [401, 404, 404, 404, 404, 401, 403, 404, 403, 403, 404, 200, 404, 200]),
        ("POST /v1/proposals/{proposal}/refusal",                    [401, 404, 404, 404, 404, 401, 403, 404, 403, 403, 404, 409, 404, 409]),
        ("POST /v1/proposals/{proposal}/withdrawal",                 [401, 404, 404, 404, 404, 401, 403, 404, 403, 409, 404, 403, 404, 403]),
        ("GET /v1/requests",                                         [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/requests/{request}",                               [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/requests/999999",                                  [404, 404, 404, 404, 404, 401, 404, 404, 403, 404, 404, 404, 404, 404]),
        ("POST /v1/requests",                                        [401, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        ("POST /v1/requests/{request}/votes",                        [401, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("POST /v1/requests/{request}/comments",                     [401, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        // The department asked (省市场监督管理局) answers, and a steward.
        ("POST /v1/requests/{request}/answers",                      [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 200, 403, 200, 403]),
        // Its filer (developer) withdraws it; no one else does.
        ("POST /v1/requests/{request}/withdrawal",                   [401, 200, 403, 403, 403, 401, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("GET /v1/datasets/enterprises/reports",                     [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/datasets/no-such-dataset/reports",                 [404, 404, 404, 404, 404, 401, 404, 404, 403, 404, 404, 404, 404, 404]),
        ("POST /v1/datasets/enterprises/reports",                    [401, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        ("GET /v1/reports",                                          [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/reports/{report}",                                 [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        // The dataset's department (省市场监督管理局) or a steward closes it: the steward first, then it is closed.
        ("POST /v1/reports/{report}/resolution",                     [401, 403, 403, 403, 403, 401, 200, 403, 403, 403, 409, 403, 409, 403]),
        // Only its filer (developer) withdraws it, and not once it is closed.
        ("POST /v1/reports/{report}/withdrawal",                     [401, 409, 403, 403, 403, 401, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("PUT /v1/datasets/enterprises/ratings",                     [401, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        ("GET /v1/datasets/enterprises/ratings",                     [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("GET /v1/showcases",                                        [200, 200, 200, 200, 200, 401, 200, 200, 403, 200, 200, 200, 200, 200]),
        ("POST /v1/showcases",                                       [401, 201, 201, 201, 201, 401, 201, 201, 403, 201, 201, 201, 201, 201]),
        // Pending: seen by its filer (developer) and stewards only.
        ("GET /v1/showcases/{showcase}",                             [404, 200, 404, 404, 404, 401, 200, 404, 403, 404, 404, 404, 404, 404]),
        ("POST /v1/showcases/{showcase}/refusal",                    [401, 403, 404, 404, 404, 401, 200, 404, 403, 404, 404, 404, 404, 404]),
        // Refused now: shown to its filer and stewards, decided for good.
        ("POST /v1/showcases/{showcase}/approval",                   [401, 403, 404, 404, 404, 401, 409, 404, 403, 404, 404, 404, 404, 404]),
        ("POST /v1/showcases/{showcase}/withdrawal",                 [401, 409, 404, 404, 404, 401, 403, 404, 403, 404, 404, 404, 404, 404]),
        // Last: they add versions (not published), which the rows above do not expect.
        ("POST /v1/datasets/residents/versions",                     [401, 403, 403, 403, 403, 401, 201, 403, 403, 201, 403, 403, 403, 403]),
        ("POST /v1/datasets/enterprises/versions",                   [401, 403, 403, 403, 403, 401, 201, 403, 403, 403, 201, 403, 403, 403]),
        ("POST /v1/datasets/no-such-dataset/versions",               [401, 403, 403, 403, 403, 401, 404, 403, 403, 404, 404, 403, 403, 403]),
    ]

    /// The first rows of a sample dataset's CSV: the body of an upload.
    static func sampleCSV(_ dataset: String, rows: Int = 20) throws -> Data {
        let text = try String(contentsOf: LiveServer.repo.appendingPathComponent("datasets/\(dataset)/\(dataset).csv"), encoding: .utf8)
        return Data((text.split(separator: "\n", omittingEmptySubsequences: false).prefix(rows + 1).joined(separator: "\n") + "\n").utf8)
    }

    nonisolated(unsafe) static let bodies: [String: [String: Any]] = [
        "POST /v1/applications residents": ["dataset": "residents", "purpose": "研究补贴的区县分布 district study", "use": "rows"],
        "POST /v1/sandbox/jobs residents": ["sql": "SELECT district, COUNT(*) AS n FROM residents GROUP BY district"],
        "POST /v1/sandbox/jobs air-quality": ["sql": "SELECT station, AVG(pm25) FROM air_quality GROUP BY station"],
        "POST /v1/sandbox/jobs enterprises": ["sql": "SELECT industry, COUNT(*) FROM enterprises GROUP BY industry"],
        "POST /v1/accounts": ["email": "{role}@matrix.example", "name": "矩阵 matrix"],
        "PUT /v1/accounts/{other}/suspension": ["reason": "授权矩阵测试 matrix"],
        "POST /v1/me/keys": ["name": "another app"],
        "POST /v1/me/webhooks": ["url": "http://127.0.0.1:9/{role}"],
        "POST /v1/datasets/residents/proposals": ["tier": "conditional"],
        "POST /v1/datasets/enterprises/proposals": ["tier": "open"],
        "POST /v1/proposals/{proposal}/refusal": ["reason": "授权矩阵测试 matrix"],
        "POST /v1/datasets/enterprises/reports": ["field": "企业名称", "text": "授权矩阵测试 {role}"],
        "POST /v1/reports/{report}/resolution": ["resolution": "not_an_error", "text": "授权矩阵测试 {role}"],
        "PUT /v1/datasets/enterprises/ratings": ["stars": 4, "comment": "授权矩阵测试 {role}"],
        "POST /v1/showcases": ["title": "矩阵 {role}", "description": "授权矩阵测试 matrix", "datasets": ["enterprises"]],
        "POST /v1/showcases/{showcase}/refusal": ["reason": "授权矩阵测试 {role}"],
        "POST /v1/requests": ["title": "矩阵 {role}", "items": ["企业名称"], "purpose": "授权矩阵测试 matrix", "department": "省市场监督管理局"],
        "POST /v1/requests/{request}/comments": ["text": "授权矩阵测试 {role}"],
        "POST /v1/requests/{request}/answers": ["action": "reply", "text": "授权矩阵测试 {role}"],
    ]

    @Test func everyRouteForEveryCaller() async throws {
        // Workers off: jobs stay queued, so a result is 409 and a cancel succeeds for its owner.
        try await LiveServer.with(configure: {
            $0.sandboxWorkers = 0; $0.signupsPerAddress = 0
            $0.webhooks.networks = WebhookNetworks(allowPublic: true, networks: [], allowLoopback: true)
        }) { s in
            _ = try s.catalog.publish(dataset: "air-quality", tier: .restricted, actor: "t")
            var keys: [String: String] = [:]
            var ids: [String: String] = [:]
            for (role, kind) in [("developer", Role.developer), ("partner", .partner), ("unlicensed", .partner), ("expired", .partner),
                                 ("revoked", .developer), ("steward", .steward)] {
                let (record, key) = try s.catalog.createKey(role: kind, name: role, actor: "t")
                keys[role] = key; ids[role] = record.id
            }
            try s.catalog.revokeKey(ids["revoked"]!, actor: "t")
            for (role, kind, department) in [("publisher", Role.publisher, "省民政厅"), ("pub-other", .publisher, "省市场监督管理局"),
                                             ("reviewer", .reviewer, "省民政厅"), ("rev-other", .reviewer, "省市场监督管理局"), ("security", .security, nil)] {
                let (record, key) = try s.catalog.createKey(role: kind, name: role, account: nil, department: department, actor: "t")
                keys[role] = key; ids[role] = record.id
            }
            try AccountsAPITests.unlimited(s)
            var accounts: [String: String] = [:]
            for role in ["member", "suspended", "other"] {
                let (account, record, key) = try s.catalog.createAccount(email: "\(role)@example.org", name: role, organisation: "", tier: nil, keyName: role, actor: "t")
                keys[role] = key; accounts[role] = account.id; ids[role] = record.id
            }
            let hook = try s.catalog.createWebhook(keyID: ids["member"]!, url: "http://127.0.0.1:9/member", dataset: nil, actor: "t")
            let (spare, _) = try s.catalog.createKey(role: .developer, name: "spare", account: accounts["member"], actor: "t")
            try s.catalog.setSuspended(account: accounts["suspended"]!, reason: "授权矩阵测试 matrix", actor: "t")
            func grant(_ role: String, _ dataset: String, _ use: LicenseUse, expires: Date? = nil) throws -> ApplicationRecord {
                let a = try s.catalog.createApplication(keyID: ids[role]!, dataset: dataset, purpose: "授权矩阵测试 authorization matrix", fields: [], use: use, durationDays: 30)
                _ = try s.catalog.approve(application: a.id, expires: expires, fields: nil, use: nil, actor: "cli:steward")
                return a
            }
            let app = try grant("partner", "residents", .rows)
            _ = try grant("partner", "residents", .sandbox)
            _ = try grant("partner", "air-quality", .sandbox)
            // Licenses that end a second from now, then are expired for every request below.
            _ = try grant("expired", "residents", .rows, expires: Date().addingTimeInterval(1))
            _ = try grant("expired", "residents", .sandbox, expires: Date().addingTimeInterval(1))
            try await Task.sleep(for: .milliseconds(1100))
            // A proposal of residents' publisher: conditional opens its L3/L4 fields, so security approves too.
            let proposal = try s.catalog.createProposal(NewProposal(dataset: "residents", version: nil, tier: .conditional, overrideReason: nil,
                                                                    needsSecurity: true, proposerKey: ids["publisher"]!), actor: "t")
            // A data request of developer's to 省市场监督管理局.
            let request = try s.catalog.createRequest(NewDataRequest(title: "企业名录", items: ["企业名称"], purpose: "授权矩阵测试 matrix", department: "省市场监督管理局",
                                                                     due: "2099-12-31", filerKey: ids["developer"]!), actor: "t")
            // An error report of developer's on enterprises (省市场监督管理局's).
            let report = try s.catalog.createReport(NewErrorReport(dataset: "enterprises", field: nil, version: nil, row: nil, text: "授权矩阵测试 matrix",
                                                                   due: "2099-12-31", filerKey: ids["developer"]!), actor: "t")
            // A pending showcase of developer's.
            let showcase = try s.catalog.createShowcase(NewShowcase(title: "企业地图", description: "授权矩阵测试 matrix", url: nil, datasets: ["enterprises"],
                                                                    licenses: [], filerKey: ids["developer"]!), actor: "t")
            let job = try await s.get("/v1/sandbox/jobs", key: keys["partner"], json: ["sql": "SELECT industry, COUNT(*) FROM enterprises GROUP BY industry"])
            let jobID = try #require(job.object["id"] as? String)

            var cells = 0
            for (route, expected) in Self.table {
                #expect(expected.count == Self.roles.count, "\(route): one status per role")
                let parts = route.split(separator: " ").map(String.init)
                let method = parts[0]
                let path = parts[1].replacingOccurrences(of: "{job}", with: jobID).replacingOccurrences(of: "{app}", with: String(app.id))
                    .replacingOccurrences(of: "{account}", with: accounts["member"]!).replacingOccurrences(of: "{other}", with: accounts["other"]!)
                    .replacingOccurrences(of: "{spare}", with: spare.id).replacingOccurrences(of: "{hook}", with: hook.id)
                    .replacingOccurrences(of: "{proposal}", with: proposal.id).replacingOccurrences(of: "{request}", with: String(request.id)).replacingOccurrences(of: "{report}", with: String(report.id)).replacingOccurrences(of: "{showcase}", with: String(showcase.id))
                for (role, status) in zip(Self.roles, expected) {
                    let key: String? = role == "anonymous" ? nil : (role == "revoked" ? keys["revoked"] : keys[role])
                    let body = Self.bodies[route]?.mapValues { ($0 as? String)?.replacingOccurrences(of: "{role}", with: role) ?? $0 }
                    let r: LiveServer.Reply
                    if method == "PUT", path.hasPrefix("/v1/datasets/"), !path.hasSuffix("/ratings") {
                        var m = try DatasetManifest.load(path: LiveServer.repo.appendingPathComponent("datasets/residents/dataset.json").path)
                        m.description += " (\(role))"
                        r = try await s.get(path, key: key, method: method, body: try JSONEncoder().encode(m), headers: ["Content-Type": "application/json"])
                    } else if method == "POST", path.hasSuffix("/versions") {
                        let dataset = path.split(separator: "/")[2]
                        r = try await s.get(path, key: key, method: method, body: try Self.sampleCSV(dataset == "no-such-dataset" ? "residents" : String(dataset)),
                                            headers: ["Content-Type": "text/csv"])
                    } else if let body {
                        r = try await s.get(path, key: key, method: method, json: body)
                    } else {
                        r = try await s.get(path, key: key, method: method)
                    }
                    #expect(r.status == status, "\(route) as \(role): \(r.status), expected \(status): \(r.text.prefix(200))")
                    if status >= 400 {
                        #expect(r.headers["content-type"]?.hasPrefix("application/problem+json") == true, "\(route) as \(role)")
                    }
                    cells += 1
                }
            }
            #expect(cells == Self.table.count * Self.roles.count)
        }
    }
}
