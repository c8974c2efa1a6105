import Foundation
import KaifangCore
import KaifangServer
import Storage
import Testing

/// Sign-up, application keys, suspension and usage through the live server (on the store the
/// test run asks for).
@Suite struct AccountsAPITests {
    static func signUp(_ s: LiveServer, email: String, name: String = "李伟") async throws -> (account: String, key: String, keyID: String) {
        let r = try await s.get("/v1/accounts", json: ["email": email, "name": name, "organisation": "南京大学"])
        #expect(r.status == 201, "\(r.text)")
        let account = try #require(r.object["account"] as? [String: Any])
        let key = try #require(r.object["key"] as? [String: Any])
        return (try #require(account["id"] as? String), try #require(key["key"] as? String), try #require(key["id"] as? String))
    }

    /// Removes the signed-up tier's rate limit, so a test's burst of requests is not refused.
    static func unlimited(_ s: LiveServer) throws {
        for t in try s.catalog.tiers() {
            try s.catalog.putTier(AccountTier(name: t.name, rate: 0, burst: 1, exportsPerDay: t.exportsPerDay, maxKeys: t.maxKeys), actor: "test")
        }
    }

    @Test func aSignedUpKeysUsageIsCountedExactly() async throws {
        try await LiveServer.with { s in
            try Self.unlimited(s)
            let (_, key, keyID) = try await Self.signUp(s, email: "Li.Wei@Example.org")
            var bytes = 0
            // Three pages of different sizes, an export, a refused read and a missing dataset.
            var rows = 0
            for limit in [1, 7, 25] {
                let r = try await s.get("/v1/datasets/enterprises/rows?_limit=\(limit)", key: key)
                #expect(r.status == 200)
                rows += limit
                bytes += r.body.count
            }
            let export = try await s.get("/v1/datasets/enterprises/export?format=csv", key: key)
            #expect(export.status == 200)
            bytes += export.body.count
            let total = try #require(try s.catalog.publishedVersion("enterprises")?.1.rowCount)
            rows += total
            let refused = try await s.get("/v1/datasets/residents/rows", key: key)
            #expect(refused.status == 403)
            let missing = try await s.get("/v1/datasets/nope", key: key)
            #expect(missing.status == 404)
            bytes += refused.body.count + missing.body.count
            let me = try await s.get("/v1/me", key: key)
            #expect(me.status == 200)
            bytes += me.body.count
            // Another caller's use is not in this account's usage.
            _ = try await s.get("/v1/datasets/enterprises/rows?_limit=3")
            let usage = try await s.get("/v1/me/usage", key: key)
            #expect(usage.status == 200, "\(usage.text)")
            let days = try #require(usage.object["days"] as? [[String: Any]])
            #expect(days.count == 1 && days.first?["key"] as? String == keyID)
            let totals = try #require(usage.object["totals"] as? [String: Any])
            #expect(totals["requests"] as? Int == 7)
            #expect(totals["rows"] as? Int == rows)
            #expect(totals["exports"] as? Int == 1)
            // Every answer counts, refusals too, with the bytes of its body.
            #expect(totals["bytes"] as? Int == bytes)
            #expect(totals["jobs"] as? Int == 0)
            // The steward sees it per dataset and per account.
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "test")
            let byDataset = try await s.get("/v1/usage?by=dataset&dataset=enterprises", key: steward)
            let perDataset = try #require(byDataset.object["days"] as? [[String: Any]])
            #expect(perDataset.count == 1 && perDataset[0]["dataset"] as? String == "enterprises")
            #expect(perDataset[0]["rows"] as? Int == rows + 3 && perDataset[0]["exports"] as? Int == 1)
            let account = try #require(try s.catalog.authenticate(key)?.accountID)
            let byAccount = try await s.get("/v1/usage?account=\(account)", key: steward)
            #expect((byAccount.object["totals"] as? [String: Any])?["requests"] as? Int == 8)
            #expect((byAccount.object["days"] as? [[String: Any]])?.first?["account"] as? String == account)
            for bad in ["/v1/me/usage?from=2020-01-01", "/v1/me/usage?from=2026-13-01", "/v1/me/usage?from=2026-12-05&to=2026-12-01"] {
                let r = try await s.get(bad, key: key)
                #expect(r.status == 400 && r.headers["content-type"]?.hasPrefix("application/problem+json") == true, "\(bad): \(r.status)")
            }
            #expect(try await s.get("/v1/usage?account=acct_nope", key: steward).status == 404)
            #expect(try await s.get("/v1/usage", key: key).status == 403)
        }
    }

