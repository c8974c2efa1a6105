import Audit
import Foundation
import KaifangAPI
import KaifangCore
import Masking
import OpenAPIRuntime
import Storage

/// Data requests (数据需求): anyone with a key files one to a department, votes and comments; the
/// department's publishers and reviewers (or a steward) answer it; the board is public, with
/// identifying values in its texts masked for everyone but the filer and the department.
extension APIHandler {
    /// Whether the caller reads a request's texts as written: its filer, the department asked, stewards.
    static func readsUnmasked(_ caller: Caller, _ r: DataRequestRecord) -> Bool {
        caller.actsFor(department: r.department) || caller.key?.id == r.filedBy
    }

    /// Users' texts as one caller reads them: as written (`plain`), or with identifying values
    /// masked (`FreeText`); `masked` says whether any was.
    struct ShownText {
        let plain: Bool
        private(set) var masked = false

        init(plain: Bool) { self.plain = plain }

        mutating func callAsFunction(_ text: String) -> String {
            guard !plain else { return text }
            let m = FreeText.mask(text)
            if m.masked { masked = true }
            return m.text
        }

        mutating func callAsFunction(_ text: String?) -> String? { text.map { self($0) } }
    }

    static func request(_ r: DataRequestRecord, for caller: Caller, today: String) -> Components.Schemas.DataRequest {
        var shown = ShownText(plain: readsUnmasked(caller, r))
        let title = shown(r.title), items = r.items.map { shown($0) }, purpose = shown(r.purpose)
        let reply = shown(r.reply), reason = shown(r.reason)
        let masked = shown.masked
        return .init(id: r.id, title: title, items: items, purpose: purpose, department: r.department,
                     status: .init(rawValue: r.status.rawValue) ?? .open, filedAt: date(r.filedAt) ?? Date(timeIntervalSince1970: 0), due: r.due,
                     overdue: r.isOverdue(today: today), votes: r.votes, comments: r.comments, reply: reply, repliedAt: date(r.repliedAt),
                     answeredAt: date(r.answeredAt), answeredOnTime: r.answeredOnTime, closedAt: date(r.closedAt), reason: reason,
                     dataset: r.dataset, version: r.version, deliveredItems: r.status == .fulfilled ? r.delivered : nil, masked: masked)
    }

    static func comment(_ c: RequestComment, plain: Bool) -> Components.Schemas.RequestComment {
        .init(id: c.id, role: c.role.rawValue, fromDepartment: c.fromDepartment, text: plain ? c.text : FreeText.mask(c.text).text,
              at: date(c.at) ?? Date(timeIntervalSince1970: 0))
    }

    static var today: String { String(AuditChain.timestamp().prefix(10)) }

