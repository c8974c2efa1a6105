import Audit
import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Storage

/// Showcases (应用场景): anyone with a key registers what they built on the data; a steward
/// approves it before it is shown and counted.
extension APIHandler {
    static func showcase(_ s: ShowcaseRecord) -> Components.Schemas.Showcase {
        .init(id: s.id, title: s.title, description: s.description, url: s.url, datasets: s.datasets, licenses: s.licenses,
              status: .init(rawValue: s.status.rawValue) ?? .pending, filedAt: date(s.filedAt) ?? Date(timeIntervalSince1970: 0),
              decidedAt: date(s.decidedAt), reason: s.reason)
    }

    /// Whether the caller sees a showcase: approved ones everyone, others their filer and stewards.
    static func sees(_ caller: Caller, _ s: ShowcaseRecord) -> Bool {
        s.status == .approved || caller.isSteward || caller.key?.id == s.filedBy
    }

    func listShowcases(_ input: Operations.ListShowcases.Input) async throws -> Operations.ListShowcases.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let status = input.query.status.flatMap { ShowcaseStatus(rawValue: $0.rawValue) }
        let catalog = self.catalog
        let all = try await StoreThreads.run { try catalog.showcases(status: status) }
        return .ok(.init(body: .json(.init(showcases: all.filter { Self.sees(caller, $0) }.map(Self.showcase)))))
    }

    func createShowcase(_ input: Operations.CreateShowcase.Input) async throws -> Operations.CreateShowcase.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let new = NewShowcase(title: b.title, description: b.description, url: b.url, datasets: b.datasets, licenses: b.licenses ?? [], filerKey: key.id)
        let catalog = self.catalog
        let s = try await Self.badField { try await StoreThreads.run { try catalog.createShowcase(new, actor: caller.actor) } }
        return .created(.init(body: .json(Self.showcase(s))))
    }

    func requireShowcase(_ id: Int64, for caller: Caller) async throws -> ShowcaseRecord {
        let catalog = self.catalog
        guard let s = try await StoreThreads.run({ try catalog.showcase(id) }), Self.sees(caller, s) else {
            throw Problem(status: .notFound, detail: "no showcase \(id): GET /v1/showcases lists them")
        }
        return s
    }

    func getShowcase(_ input: Operations.GetShowcase.Input) async throws -> Operations.GetShowcase.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        return .ok(.init(body: .json(Self.showcase(try await requireShowcase(input.path.showcaseId, for: caller)))))
    }

    func decide(_ id: Int64, _ decision: ShowcaseDecision) async throws -> Components.Schemas.Showcase {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let s = try await requireShowcase(id, for: caller)
        if decision != .withdraw { try Self.requireSteward(caller, "approving and refusing showcases is") }
        let catalog = self.catalog
        let done = try await Self.badField { try await StoreThreads.run { try catalog.decideShowcase(s.id, decision, keyID: key.id, actor: caller.actor) } }
        return Self.showcase(done)
    }

    func approveShowcase(_ input: Operations.ApproveShowcase.Input) async throws -> Operations.ApproveShowcase.Output {
        .ok(.init(body: .json(try await decide(input.path.showcaseId, .approve))))
    }

    func refuseShowcase(_ input: Operations.RefuseShowcase.Input) async throws -> Operations.RefuseShowcase.Output {
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        return .ok(.init(body: .json(try await decide(input.path.showcaseId, .refuse(reason: b.reason)))))
    }

    func withdrawShowcase(_ input: Operations.WithdrawShowcase.Input) async throws -> Operations.WithdrawShowcase.Output {
        .ok(.init(body: .json(try await decide(input.path.showcaseId, .withdraw))))
    }
}