    @Test func signUpIsLimitedAndRefusesBadInputByField() async throws {
        // Three an hour from one address: a malformed form costs none, a duplicate address one.
        try await LiveServer.with(configure: { $0.signupsPerAddress = 3 }) { s in
            _ = try await Self.signUp(s, email: "a@example.org")
            let duplicate = try await s.get("/v1/accounts", json: ["email": "A@EXAMPLE.ORG", "name": "又一个"])
            #expect(duplicate.status == 409 && duplicate.text.contains("already exists"))
            #expect(!duplicate.text.contains("a@example.org"), "the address is not echoed")
            for (body, word) in [(["email": "not-an-address", "name": "x"], "email"), (["email": "b@example.org", "name": " "], "name"),
                                 (["email": "b@example.org", "name": "x", "organisation": String(repeating: "单", count: 201)], "organisation")] {
                let r = try await s.get("/v1/accounts", json: body)
                #expect(r.status == 400 && r.text.contains(word), "\(word): \(r.status) \(r.text)")
            }
            _ = try await Self.signUp(s, email: "c@example.org")
            let third = try await s.get("/v1/accounts", json: ["email": "d@example.org", "name": "x"])
            #expect(third.status == 429 && third.headers["retry-after"] != nil && third.text.contains("an hour"))
            #expect(try s.catalog.accounts().count == 2)
        }
        try await LiveServer.with(configure: { $0.signupOpen = false }) { s in
            let r = try await s.get("/v1/accounts", json: ["email": "a@example.org", "name": "x"])
            #expect(r.status == 403 && r.text.contains("closed"))
            #expect(try s.catalog.accounts().isEmpty)
        }
    }