    /// 400 with the store's message for a malformed field.
    static func badField<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as KaifangError where e.kind == .badInput {
            throw Problem(status: .badRequest, detail: e.message)
        }
    }

    static func badField<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as KaifangError where e.kind == .badInput {
            throw Problem(status: .badRequest, detail: e.message)
        }
    }

    func listRequests(_ input: Operations.ListRequests.Input) async throws -> Operations.ListRequests.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let q = input.query, catalog = self.catalog
        let all = try await StoreThreads.run {
            try catalog.dataRequests(department: q.department, status: q.status.flatMap { RequestStatus(rawValue: $0.rawValue) })
        }
        let today = Self.today
        return .ok(.init(body: .json(.init(at: today, requests: all.map { Self.request($0, for: caller, today: today) }))))
    }

    func createRequest(_ input: Operations.CreateRequest.Input) async throws -> Operations.CreateRequest.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let due = CatalogRules.workingDaysAfter(Self.today, configuration.requestWorkingDays)
        let new = try Self.badField {
            try CatalogRules.checkRequest(NewDataRequest(title: b.title, items: b.items, purpose: b.purpose, department: b.department, due: due, filerKey: key.id))
        }
        let catalog = self.catalog
        let r = try await StoreThreads.run { try catalog.createRequest(new, actor: caller.actor) }
        return .created(.init(body: .json(Self.request(r, for: caller, today: Self.today))))
    }

    func requireRequest(_ id: Int64) async throws -> DataRequestRecord {
        let catalog = self.catalog
        guard let r = try await StoreThreads.run({ try catalog.dataRequest(id) }) else {
            throw Problem(status: .notFound, detail: "no data request \(id): GET /v1/requests lists them")
        }
        return r
    }

    func getRequest(_ input: Operations.GetRequest.Input) async throws -> Operations.GetRequest.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let r = try await requireRequest(input.path.requestId)
        let catalog = self.catalog
        let comments = try await StoreThreads.run { try catalog.requestComments(r.id) }
        let plain = Self.readsUnmasked(caller, r)
        return .ok(.init(body: .json(.init(request: Self.request(r, for: caller, today: Self.today),
                                           comments: comments.map { Self.comment($0, plain: plain) }))))
    }

    func voteRequest(_ input: Operations.VoteRequest.Input) async throws -> Operations.VoteRequest.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let id = input.path.requestId, catalog = self.catalog
        let r = try await StoreThreads.run { try catalog.voteRequest(id, keyID: key.id, actor: caller.actor) }
        return .ok(.init(body: .json(Self.request(r, for: caller, today: Self.today))))
    }

    func commentRequest(_ input: Operations.CommentRequest.Input) async throws -> Operations.CommentRequest.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let text = try Self.badField { try CatalogRules.requestText(b.text, what: "text") }
        let r = try await requireRequest(input.path.requestId)
        let catalog = self.catalog
        let fromDepartment = key.role.isDepartmental && key.department == r.department
        let c = try await StoreThreads.run {
            try catalog.commentRequest(r.id, keyID: key.id, role: key.role, fromDepartment: fromDepartment, text: text, actor: caller.actor)
        }
        return .created(.init(body: .json(Self.comment(c, plain: true))))
    }

    func answerRequest(_ input: Operations.AnswerRequest.Input) async throws -> Operations.AnswerRequest.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let r = try await requireRequest(input.path.requestId)
        guard caller.actsFor(department: r.department) else {
            let yours = key.role.isDepartmental ? "your key answers for \(key.department ?? "no department")" : "a \(key.role.rawValue)'s key answers none"
            throw Problem(status: .forbidden, detail: "request \(r.id) asks \(r.department): its publishers and reviewers (or a steward) answer it; \(yours)")
        }
        let answer: RequestAnswer
        switch b.action {
        case .reply: answer = .reply(b.text ?? "")
        case .accept: answer = .accept(b.text)
        case .decline: answer = .decline(reason: b.text ?? "")
        case .fulfil:
            guard let d = b.dataset else { throw Problem(status: .badRequest, detail: "fulfil names the published dataset that answers the request: give \"dataset\"") }
            answer = .fulfil(dataset: d, version: b.version, reply: b.text)
        }
        let checked = try Self.badField { try CatalogRules.checkAnswer(answer) }
        let catalog = self.catalog
        do {
            let done = try await StoreThreads.run { try catalog.answerRequest(r.id, checked, keyID: key.id, actor: caller.actor) }
            return .ok(.init(body: .json(Self.request(done, for: caller, today: Self.today))))
        } catch let e as KaifangError where e.kind == .badInput {
            // The body was well formed; what it names cannot answer the request.
            throw Problem(status: .unprocessableContent, detail: e.message)
        }
    }

    func withdrawRequest(_ input: Operations.WithdrawRequest.Input) async throws -> Operations.WithdrawRequest.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let r = try await requireRequest(input.path.requestId)
        let catalog = self.catalog
        let done = try await StoreThreads.run { try catalog.answerRequest(r.id, .withdraw(reason: nil), keyID: key.id, actor: caller.actor) }
        return .ok(.init(body: .json(Self.request(done, for: caller, today: Self.today))))
    }

    static func demand(_ f: DemandFigures) -> Components.Schemas.DemandFigures {
        .init(department: f.department, requests: f.requests, listedItems: f.listedItems, deliveredItems: f.deliveredItems,
              onDemandRate: f.onDemandRate, answered: f.answered, answeredOnTime: f.answeredOnTime, overdue: f.overdue, onTimeRate: f.onTimeRate)
    }
}
