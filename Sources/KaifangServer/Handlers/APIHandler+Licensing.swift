import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Storage

extension APIHandler {
    static func requireKey(_ caller: Caller) throws -> APIKeyRecord {
        guard let key = caller.key else {
            throw Problem(status: .unauthorized, detail: "this needs an API key: send 'Authorization: Bearer <key>'; a steward creates keys with `kaifang key create`")
        }
        return key
    }

    /// A steward's key, or 401 (no key) / 403 saying that `what` (e.g. "the audit log is") is for stewards.
    static func requireSteward(_ caller: Caller, _ what: String) throws {
        _ = try requireKey(caller)
        guard caller.isSteward else {
            throw Problem(status: .forbidden, detail: "\(what) for stewards: use a steward key (kaifang key create --role steward)")
        }
    }

    static func isoDate(_ s: String?) -> Date? { date(s) }

    static func application(_ a: ApplicationRecord) -> Components.Schemas.Application {
        .init(id: Int(a.id), dataset: a.dataset, purpose: a.purpose, fields: a.fields, use: .init(rawValue: a.use.rawValue) ?? .rows,
              durationDays: a.durationDays, status: .init(rawValue: a.status) ?? .pending, reason: a.reason, license: a.licenseID,
              createdAt: date(a.createdAt) ?? Date(timeIntervalSince1970: 0), decidedAt: date(a.decidedAt))
    }

    func createApplication(_ input: Operations.CreateApplication.Input) async throws -> Operations.CreateApplication.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        do {
            let app = try catalog.createApplication(keyID: key.id, dataset: body.dataset, purpose: body.purpose, fields: body.fields ?? [],
                                                    use: LicenseUse(rawValue: body.use.rawValue) ?? .rows, durationDays: body.durationDays ?? 90)
            return .created(.init(body: .json(Self.application(app))))
        } catch let e as KaifangError where e.kind == .notFound {
            throw Problem(status: .notFound, detail: e.message)
        }
    }

    func getApplication(_ input: Operations.GetApplication.Input) async throws -> Operations.GetApplication.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard let app = try catalog.application(Int64(input.path.appId)), app.keyID == key.id || caller.isSteward else {
            return .notFound(.init(body: .applicationProblemJson(Self.problem(Problem(status: .notFound, detail: "no application \(input.path.appId) of yours", instance: "/v1/applications/\(input.path.appId)")))))
        }
        return .ok(.init(body: .json(Self.application(app))))
    }

    func listLicenses(_ input: Operations.ListLicenses.Input) async throws -> Operations.ListLicenses.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let now = AuditTime.now()
        let month = JobRecord.month(now)
        let licenses = try catalog.licenses(keyID: caller.isSteward ? nil : key.id).map { l in
            var used: Components.Schemas.License.EpsilonUsedPayload?
            var left: Components.Schemas.License.EpsilonLeftPayload?
            if l.use == .sandbox {
                let spent = try catalog.epsilonUsed(keyID: l.keyID, dataset: l.dataset, month: month)
                let monthly = try jobs.policy(for: l.dataset).monthlyEpsilon
                used = .init(additionalProperties: [l.dataset: spent])
                left = .init(additionalProperties: [l.dataset: max(0, monthly - spent)])
            }
            return Components.Schemas.License(id: l.id, dataset: l.dataset, fields: l.fields, use: .init(rawValue: l.use.rawValue) ?? .rows,
                                              createdAt: Self.date(l.createdAt) ?? Date(timeIntervalSince1970: 0),
                                              expiresAt: Self.date(l.expiresAt) ?? Date(timeIntervalSince1970: 0),
                                              revokedAt: Self.date(l.revokedAt), active: l.isActive(at: now),
                                              epsilonUsed: used, epsilonLeft: left)
        }
        return .ok(.init(body: .json(.init(licenses: licenses))))
    }
}

import Audit
enum AuditTime {
    static func now() -> String { AuditChain.timestamp() }
    static func now(daysAgo: Int) -> String { AuditChain.timestamp(Date().addingTimeInterval(-Double(daysAgo) * 86_400)) }
}
