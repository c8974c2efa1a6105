import Audit
import Foundation
import KaifangAPI
import OpenAPIRuntime
import Storage

extension APIHandler {
    static func plain(_ v: JSONValue) -> (any Sendable)? {
        switch v {
        case .null: return nil as String?
        case .bool(let b): return b
        case .int(let i): return Int(i)
        case .string(let s): return s
        case .array(let a): return a.map(plain)
        case .object(let o): return o.mapValues(plain)
        }
    }

    func listAuditEvents(_ input: Operations.ListAuditEvents.Input) async throws -> Operations.ListAuditEvents.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        try Self.requireSteward(caller, "the audit log is")
        let limit = input.query.limit ?? 100
        guard (1...1000).contains(limit) else { throw Problem(status: .badRequest, detail: "limit must be 1–1000") }
        let events = try catalog.auditEvents(dataset: input.query.dataset, actor: input.query.key.map { "key:\($0)" }, limit: limit)
        let out = try events.map { e in
            Components.Schemas.AuditEvent(seq: Int(e.event.seq), at: e.event.at, actor: e.event.actor, action: e.event.action, dataset: e.event.dataset,
                                          detail: .init(additionalProperties: try OpenAPIObjectContainer(unvalidatedValue: e.event.detail.mapValues(Self.plain))),
                                          hash: e.hash)
        }
        return .ok(.init(body: .json(.init(events: out))))
    }
}
