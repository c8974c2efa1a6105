import Audit
import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Publishing
import Storage

/// The two-person rule: a department's publisher proposes publishing a version at a tier; a
/// reviewer of the department who did not propose it approves, and a security reviewer too when
/// the proposal opens L3/L4 fields or overrides the k-anonymity gate.
extension APIHandler {
    static func proposal(_ p: ProposalRecord, current: DatasetManifest? = nil) -> Components.Schemas.Proposal {
        var changes: [String]?
        if p.status == .pending, let current, let new = p.manifest { changes = CatalogRules.policyChanges(current: current, new: new) }
        return .init(id: p.id, kind: p.kind == .policy ? .policy : .publish, dataset: p.dataset, department: p.department, version: p.version,
              tier: .init(rawValue: p.tier.rawValue) ?? .restricted, changes: changes,
              overrideReason: p.overrideReason, needsSecurity: p.needsSecurity, status: .init(rawValue: p.status.rawValue) ?? .pending,
              awaiting: p.awaiting.map { .init(rawValue: $0.rawValue) ?? .reviewer }, proposedBy: p.proposedBy,
              proposedAt: date(p.proposedAt) ?? Date(timeIntervalSince1970: 0), reviewedBy: p.reviewedBy, reviewedAt: date(p.reviewedAt),
              securityBy: p.securityBy, securityAt: date(p.securityAt), refusedBy: p.refusedBy, refusedReason: p.refusedReason,
              decidedAt: date(p.decidedAt))
    }

    /// The caller's key when it is a publisher's or a steward's: 401 without a key, 403 saying
    /// that `what` (e.g. "propose publications") is for the dataset's department's publishers.
    static func requirePublisher(_ caller: Caller, _ what: String) throws -> APIKeyRecord {
        let key = try requireKey(caller)
        guard key.role == .publisher || key.role == .steward else {
            throw Problem(status: .forbidden, detail: "a \(key.role.rawValue)'s key cannot \(what): publishers of the dataset's department do")
        }
        return key
    }

    /// Whether publishing `d` at `tier` opens fields of levels L3/L4 to callers outside the platform.
    static func opensSensitiveFields(_ d: DatasetRecord, tier: Tier) -> Bool {
        tier != .restricted && d.manifest.fields.contains { $0.level == .L3 || $0.level == .L4 }
    }

    /// The k-anonymity gate an `open` publication passes, as audit detail (`Stewardship.gate`).
    /// - Throws: 409 when the version is below the gate and no override is given.
    func kAnonymityDetail(_ p: (dataset: String, version: Int?, tier: Tier, override: String?)) throws -> [String: JSONValue] {
        try stewardship.gate(dataset: p.dataset, version: p.version, tier: p.tier, overridden: p.override != nil,
                             remedy: "Generalize or suppress a quasi-identifier, propose conditional, or give override_reason (a security reviewer approves it too)").detail
    }

    /// The proposal as the API shows it: a pending policy change with its changes against the
    /// manifest in force.
    func proposalBody(_ p: ProposalRecord) throws -> Components.Schemas.Proposal {
        Self.proposal(p, current: p.kind == .policy && p.status == .pending ? try catalog.dataset(p.dataset)?.manifest : nil)
    }

