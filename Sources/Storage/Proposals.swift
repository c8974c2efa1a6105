import Audit
import Foundation
import KaifangCore

/// Where a proposal stands. A pending proposal takes effect when its last needed approval
/// arrives (`published`), or ends refused or withdrawn; nothing is ever deleted.
public enum ProposalStatus: String, Sendable, CaseIterable, Codable {
    /// `published`: a publication took effect; `applied`: a policy change did.
    case pending, published, applied, refused, withdrawn
}

/// What a proposal changes: a publication (a version at a tier), or the dataset's policy (its
/// manifest's fields: levels, semantic types, actions, quasi-identifiers, fingerprints).
public enum ProposalKind: String, Sendable, CaseIterable, Codable {
    case publish, policy
}

/// Who approves which part of a proposal: a reviewer of the dataset's department, and for
/// proposals that open L3/L4 fields or override the k-anonymity gate, a security reviewer too.
public enum ReviewPart: String, Sendable, CaseIterable {
    case reviewer, security
}

/// A department's proposal to publish a version of one of its datasets at a tier, or to change
/// its policy: it takes effect only when someone other than its proposer approves it
/// (two-person rule).
public struct ProposalRecord: Sendable, Equatable {
    public var id: String
    public var dataset: String
    /// The dataset's department when it was proposed: whose reviewers approve it.
    public var department: String
    public var kind: ProposalKind
    /// The version to publish; for a policy change, the newest version when it was proposed.
    public var version: Int
    /// The tier to publish at; for a policy change, the dataset's tier when it was proposed
    /// (`restricted` when unpublished).
    public var tier: Tier
    /// The manifest a policy change puts in force.
    public var manifest: DatasetManifest?
    /// Why publishing below the k-anonymity threshold is acceptable (an override), when given.
    public var overrideReason: String?
    /// Whether a security reviewer must approve it too.
    public var needsSecurity: Bool
    public var status: ProposalStatus
    /// The proposer's key id.
    public var proposedBy: String
    public var proposedAt: String
    public var reviewedBy: String?
    public var reviewedAt: String?
    public var securityBy: String?
    public var securityAt: String?
    public var refusedBy: String?
    public var refusedReason: String?
    public var decidedAt: String?

    package init(id: String, dataset: String, department: String, kind: ProposalKind = .publish, version: Int, tier: Tier,
                 manifest: DatasetManifest? = nil, overrideReason: String?, needsSecurity: Bool, status: ProposalStatus, proposedBy: String, proposedAt: String, reviewedBy: String? = nil, reviewedAt: String? = nil,
                 securityBy: String? = nil, securityAt: String? = nil, refusedBy: String? = nil, refusedReason: String? = nil,
                 decidedAt: String? = nil) {
        self.id = id; self.dataset = dataset; self.department = department; self.kind = kind; self.version = version; self.tier = tier
        self.manifest = manifest
        self.overrideReason = overrideReason; self.needsSecurity = needsSecurity; self.status = status
        self.proposedBy = proposedBy; self.proposedAt = proposedAt; self.reviewedBy = reviewedBy; self.reviewedAt = reviewedAt
        self.securityBy = securityBy; self.securityAt = securityAt; self.refusedBy = refusedBy; self.refusedReason = refusedReason
        self.decidedAt = decidedAt
    }

    /// The approvals it still waits for.
    public var awaiting: [ReviewPart] {
        guard status == .pending else { return [] }
        var parts: [ReviewPart] = []
        if reviewedBy == nil { parts.append(.reviewer) }
        if needsSecurity && securityBy == nil { parts.append(.security) }
        return parts
    }
}

/// A proposal as filed (the checks that need the version's data are the caller's).
public struct NewProposal: Sendable {
    public var dataset: String
    public var version: Int?
    public var tier: Tier
    public var overrideReason: String?
    public var needsSecurity: Bool
    public var proposerKey: String
    /// For a policy change: the manifest to put in force (its fields the current ones).
    public var manifest: DatasetManifest?

    public init(dataset: String, version: Int?, tier: Tier, overrideReason: String?, needsSecurity: Bool, proposerKey: String) {
        self.dataset = dataset; self.version = version; self.tier = tier; self.overrideReason = overrideReason
        self.needsSecurity = needsSecurity; self.proposerKey = proposerKey
    }

    /// A policy change of `manifest.id` (version and tier are the dataset's when filed).
    public init(policy manifest: DatasetManifest, needsSecurity: Bool, proposerKey: String) {
        self.init(dataset: manifest.id, version: nil, tier: .restricted, overrideReason: nil, needsSecurity: needsSecurity, proposerKey: proposerKey)
        self.manifest = manifest
    }

    public var kind: ProposalKind { manifest == nil ? .publish : .policy }
}

