import Foundation
import HTTPTypes
import Hummingbird
import KaifangAPI
import KaifangCore
import Sandbox
import Storage

extension Portal {
    static func html(_ body: String, status: HTTPResponse.Status = .ok, secret: Bool = false) -> Response {
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .init("Content-Security-Policy")!: "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"]
        // A page showing a key or a holder's usage is kept by no cache.
        if secret { headers[.cacheControl] = "no-store" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// The sandbox policy shipped with the binary (`sandbox/policy.json`).
    static var defaultPolicy: SandboxPolicy {
        (EmbeddedFiles.data("sandbox-policy.json")).flatMap { try? SandboxPolicy.decode($0, source: "policy.json") } ?? .defaults
    }

    /// Adds the portal's routes: `/`, `/datasets`, `/datasets/{id}`, `/datasets/{id}/apply`,
    /// `/signup`, `/account`, `/review`, `/requests`, `/requests/{id}`, `/showcases`, `/sandbox`, `/docs/api`, `/static/…`.
    func addRoutes(to router: Router<AppRequestContext>, api: APIHandler) {
        let limiter = api.limiter
        router.get("/") { _, _ in
            try limiter.admit(Caller.current)
            return Self.html(try await StoreThreads.run { try self.home() })
        }
        router.get("/datasets") { request, _ in
            try limiter.admit(Caller.current)
            let q = request.uri.queryParameters
            func value(_ k: String) -> String? { q[k[...]].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
            do {
                return Self.html(try self.catalogPage(q: value("q"), department: value("department"), tier: value("tier"), topic: value("topic"), freshness: value("freshness"),
                                                         city: value("city"), county: value("county"), cursor: value("cursor")))
            } catch let e as KaifangError where e.kind == .badInput {
                return Self.html(self.message("无效的请求 Bad request", e.message, back: "/datasets"), status: .badRequest)
            }
        }
        router.get("/datasets/:id") { _, context in
            try limiter.admit(Caller.current)
            let id = try context.parameters.require("id")
            guard let page = try self.datasetPage(id, caller: Caller.current) else {
                return Self.html(self.message("未找到 Not found", "没有已发布的数据集“\(id)”。No published dataset '\(id)'.", back: "/datasets"), status: .notFound)
            }
            return Self.html(page)
        }
        router.post("/datasets/:id/apply") { request, context in
            try limiter.admit(Caller.current)
            let id = try context.parameters.require("id")
            let body = try await request.body.collect(upTo: 64 << 10)
            let form = Self.form(String(buffer: body))
            let back = "/datasets/\(id)"
            guard let key = form["key"]?.first.flatMap({ try? self.catalog.authenticate($0) }) ?? nil else {
                return Self.html(self.message("密钥无效 Invalid key", "API 密钥未知或已吊销。The API key is unknown or revoked: ask a data steward for one.", back: back), status: .unauthorized)
            }
            do {
                let app = try self.catalog.createApplication(
                    keyID: key.id, dataset: id, purpose: form["purpose"]?.first ?? "", fields: form["fields"] ?? [],
                    use: LicenseUse(rawValue: form["use"]?.first ?? "rows") ?? .rows, durationDays: Int(form["duration_days"]?.first ?? "90") ?? 90)
                return Self.html(self.message("申请已提交 Application received",
                                              "申请编号 \(app.id)，等待数据管理员审批。Application \(app.id) is pending a steward's decision; follow it with GET /v1/applications/\(app.id).", back: back),
                                 status: .created)
            } catch let e as KaifangError where e.kind != .runtime {
                return Self.html(self.message("申请未提交 Not submitted", e.message, back: back), status: e.kind == .notFound ? .notFound : .badRequest)
            }
        }
        router.get("/signup") { _, _ in
            try limiter.admit(Caller.current)
            return Self.html(self.signupPage(baseURL: Caller.current.baseURL, closed: !api.configuration.signupOpen))
        }
        router.post("/signup") { request, _ in
            let caller = Caller.current
            try limiter.admit(caller)
            let form = Self.form(String(buffer: try await request.body.collect(upTo: 16 << 10)))
            let (email, name, organisation) = (form["email"]?.first ?? "", form["name"]?.first ?? "", form["organisation"]?.first ?? "")
            do {
                let (account, _, secret) = try api.signUp(email: email, name: name, organisation: organisation, keyName: nil, caller: caller)
                return Self.html(self.signupPage(created: (account, secret), baseURL: caller.baseURL), status: .created, secret: true)
            } catch let e as KaifangError where e.kind != .runtime {
                let status: HTTPResponse.Status = e.kind == .conflict ? .conflict : .badRequest
                return Self.html(self.signupPage(baseURL: caller.baseURL, error: e.message, email: email, name: name, organisation: organisation), status: status, secret: true)
            } catch let p as Problem where p.status != 500 {
                return Self.html(self.signupPage(baseURL: caller.baseURL, error: p.detail, closed: !api.configuration.signupOpen, email: email, name: name,
                                                 organisation: organisation), status: .init(code: p.status), secret: true)
            }
        }
        router.get("/account") { _, _ in
            try limiter.admit(Caller.current)
            return Self.html(self.render("account", [:]))
        }
        router.post("/account") { request, _ in
            try limiter.admit(Caller.current)
            let form = Self.form(String(buffer: try await request.body.collect(upTo: 16 << 10)))
            guard let key = try form["key"]?.first.flatMap({ try self.catalog.authenticate($0) }) else {
                return Self.html(self.render("account", ["error": "API 密钥未知或已吊销。The API key is unknown or revoked."]), status: .unauthorized)
            }
            try await StoreThreads.run { [usage = api.usage] in try usage.flush() }
            return Self.html(try self.accountPage(key, limits: try api.limits(of: key)), secret: true)
        }
        router.get("/departments/:name") { _, context in
            try limiter.admit(Caller.current)
            let name = try context.parameters.require("name").removingPercentEncoding ?? ""
            guard let page = try await StoreThreads.run({ try self.departmentPage(name) }) else {
                return Self.html(self.message("没有这个部门 No such department", "“\(name)” 不是本平台的部门。", back: "/scorecards"), status: .notFound)
            }
            return Self.html(page)
        }
        router.get("/review") { _, _ in
            try limiter.admit(Caller.current)
            return Self.html(self.render("review", [:]))
        }
        router.post("/review") { request, _ in
            try limiter.admit(Caller.current)
            let form = Self.form(String(buffer: try await request.body.collect(upTo: 16 << 10)))
            guard let caller = try await self.formCaller(form), let key = caller.key else {
                return Self.html(self.render("review", ["error": "API 密钥未知或已吊销。The API key is unknown or revoked."]), status: .unauthorized)
            }
            let secret = form["key"]?.first ?? ""
            return try await Caller.$current.withValue(caller) {
                var notice: String?, error: String?
                if let id = form["proposal"]?.first, let action = form["action"]?.first {
                    do {
                        if action == "approve" {
                            let p = try await api.approveProposal(.init(path: .init(proposalId: id)))
                            if case .ok(let ok) = p, case .json(let body) = ok.body {
                                notice = body.status == .published ? "已批准并发布 \(body.dataset)。Approved: \(body.dataset) is published." : "已批准，等待 \(body.awaiting.map(\.rawValue).joined(separator: ", ")) 批准。Approved; it awaits \(body.awaiting.map(\.rawValue).joined(separator: ", "))."
                            }
                        } else {
                            _ = try await api.refuseProposal(.init(path: .init(proposalId: id), body: .json(.init(reason: form["reason"]?.first ?? ""))))
                            notice = "已拒绝 \(id)。Refused."
                        }
                    } catch let p as Problem {
                        error = p.detail
                    } catch let e as KaifangError where e.kind != .runtime {
                        error = e.message
                    }
                }
                do {
                    return Self.html(try await self.reviewPage(key, secret: secret, notice: notice, error: error, api: api), status: error == nil ? .ok : .conflict, secret: true)
                } catch let p as Problem {
                    return Self.html(self.render("review", ["error": p.detail ?? "refused"]), status: .init(code: p.status), secret: true)
                }
            }
        }
        router.get("/requests") { request, _ in
            try limiter.admit(Caller.current)
            let q = request.uri.queryParameters
            func value(_ k: String) -> String? { q[k[...]].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
            return Self.html(try await self.requestsPage(department: value("department"), status: value("status"), api: api))
        }
        router.post("/requests") { request, _ in
            try limiter.admit(Caller.current)
            let form = Self.form(String(buffer: try await request.body.collect(upTo: 64 << 10)))
            guard let caller = try await self.formCaller(form) else {
                return Self.html(try await self.requestsPage(department: nil, status: nil, error: "API 密钥未知或已吊销。The API key is unknown or revoked.", api: api),
                                 status: .unauthorized)
            }
            return try await Caller.$current.withValue(caller) {
                let items = (form["items"]?.first ?? "").split(whereSeparator: { $0.isNewline || $0 == "、" || $0 == "," || $0 == "，" })
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                let body = Components.Schemas.NewDataRequest(title: form["title"]?.first ?? "", items: items, purpose: form["purpose"]?.first ?? "",
                                                             department: form["department"]?.first ?? "")
                do {
                    guard case .created(let made) = try await api.createRequest(.init(body: .json(body))), case .json(let r) = made.body else {
                        throw Problem(status: .internalServerError, detail: "the request was not filed")
                    }
                    return Self.html(try await self.requestsPage(department: nil, status: nil, notice: "已提交需求 \(r.id)，答复期限 \(r.due)。Filed as request \(r.id); the answer is due \(r.due).", api: api),
                                     status: .created, secret: true)
                } catch {
                    let (refused, status) = try Self.refusal(error)
                    return Self.html(try await self.requestsPage(department: nil, status: nil, error: refused, api: api), status: status, secret: true)
                }
            }
        }
        router.get("/requests/:id") { _, context in
            try limiter.admit(Caller.current)
            let text = try context.parameters.require("id")
            guard let id = Int64(text), id > 0, let page = try await self.requestPage(id, api: api) else {
                return Self.html(self.message("未找到 Not found", "没有编号为 \(Int64(text).map(String.init) ?? "?") 的需求。No such data request.", back: "/requests"), status: .notFound)
            }
            return Self.html(page)
        }
        router.post("/requests/:id") { request, context in
            try limiter.admit(Caller.current)
            let text = try context.parameters.require("id")
            let form = Self.form(String(buffer: try await request.body.collect(upTo: 64 << 10)))
            var notice: String?, refused: String?, status = HTTPResponse.Status.ok
            if let id = Int64(text), id > 0 {
                if let caller = try await self.formCaller(form) {
                    do {
                        (notice, status) = try await Caller.$current.withValue(caller) {
                            if form["action"]?.first == "comment" {
                                _ = try await api.commentRequest(.init(path: .init(requestId: id), body: .json(.init(text: form["text"]?.first ?? ""))))
                                return ("已发表评论。Your comment is posted.", .created)
                            }
                            _ = try await api.voteRequest(.init(path: .init(requestId: id)))
                            return ("已投票。Your vote is counted.", .ok)
                        }
                    } catch {
                        (refused, status) = try Self.refusal(error)
                    }
                } else {
                    (refused, status) = ("API 密钥未知或已吊销。The API key is unknown or revoked.", .unauthorized)
                }
                if let page = try await self.requestPage(id, notice: notice, error: refused, api: api) {
                    return Self.html(page, status: status, secret: true)
                }
            }
            return Self.html(self.message("未找到 Not found", "没有编号为 \(Int64(text).map(String.init) ?? "?") 的需求。No such data request.", back: "/requests"), status: .notFound)
        }
        router.get("/showcases") { _, _ in
            try limiter.admit(Caller.current)
            let catalog = self.catalog
            let approved = try await StoreThreads.run { try catalog.showcases(status: .approved) }
            return Self.html(self.render("showcases", [
                "count": approved.count,
                "showcases": approved.map { s -> [String: Any] in
                    var c: [String: Any] = ["id": s.id, "title": s.title, "description": s.description, "datasets": s.datasets]
                    if let u = s.url { c["url"] = u }
                    return c
                },
            ]))
        }
        router.get("/sandbox") { _, _ in
            try limiter.admit(Caller.current)
            return Self.html(try self.sandboxPage(policy: Self.defaultPolicy))
        }
        router.get("/scorecards") { _, _ in
            try limiter.admit(Caller.current)
            let (at, month, cards) = try await api.scorecards.current(self.catalog)
            return Self.html(try await StoreThreads.run { try self.scorecardsPage(month: month, at: at, current: cards) })
        }
        router.get("/docs/api") { _, _ in
            try limiter.admit(Caller.current)
            return Self.html(try self.apiDocsPage())
        }
        router.get("/static/kaifang.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(bytes: EmbeddedFiles.data("static/kaifang.css") ?? Data())))
        }
    }

    /// Parses an `application/x-www-form-urlencoded` body (repeated keys kept in order).
    /// The visitor with the form's `key` as the caller, so that the API's own handlers decide for
    /// that key with their rules; nil when the key is missing, unknown or revoked.
    func formCaller(_ form: [String: [String]]) async throws -> Caller? {
        guard let secret = form["key"]?.first, !secret.isEmpty else { return nil }
        let catalog = self.catalog
        guard let key = try await StoreThreads.run({ try catalog.authenticate(secret) }) else { return nil }
        var caller = Caller.current
        caller.key = key
        return caller
    }

    /// What an API handler refused (a problem or bad input), as a page's message and status;
    /// anything else is thrown on.
    static func refusal(_ error: any Error) throws -> (String, HTTPResponse.Status) {
        switch error {
        case let p as Problem where p.status < 500: return (p.detail ?? "refused", .init(code: p.status))
        case let e as KaifangError where e.kind != .runtime: return (e.message, .init(code: Problem(e, instance: nil).status))
        default: throw error
        }
    }

    static func form(_ body: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for (k, v) in QueryString(body).items { out[k, default: []].append(v) }
        return out
    }
}

/// The sandbox policy shipped with the binary (`sandbox/policy.json`), for the CLI and the server.
public var embeddedSandboxPolicy: SandboxPolicy { Portal.defaultPolicy }