    func putDatasetManifest(_ input: Operations.PutDatasetManifest.Input) async throws -> Operations.PutDatasetManifest.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requirePublisher(caller, "change manifests")
        guard case .json(let object) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send the manifest as application/json") }
        let id = input.path.id
        let existing = try catalog.dataset(id)
        if let d = existing, !caller.mayImport(d) {
            throw Problem(status: .forbidden, detail: "'\(id)' belongs to \(d.manifest.department); your key publishes for \(key.department ?? "none")")
        }
        let manifest: DatasetManifest
        do {
            manifest = try DatasetManifest.decode(try JSONEncoder().encode(object), source: "the request body")
            try manifest.validate()
        } catch let e as KaifangError {
            throw Problem(status: .badRequest, detail: e.message)
        }
        guard manifest.id == id else { throw Problem(status: .badRequest, detail: "the manifest's id is '\(manifest.id)' but the path names '\(id)': make them the same") }
        let catalog = self.catalog
        guard let d = existing else {
            // A new dataset: its department's publisher registers it; its first version is uploaded next.
            guard caller.isSteward || manifest.department == key.department else {
                throw Problem(status: .forbidden, detail: "your key publishes for \(key.department ?? "none"); a manifest naming \(manifest.department.isEmpty ? "no department" : manifest.department) is registered by that department's publishers")
            }
            _ = try await StoreThreads.run { try catalog.registerDataset(manifest, actor: caller.actor) }
            return .created(.init(body: .json(.init(applied: true, changes: []))))
        }
        guard manifest.department == d.manifest.department || caller.isSteward else {
            throw Problem(status: .forbidden, detail: "moving '\(id)' from \(d.manifest.department) to another department is the platform steward's decision")
        }
        do { try CatalogRules.checkSameFields(current: d.manifest, new: manifest) } catch let e as KaifangError {
            throw Problem(status: .badRequest, detail: e.message)
        }
        let changes = CatalogRules.policyChanges(current: d.manifest, new: manifest)
        if changes.isEmpty || caller.isSteward {
            try await StoreThreads.run {
                try catalog.updateManifest(manifest, actor: caller.actor, action: changes.isEmpty ? "dataset.describe" : "dataset.policy",
                                           detail: ["changes": .array(changes.map(JSONValue.string))])
            }
            return .ok(.init(body: .json(.init(applied: true, changes: changes))))
        }
        let opens = d.tier == .open || d.tier == .conditional
        let p = try await StoreThreads.run {
            try catalog.createProposal(NewProposal(policy: manifest, needsSecurity: opens && CatalogRules.touchesSensitiveFields(current: d.manifest, new: manifest),
                                                   proposerKey: key.id), actor: caller.actor)
        }
        return .accepted(.init(body: .json(.init(applied: false, changes: changes, proposal: Self.proposal(p, current: d.manifest)))))
    }

    func createProposal(_ input: Operations.CreateProposal.Input) async throws -> Operations.CreateProposal.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requirePublisher(caller, "propose publications")
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let id = input.path.id
        guard let d = try catalog.dataset(id) else { throw Problem(status: .notFound, detail: "no dataset '\(id)' in the catalog") }
        guard caller.mayImport(d) else {
            throw Problem(status: .forbidden, detail: "'\(id)' belongs to \(d.manifest.department); your key publishes for \(key.department ?? "none")")
        }
        let tier = Tier(rawValue: body.tier.rawValue) ?? .restricted
        let catalog = self.catalog
        let checked = try await StoreThreads.run { try self.kAnonymityDetail((id, body.version, tier, body.overrideReason)) }
        // An override given for a version that passes the gate overrides nothing.
        let override = checked["forced"] == .bool(true) ? body.overrideReason : nil
        let p = try await StoreThreads.run {
            try catalog.createProposal(NewProposal(dataset: id, version: body.version, tier: tier, overrideReason: override,
                                                   needsSecurity: override != nil || Self.opensSensitiveFields(d, tier: tier), proposerKey: key.id),
                                       actor: caller.actor)
        }
        return .created(.init(body: .json(Self.proposal(p))))
    }

    /// Whether the caller sees a proposal: its department's people, security reviewers (those
    /// needing them), stewards.
    static func sees(_ caller: Caller, _ p: ProposalRecord) -> Bool {
        guard let key = caller.key else { return false }
        switch key.role {
        case .steward: return true
        case .publisher, .reviewer: return key.department == p.department
        case .security: return p.needsSecurity
        default: return false
        }
    }

    func listProposals(_ input: Operations.ListProposals.Input) async throws -> Operations.ListProposals.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard [.steward, .publisher, .reviewer, .security].contains(key.role) else {
            throw Problem(status: .forbidden, detail: "proposals are for departments' publishers and reviewers, security reviewers and stewards")
        }
        let status = input.query.status.flatMap { ProposalStatus(rawValue: $0.rawValue) }
        let catalog = self.catalog
        let all = try await StoreThreads.run { try catalog.proposals(department: key.role.isDepartmental ? key.department : nil, status: status) }
        return .ok(.init(body: .json(.init(proposals: try all.filter { Self.sees(caller, $0) }.map(proposalBody)))))
    }

    /// The proposal if the caller sees it, else 404 (401 without a key).
    func visibleProposal(_ id: String, _ caller: Caller) throws -> ProposalRecord {
        _ = try Self.requireKey(caller)
        guard let p = try catalog.proposal(id), Self.sees(caller, p) else {
            throw Problem(status: .notFound, detail: "no proposal '\(id)' for you: GET /v1/proposals lists those you may see")
        }
        return p
    }

    func getProposal(_ input: Operations.GetProposal.Input) async throws -> Operations.GetProposal.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        return .ok(.init(body: .json(try proposalBody(try visibleProposal(input.path.proposalId, caller)))))
    }

    func approveProposal(_ input: Operations.ApproveProposal.Input) async throws -> Operations.ApproveProposal.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let p = try visibleProposal(input.path.proposalId, caller)
        let key = try Self.requireKey(caller)
        let part: ReviewPart
        switch key.role {
        case .reviewer: part = .reviewer
        case .security: part = .security
        default:
            throw Problem(status: .forbidden, detail: "a reviewer of \(p.department) approves \(p.id)\(p.needsSecurity ? ", and a security reviewer" : ""); a \(key.role.rawValue)'s key does not")
        }
        if let refusal = CatalogRules.approvalRefusal(p, part: part, keyID: key.id) { throw refusal }
        // The last approval publishes: the gate is checked again on the policy in force now.
        let detail: [String: JSONValue] = p.awaiting == [part] && p.kind == .publish
            ? try await StoreThreads.run { try self.kAnonymityDetail((p.dataset, p.version, p.tier, p.overrideReason)) }
            : [:]
        let catalog = self.catalog
        let decided = try await StoreThreads.run {
            try catalog.approveProposal(p.id, part: part, keyID: key.id, actor: caller.actor, publishDetail: detail)
        }
        return .ok(.init(body: .json(Self.proposal(decided))))
    }

    func withdrawProposal(_ input: Operations.WithdrawProposal.Input) async throws -> Operations.WithdrawProposal.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let p = try visibleProposal(input.path.proposalId, caller)
        let key = try Self.requireKey(caller)
        let catalog = self.catalog
        let withdrawn = try await StoreThreads.run { try catalog.withdrawProposal(p.id, keyID: key.id, actor: caller.actor) }
        return .ok(.init(body: .json(Self.proposal(withdrawn))))
    }

    func refuseProposal(_ input: Operations.RefuseProposal.Input) async throws -> Operations.RefuseProposal.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        guard case .json(let body) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let p = try visibleProposal(input.path.proposalId, caller)
        let key = try Self.requireKey(caller)
        guard key.role == .reviewer || key.role == .security else {
            throw Problem(status: .forbidden, detail: "a reviewer of \(p.department) or a security reviewer refuses \(p.id); a \(key.role.rawValue)'s key does not")
        }
        let catalog = self.catalog
        let decided = try await StoreThreads.run { try catalog.refuseProposal(p.id, keyID: key.id, reason: body.reason, actor: caller.actor) }
        return .ok(.init(body: .json(Self.proposal(decided))))
    }
}