    @Test func applicationKeysSuspensionAndTierLimits() async throws {
        try await LiveServer.with { s in
            try s.catalog.putTier(AccountTier(name: "basic", rate: 0, burst: 1, exportsPerDay: 1, maxKeys: 2), actor: "test")
            let (account, key, keyID) = try await Self.signUp(s, email: "dev@example.org")
            let (_, otherKey, otherKeyID) = try await Self.signUp(s, email: "other@example.org")
            // A second application key, then the tier's limit of two.
            let second = try await s.get("/v1/me/keys", key: key, json: ["name": "地图应用 map app"])
            #expect(second.status == 201)
            let secondKey = try #require(second.object["key"] as? String)
            let secondID = try #require(second.object["id"] as? String)
            let full = try await s.get("/v1/me/keys", key: key, json: ["name": "third"])
            #expect(full.status == 409 && full.text.contains("limit"))
            let me = try await s.get("/v1/me", key: secondKey)
            #expect((me.object["keys"] as? [[String: Any]])?.compactMap { $0["id"] as? String }.sorted() == [keyID, secondID].sorted())
            #expect((me.object["limits"] as? [String: Any])?["exports_per_day"] as? Int == 1)
            // Each key has its own export quota from the tier.
            #expect(try await s.get("/v1/datasets/enterprises/export", key: key).status == 200)
            #expect(try await s.get("/v1/datasets/enterprises/export", key: key).status == 429)
            #expect(try await s.get("/v1/datasets/enterprises/export", key: secondKey).status == 200)
            // Keys are revoked only within one's own account.
            #expect(try await s.get("/v1/me/keys/\(otherKeyID)", key: key, method: "DELETE").status == 404)
            #expect(try await s.get("/v1/me/keys/\(secondID)", key: key, method: "DELETE").status == 204)
            #expect(try await s.get("/v1/me", key: secondKey).status == 401)
            // A steward's key of no account makes no keys.
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "test")
            let noAccount = try await s.get("/v1/me/keys", key: steward, json: ["name": "x"])
            #expect(noAccount.status == 403 && noAccount.text.contains("no account"))
            // Suspension: every key of the account refused at once with the reason; the other account untouched.
            #expect(try await s.get("/v1/accounts/\(account)/suspension", key: key, method: "PUT", json: ["reason": "x"]).status == 403)
            let suspended = try await s.get("/v1/accounts/\(account)/suspension", key: steward, method: "PUT", json: ["reason": "违反使用协议 terms broken"])
            #expect(suspended.status == 200 && suspended.object["active"] as? Bool == false)
            let refused = try await s.get("/v1/datasets", key: key)
            #expect(refused.status == 403 && refused.text.contains("terms broken"))
            #expect(try await s.get("/v1/datasets", key: otherKey).status == 200)
            #expect(try await s.get("/v1/accounts/\(account)/suspension", key: steward, method: "PUT", json: ["reason": "again"]).status == 409)
            let detail = try await s.get("/v1/accounts/\(account)", key: steward)
            #expect((detail.object["keys"] as? [[String: Any]])?.count == 2)
            #expect(try await s.get("/v1/accounts/\(account)/suspension", key: steward, method: "DELETE").status == 200)
            #expect(try await s.get("/v1/datasets", key: key).status == 200)
            #expect(try await s.get("/v1/accounts/acct_nope", key: steward).status == 404)
            let list = try await s.get("/v1/accounts", key: steward)
            #expect((list.object["accounts"] as? [[String: Any]])?.count == 2)
            let actions = try s.catalog.auditEvents().map(\.event.action)
            #expect(actions.filter { $0 == "account.create" }.count == 2 && actions.contains("account.suspend") && actions.contains("account.reinstate"))
        }
    }

    @Test func thePortalSignsUpAndShowsUsageWithoutCachingTheKey() async throws {
        try await LiveServer.with { s in
            let form = try await s.get("/signup")
            #expect(form.status == 200 && form.text.contains("action=\"/signup\""))
            func post(_ path: String, _ fields: [String: String]) async throws -> LiveServer.Reply {
                let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
                return try await s.get(path, method: "POST", body: Data(body.utf8), headers: ["Content-Type": "application/x-www-form-urlencoded"])
            }
            let created = try await post("/signup", ["email": "portal@example.org", "name": "王芳"])
            #expect(created.status == 201 && created.headers["cache-control"] == "no-store")
            let key = try #require(created.text.firstMatch(of: /kf_[0-9a-f]{8}_[0-9a-f]{64}/)).output
            let again = try await post("/signup", ["email": "portal@example.org", "name": "王芳"])
            #expect(again.status == 409 && again.text.contains("already exists") && again.text.contains("value=\"王芳\""))
            try Self.unlimited(s)
            _ = try await s.get("/v1/datasets/enterprises/rows?_limit=4", key: String(key))
            let page = try await post("/account", ["key": String(key)])
            #expect(page.status == 200 && page.headers["cache-control"] == "no-store")
            #expect(page.text.contains("<td>4</td>") && page.text.contains("王芳"))
            #expect(page.text.contains("No webhooks"))
            // A webhook of the account's key is listed with its state.
            let me = try #require(try s.catalog.authenticate(String(key)))
            let hook = try s.catalog.createWebhook(keyID: me.id, url: "https://apps.example.org/hook?a=1&b=2", dataset: "enterprises", actor: "t")
            let withHook = try await post("/account", ["key": String(key)])
            #expect(withHook.text.contains(hook.id) && withHook.text.contains("https://apps.example.org/hook?a=1&amp;b=2") && withHook.text.contains("有效 active"))
            let wrong = try await post("/account", ["key": "kf_00000000_" + String(repeating: "0", count: 64)])
            #expect(wrong.status == 401)
        }
    }
}