extension CatalogRules {
    package static func newProposalID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "prop_" + (0..<10).map { _ in String(UInt8.random(in: 0...15, using: &rng), radix: 16) }.joined()
    }

    /// Checks that a manifest may replace the current one through `updateManifest`: the same
    /// fields, by name.
    /// - Throws: `KaifangError.badInput`.
    package static func checkSameFields(current: DatasetManifest, new: DatasetManifest) throws {
        guard Set(current.fields.map(\.name)) == Set(new.fields.map(\.name)) else {
            throw KaifangError.badInput("the fields of '\(new.id)' cannot be added or removed here: import a new version with a new manifest")
        }
    }

    /// What `new` changes in the serving policy of `current`'s fields, one line per change
    /// (`field: level L3 → L2`); empty when only descriptions differ. Never a value.
    public static func policyChanges(current: DatasetManifest, new: DatasetManifest) -> [String] {
        var out: [String] = []
        for f in new.fields {
            guard let old = current.field(named: f.name) else { continue }
            func note(_ what: String, _ a: String?, _ b: String?) {
                if a != b { out.append("\(f.name): \(what) \(a ?? "none") → \(b ?? "none")") }
            }
            note("level", old.level.rawValue, f.level.rawValue)
            note("semantic", old.semantic?.rawValue, f.semantic?.rawValue)
            note("qi", String(old.qi), String(f.qi))
            note("action", old.action?.rawValue, f.action?.rawValue)
            note("fingerprint", old.fingerprint.map { "\($0.tolerance)" }, f.fingerprint.map { "\($0.tolerance)" })
            note("type", old.type.rawValue, f.type.rawValue)
            note("min", old.min.map { "\($0)" }, f.min.map { "\($0)" })
            note("max", old.max.map { "\($0)" }, f.max.map { "\($0)" })
        }
        if current.entity != new.entity { out.append("entity: \(current.entity ?? "none") → \(new.entity ?? "none")") }
        return out
    }

    /// Whether a policy change touches a field of level L3/L4 or a quasi-identifier (before or
    /// after): on a dataset whose rows leave the platform, a security reviewer approves it too.
    public static func touchesSensitiveFields(current: DatasetManifest, new: DatasetManifest) -> Bool {
        new.fields.contains { f in
            guard let old = current.field(named: f.name) else { return false }
            let sensitive = [Level.L3, .L4].contains(old.level) || [Level.L3, .L4].contains(f.level) || old.qi || f.qi
            return sensitive && !policyChanges(current: DatasetManifest(id: current.id, title: "", fields: [old]),
                                               new: DatasetManifest(id: current.id, title: "", fields: [f])).isEmpty
        }
    }

    /// A version to publish that a dataset lacks.
    package static func noVersion(_ id: String, _ number: Int) -> KaifangError {
        KaifangError.notFound("dataset '\(id)' has no version \(number): `kaifang dataset versions \(id)` (or GET /v1/datasets/\(id) for its department) lists them")
    }

    /// A dataset without any version, asked to publish its newest.
    package static func nothingToPublish(_ id: String) -> KaifangError {
        KaifangError.conflict("dataset '\(id)' has no version to publish: import or upload one first")
    }

    package static func datasetExists(_ id: String) -> KaifangError {
        KaifangError.conflict("dataset '\(id)' is in the catalog already: PUT its manifest to change it, or choose another id")
    }

    package static func unknownProposal(_ id: String) -> KaifangError {
        KaifangError.notFound("no proposal '\(id)': GET /v1/proposals lists those you may see")
    }

    /// Why `keyID` may not give `part` of `p`, or nil when it may (the role and department are
    /// the caller's to check).
    package static func approvalRefusal(_ p: ProposalRecord, part: ReviewPart, keyID: String) -> KaifangError? {
        guard p.status == .pending else {
            return KaifangError.conflict("proposal \(p.id) is \(p.status.rawValue) already: nothing is left to approve")
        }
        if p.proposedBy == keyID {
            return KaifangError.forbidden("you proposed \(p.id): someone else approves it (two-person rule)")
        }
        switch part {
        case .reviewer:
            if let by = p.reviewedBy { return KaifangError.conflict("proposal \(p.id) has its reviewer's approval already (key \(by))") }
        case .security:
            if !p.needsSecurity { return KaifangError.conflict("proposal \(p.id) needs no security review: it opens no L3/L4 field and overrides no gate") }
            if let by = p.securityBy { return KaifangError.conflict("proposal \(p.id) has its security approval already (key \(by))") }
        }
        if (part == .reviewer && p.securityBy == keyID) || (part == .security && p.reviewedBy == keyID) {
            return KaifangError.forbidden("you approved \(p.id) already: its two approvals come from two people")
        }
        return nil
    }

    /// Why `keyID` may not withdraw `p`, or nil when it may.
    package static func withdrawalRefusal(_ p: ProposalRecord, keyID: String) -> KaifangError? {
        guard p.proposedBy == keyID else { return KaifangError.forbidden("only its proposer withdraws \(p.id); a reviewer refuses it instead") }
        guard p.status == .pending else { return KaifangError.conflict("proposal \(p.id) is \(p.status.rawValue) already: only a pending one is withdrawn") }
        return nil
    }

    /// A refusal's or override's reason: 1–500 characters.
    package static func proposalText(_ text: String, what: String) throws -> String {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty, t.count <= 500 else { throw KaifangError.badInput("\(what) must be 1–500 characters: say why") }
        return t
    }
}
