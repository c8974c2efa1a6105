import Foundation
import KaifangCore
import Testing

func ids(_ r: LiveServer.Reply) -> [String] {
    (r.object["datasets"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
}

/// End to end: the real server on a loopback port, the sample datasets, real HTTP.
@Suite(.serialized) struct CatalogAPITests {
    @Test func healthzAnswersWithTheDatasetCount() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/healthz")
            #expect(r.status == 200)
            #expect(r.object["status"] as? String == "ok")
            #expect(r.object["datasets"] as? Int == 3)
            #expect(r.headers["x-request-id"]?.isEmpty == false)
        }
    }

    @Test func theCatalogListsTheThreeSamplesWithFacets() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/v1/datasets")
            #expect(r.status == 200)
            let items = r.object["datasets"] as? [[String: Any]] ?? []
            let listed = Set(ids(r))
            #expect(listed == ["residents", "enterprises", "air-quality"])
            #expect(r.object["total"] as? Int == 3)
            let residents = items.first { $0["id"] as? String == "residents" } ?? [:]
            #expect(residents["tier"] as? String == "conditional")
            #expect(residents["row_count"] as? Int == 2000)
            let tiers = (r.object["facets"] as? [String: Any])?["tier"] as? [[String: Any]] ?? []
            let openCount = tiers.first { $0["value"] as? String == "open" }?["count"] as? Int
            #expect(openCount == 2)
            #expect(r.object["next_cursor"] == nil)
        }
    }

    /// Freshly imported samples are fresh; each says when its next version is due, one period
    /// after its version was made; the filter and the facet answer the same.
    @Test func datasetsSayHowFreshTheyAre() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/v1/datasets")
            let items = r.object["datasets"] as? [[String: Any]] ?? []
            #expect(items.count == 3 && items.allSatisfy { $0["freshness"] as? String == "fresh" })
            let iso = ISO8601DateFormatter()
            for (id, period) in [("air-quality", 3600.0), ("enterprises", 86_400.0), ("residents", 31 * 86_400.0)] {
                let item = try #require(items.first { $0["id"] as? String == id })
                let updated = try #require((item["updated_at"] as? String).flatMap(iso.date))
                let due = try #require((item["next_update_due"] as? String).flatMap(iso.date))
                #expect(abs(due.timeIntervalSince(updated) - period) < 1, "\(id)")
            }
            let facet = ((r.object["facets"] as? [String: Any])?["freshness"] as? [[String: Any]]) ?? []
            #expect(facet.count == 1 && facet[0]["value"] as? String == "fresh" && facet[0]["count"] as? Int == 3)
            #expect(try await s.get("/v1/datasets?freshness=fresh").object["total"] as? Int == 3)
            #expect(try await s.get("/v1/datasets?freshness=overdue").object["total"] as? Int == 0)
            #expect(try await s.get("/v1/datasets?freshness=late").status == 400)
            #expect(try await s.get("/v1/datasets/enterprises").object["freshness"] as? String == "fresh")
            // The portal shows the state on the catalog and the dataset's page.
            let catalog = try await s.get("/datasets?freshness=fresh")
            #expect(catalog.status == 200 && catalog.text.contains("fresh-fresh") && catalog.text.contains("按时更新 fresh"))
            #expect(catalog.text.contains("href=\"/datasets\"") || catalog.text.contains("清除筛选"))
            let page = try await s.get("/datasets/residents")
            #expect(page.text.contains("按时更新 fresh") && page.text.contains("next update due"))
        }
    }

    /// The samples' coverage: enterprises and residents in 12 counties of three cities, air
    /// quality in 南京市 as a whole. Facets, filters, the dataset's coverage, DCAT and the portal.
    @Test func datasetsSayWhereAndWhenTheyCover() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/v1/datasets")
            let facets = try #require(r.object["facets"] as? [String: Any])
            let cities = try #require(facets["city"] as? [[String: Any]])
            #expect(cities.map { "\($0["value"]!):\($0["label"]!):\($0["count"]!)" } == ["320100:南京市:3", "320200:无锡市:2", "320500:苏州市:2"])
            let counties = try #require(facets["county"] as? [[String: Any]])
            #expect(counties.count == 12 && counties.allSatisfy { $0["count"] as? Int == 2 })
            #expect(counties.first { $0["value"] as? String == "320115" }?["label"] as? String == "江宁区")
            func ids(_ query: String) async throws -> [String] {
                ((try await s.get("/v1/datasets?\(query)").object["datasets"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }.sorted()
            }
            #expect(try await ids("city=320100") == ["air-quality", "enterprises", "residents"])
            #expect(try await ids("city=320500") == ["enterprises", "residents"])
            #expect(try await ids("county=320115") == ["enterprises", "residents"])
            #expect(try await ids("city=320300") == [])
            // A code of the wrong level or none at all: 400 naming the parameter and what to pass.
            let wrong = try await s.get("/v1/datasets?city=320115")
            #expect(wrong.status == 400 && (wrong.object["detail"] as? String)?.contains("city '320115' (江宁区) is a county, not a city: its city is 320100 (南京市)") == true)
            let unknown = try await s.get("/v1/datasets?county=330106")
            #expect(unknown.status == 400 && (unknown.object["detail"] as? String)?.contains("'330106' is not a Jiangsu division code") == true)
            #expect(try await s.get("/v1/datasets?county=3201").status == 400)

            let air = try await s.get("/v1/datasets/air-quality").object
            let spatial = try #require(air["spatial"] as? [[String: Any]])
            #expect(spatial.count == 1 && spatial[0]["code"] as? String == "320100" && spatial[0]["name"] as? String == "南京市" && spatial[0]["level"] as? String == "city")
            #expect((air["temporal"] as? [String: String]) == ["start": "2026-06-01", "end": "2026-06-10"])
            let enterprises = try await s.get("/v1/datasets/enterprises").object
            #expect((enterprises["spatial"] as? [[String: Any]])?.first?["city"] as? String == "320100")
            #expect((enterprises["temporal"] as? [String: String]) == ["start": "1995-01-01"])

            let dcat = try await s.get("/v1/catalog.jsonld").text
            #expect(dcat.contains("\"dct:spatial\"") && dcat.contains("\"dct:identifier\" : \"320100\"") && dcat.contains("\"dcat:startDate\""), "\(dcat.prefix(400))")
            let context = try await s.get("/v1/catalog.jsonld").object["@context"] as? [String: Any]
            #expect(context?["skos"] as? String == "http://www.w3.org/2004/02/skos/core#")

            let page = try await s.get("/datasets/air-quality")
            #expect(page.text.contains("覆盖范围") && page.text.contains("<a href=\"/datasets?city=320100\">南京市</a>") && page.text.contains("2026-06-01 – 2026-06-10"))
            let catalog = try await s.get("/datasets?county=320115")
            #expect(catalog.status == 200 && catalog.text.contains("区县") && catalog.text.contains("name=\"county\" value=\"320115\""))
            #expect(catalog.text.contains("共 2 个数据集"))
            #expect(try await s.get("/datasets?city=999999").status == 400)
        }
    }

    @Test func searchFiltersAndCursorPaging() async throws {
        try await LiveServer.with { s in
            let air = try await s.get("/v1/datasets?q=%E7%A9%BA%E6%B0%94") // 空气
            let airIDs = ids(air)
            #expect(airIDs == ["air-quality"])
            let open = try await s.get("/v1/datasets?tier=open")
            #expect(open.object["total"] as? Int == 2)
            var paged: [String] = []
            var path = "/v1/datasets?limit=1"
            for _ in 0..<5 {
                let page = try await s.get(path)
                #expect(page.status == 200)
                paged += ids(page)
                guard let next = page.object["next_cursor"] as? String else { break }
                path = "/v1/datasets?limit=1&cursor=\(next)"
            }
            #expect(paged.sorted() == ["air-quality", "enterprises", "residents"])
        }
    }

    /// Words of three characters or more go through the FTS5 trigram index (Chinese substrings,
    /// any case, field titles included); shorter ones through LIKE; quotes are just text.
    @Test func fullTextSearchFindsChineseSubstringsAndFieldTitles() async throws {
        try await LiveServer.with { s in
            func search(_ q: String) async throws -> [String] {
                let enc = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q
                let r = try await s.get("/v1/datasets?q=\(enc)")
                #expect(r.status == 200, "\(q): \(r.text)")
                return ids(r).sorted()
            }
            #expect(try await search("空气质") == ["air-quality"])
            #expect(try await search("气质量") == ["air-quality"])
            #expect(try await search("AIR QUALITY") == ["air-quality"])
            #expect(try await search("身份证号") == ["residents"])          // a field title
            #expect(try await search("补贴金额 民政") == ["residents"])      // FTS and LIKE words together
            #expect(try await search("空气 企业") == [])
            #expect(try await search("\"\" OR *") == [])
            // Stewards' field edits reach the index (triggers on fields).
            var m = try #require(try s.catalog.dataset("enterprises")).manifest
            m.fields[0].title = "统一社会信用代码甲乙丙"
            try s.catalog.updateManifest(m, actor: "t", action: "dataset.field", detail: [:])
            #expect(try await search("甲乙丙") == ["enterprises"])
        }
    }

    @Test func aDatasetShowsItsSchemaLevelsActionsAndVersions() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/v1/datasets/enterprises")
            #expect(r.status == 200)
            #expect(r.object["view"] as? String == "public")
            let fields = r.object["fields"] as? [[String: Any]] ?? []
            let names = fields.compactMap { $0["name"] as? String }
            #expect(names == ["uscc", "company_name", "legal_representative", "registered_capital", "industry", "district", "established"])
            let rep = fields.first { $0["name"] as? String == "legal_representative" } ?? [:]
            #expect(rep["level"] as? String == "L3" && rep["semantic"] as? String == "person_name" && rep["action"] as? String == "mask")
            let versions = r.object["versions"] as? [[String: Any]] ?? [[:]]
            #expect(versions.count == 1 && versions[0]["row_count"] as? Int == 1000 && versions[0]["published"] as? Bool == true)
            // A conditional dataset's rows are not served to an anonymous caller: the schema says so.
            let residents = try await s.get("/v1/datasets/residents")
            #expect(residents.object["view"] as? String == "none")
            let actions = (residents.object["fields"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(actions == Array(repeating: "none", count: 10))
            #expect(residents.object["entity"] as? String == "id_number")
        }
    }

    @Test func errorsAreProblemJSON() async throws {
        try await LiveServer.with { s in
            let cases: [(String, Int)] = [("/v1/datasets/nope", 404), ("/v1/nothing", 404), ("/v1/datasets?limit=abc", 400),
                                          ("/v1/datasets?tier=public", 400), ("/v1/datasets?cursor=bogus", 400), ("/v1/datasets/Bad%20Id", 404)]
            for (path, status) in cases {
                let r = try await s.get(path)
                #expect(r.status == status, "\(path)")
                #expect(r.headers["content-type"] == "application/problem+json; charset=utf-8", "\(path)")
                #expect(r.object["status"] as? Int == status, "\(path)")
                #expect((r.object["title"] as? String)?.isEmpty == false)
                #expect((r.object["type"] as? String)?.isEmpty == false)
                #expect((r.object["detail"] as? String)?.isEmpty == false)
            }
        }
    }

    @Test func keysAuthenticateAndStewardsSeeUnpublishedDatasets() async throws {
        try await LiveServer.with { s in
            try s.catalog.withdraw(dataset: "air-quality", actor: "test")
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "test")
            let (devRecord, dev) = try s.catalog.createKey(role: .developer, name: "d", actor: "test")
            let anonymous = try await s.get("/v1/datasets")
            let asDeveloper = try await s.get("/v1/datasets", key: dev)
            let listAsSteward = try await s.get("/v1/datasets", key: steward)
            let hidden = try await s.get("/v1/datasets/air-quality")
            #expect(anonymous.object["total"] as? Int == 2)
            #expect(asDeveloper.object["total"] as? Int == 2)
            #expect(listAsSteward.object["total"] as? Int == 3)
            #expect(hidden.status == 404)
            let asSteward = try await s.get("/v1/datasets/air-quality", key: steward)
            #expect(asSteward.status == 200 && asSteward.object["view"] as? String == "steward")
            let bad = try await s.get("/v1/datasets", key: "kf_00000000_" + String(repeating: "0", count: 64))
            #expect(bad.status == 401 && bad.headers["content-type"] == "application/problem+json; charset=utf-8")
            try s.catalog.revokeKey(devRecord.id, actor: "test")
            let revoked = try await s.get("/v1/datasets", key: dev)
            #expect(revoked.status == 401)
        }
    }

    @Test func theServerServesTheSpecItWasBuiltWith() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            let r = try await s.get("/v1/openapi.yaml")
            #expect(r.status == 200)
            let spec = try Data(contentsOf: LiveServer.repo.appendingPathComponent("openapi/openapi.yaml"))
            #expect(r.body == spec)
        }
    }

    @Test func metricsCountRequestsByRouteTemplateNotPath() async throws {
        try await LiveServer.with { s in
            _ = try await s.get("/v1/datasets/residents")
            _ = try await s.get("/v1/datasets/enterprises")
            let m = try await s.get("/metrics")
            #expect(m.status == 200)
            #expect(m.text.contains("kaifang_http_requests_total{route=\"/v1/datasets/{id}\",method=\"GET\",status=\"200\"} 2"))
            #expect(!m.text.contains("residents"))
        }
    }
}
