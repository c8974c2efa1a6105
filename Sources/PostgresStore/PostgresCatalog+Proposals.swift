import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

extension PostgresCatalog {
    func proposalRecord(_ r: PGRow) throws -> ProposalRecord {
        ProposalRecord(id: try r.string("id"), dataset: try r.string("dataset_id"), department: try r.string("department"),
                       kind: ProposalKind(rawValue: try r.string("kind")) ?? .publish, version: try r.int("version"),
                       tier: Tier(rawValue: try r.string("tier")) ?? .restricted,
                       manifest: try r.optString("manifest_json").flatMap { try? CatalogRules.decodeManifest($0) }, overrideReason: try r.optString("override_reason"),
                       needsSecurity: try r.bool("needs_security"), status: ProposalStatus(rawValue: try r.string("status")) ?? .pending,
                       proposedBy: try r.string("proposed_by"), proposedAt: try r.string("proposed_at"), reviewedBy: try r.optString("reviewed_by"),
                       reviewedAt: try r.optString("reviewed_at"), securityBy: try r.optString("security_by"), securityAt: try r.optString("security_at"),
                       refusedBy: try r.optString("refused_by"), refusedReason: try r.optString("refused_reason"), decidedAt: try r.optString("decided_at"))
    }

    /// The proposal, its row locked until the transaction ends.
    func lockedProposal(_ tx: PGTransaction, _ id: String) throws -> ProposalRecord {
        guard let row = try tx.query("SELECT * FROM proposals WHERE id = \(id) FOR UPDATE").first else { throw CatalogRules.unknownProposal(id) }
        return try proposalRecord(row)
    }

    public func createProposal(_ p: NewProposal, actor: String) throws -> ProposalRecord {
        let reason = try p.overrideReason.map { try CatalogRules.proposalText($0, what: "override_reason") }
        return try write { tx, chain in
            // The dataset's row is locked: two proposals for it cannot both find none pending.
            guard let row = try tx.query("SELECT department, tier, manifest_json FROM datasets WHERE id = \(p.dataset) FOR UPDATE").first else {
                throw CatalogRules.noDataset(p.dataset)
            }
            let department = try row.string("department")
            var tier = p.tier
            if let m = p.manifest {
                try CatalogRules.checkSameFields(current: try CatalogRules.decodeManifest(try row.string("manifest_json")), new: m)
                tier = try row.optString("tier").flatMap(Tier.init(rawValue:)) ?? .restricted
            }
            let manifestJSON = try p.manifest.map(CatalogRules.manifestJSON)
            let version = try versionToPublish(tx, dataset: p.dataset, p.version)
            if let pending = try tx.query("SELECT id FROM proposals WHERE dataset_id = \(p.dataset) AND status = 'pending'").first {
                throw KaifangError.conflict("dataset '\(p.dataset)' has a pending proposal already (\(try pending.string("id"))): it is approved, refused or withdrawn first")
            }
            let id = CatalogRules.newProposalID(), at = CatalogRules.now()
            try tx.query("""
                INSERT INTO proposals (id, dataset_id, department, kind, version, tier, manifest_json, override_reason, needs_security, status, proposed_by, proposed_at)
                VALUES (\(id), \(p.dataset), \(department), \(p.kind.rawValue), \(version), \(tier.rawValue), \(manifestJSON), \(reason), \(p.needsSecurity),
                        'pending', \(p.proposerKey), \(at))
                """)
            var detail: [String: JSONValue] = ["proposal": .string(id), "kind": .string(p.kind.rawValue), "version": .int(Int64(version)),
                                               "tier": .string(tier.rawValue), "needs_security": .bool(p.needsSecurity)]
            if let reason { detail["override_reason"] = .string(reason) }
            try chain.append(tx, actor: actor, action: "proposal.create", dataset: p.dataset, detail: detail)
            return try lockedProposal(tx, id)
        }
    }

    public func proposal(_ id: String) throws -> ProposalRecord? {
        try client.query("SELECT * FROM proposals WHERE id = \(id)").first.map(proposalRecord)
    }

    public func proposals(department: String?, status: ProposalStatus?) throws -> [ProposalRecord] {
        try client.query("""
            SELECT * FROM proposals WHERE (\(department)::text IS NULL OR department = \(department)) AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
            ORDER BY proposed_at DESC, id
            """).map(proposalRecord)
    }

    public func approveProposal(_ id: String, part: ReviewPart, keyID: String, actor: String, publishDetail: [String: JSONValue]) throws -> ProposalRecord {
        try write { tx, chain in
            var p = try lockedProposal(tx, id)
            if let refusal = CatalogRules.approvalRefusal(p, part: part, keyID: keyID) { throw refusal }
            let at = CatalogRules.now()
            switch part {
            case .reviewer:
                try tx.query("UPDATE proposals SET reviewed_by = \(keyID), reviewed_at = \(at) WHERE id = \(id)")
                p.reviewedBy = keyID; p.reviewedAt = at
            case .security:
                try tx.query("UPDATE proposals SET security_by = \(keyID), security_at = \(at) WHERE id = \(id)")
                p.securityBy = keyID; p.securityAt = at
            }
            try chain.append(tx, actor: actor, action: "proposal.approve", dataset: p.dataset, detail: ["proposal": .string(id), "part": .string(part.rawValue)])
            if p.awaiting.isEmpty {
                var detail = publishDetail
                detail["proposal"] = .string(id)
                if let m = p.manifest {
                    try updateManifest(tx, &chain, m, actor: actor, action: "dataset.policy", detail: detail)
                } else {
                    _ = try publish(tx, &chain, dataset: p.dataset, version: p.version, tier: p.tier, actor: actor, reason: p.overrideReason, detail: detail)
                }
                try tx.query("UPDATE proposals SET status = \(p.kind == .policy ? "applied" : "published"), decided_at = \(at) WHERE id = \(id)")
            }
            return try lockedProposal(tx, id)
        }
    }

    public func withdrawProposal(_ id: String, keyID: String, actor: String) throws -> ProposalRecord {
        try write { tx, chain in
            let p = try lockedProposal(tx, id)
            if let refusal = CatalogRules.withdrawalRefusal(p, keyID: keyID) { throw refusal }
            try tx.query("UPDATE proposals SET status = 'withdrawn', decided_at = \(CatalogRules.now()) WHERE id = \(id)")
            try chain.append(tx, actor: actor, action: "proposal.withdraw", dataset: p.dataset, detail: ["proposal": .string(id)])
            return try lockedProposal(tx, id)
        }
    }

    public func refuseProposal(_ id: String, keyID: String, reason: String, actor: String) throws -> ProposalRecord {
        let reason = try CatalogRules.proposalText(reason, what: "reason")
        return try write { tx, chain in
            let p = try lockedProposal(tx, id)
            guard p.status == .pending else {
                throw KaifangError.conflict("proposal \(id) is \(p.status.rawValue) already: only a pending one is refused")
            }
            try tx.query("UPDATE proposals SET status = 'refused', refused_by = \(keyID), refused_reason = \(reason), decided_at = \(CatalogRules.now()) WHERE id = \(id)")
            try chain.append(tx, actor: actor, action: "proposal.refuse", dataset: p.dataset, detail: ["proposal": .string(id), "reason": .string(reason)])
            return try lockedProposal(tx, id)
        }
    }
}

extension PostgresCatalog {
    func dutyRecord(_ r: PGRow) throws -> DutyRecord {
        DutyRecord(id: try r.int64("id"), department: try r.string("department"), dataset: try r.string("dataset_id"),
                   kind: DutyKind(rawValue: try r.string("kind")) ?? .open, title: try r.string("title"), due: try r.string("due"),
                   createdAt: try r.string("created_at"), createdBy: try r.string("created_by"), withdrawnAt: try r.optString("withdrawn_at"),
                   withdrawnReason: try r.optString("withdrawn_reason"), fulfilledAt: try r.optString("fulfilled_at"))
    }

    public func createDuty(department: String, dataset: String, kind: DutyKind, title: String, due: String, actor: String) throws -> DutyRecord {
        let title = try CatalogRules.checkDuty(dataset: dataset, title: title, due: due)
        return try write { tx, chain in
            guard try tx.query("SELECT 1 AS one FROM departments WHERE name = \(department)").first != nil else {
                throw CatalogRules.unknownDepartment(department)
            }
            guard let id = try tx.query("""
                INSERT INTO duties (department, dataset_id, kind, title, due, created_at, created_by)
                VALUES (\(department), \(dataset), \(kind.rawValue), \(title), \(due), \(CatalogRules.now()), \(actor)) RETURNING id
                """).first?.int64("id") else { throw KaifangError.runtime("the duty just made is missing") }
            try chain.append(tx, actor: actor, action: "duty.create", dataset: dataset, detail: [
                "duty": .int(id), "department": .string(department), "kind": .string(kind.rawValue), "due": .string(due),
            ])
            guard let row = try tx.query(PostgresQuery(unsafeSQL: CatalogRules.dutySelect + " WHERE d.id = $1", binds: bindings(id))).first else {
                throw KaifangError.runtime("the duty just made is missing")
            }
            return try dutyRecord(row)
        }
    }

    public func duties(department: String?) throws -> [DutyRecord] {
        try client.query("\(unescaped: CatalogRules.dutySelect) WHERE \(department)::text IS NULL OR d.department = \(department) ORDER BY d.department, d.dataset_id, d.id")
            .map(dutyRecord)
    }

    public func withdrawDuty(_ id: Int64, reason: String, actor: String) throws -> DutyRecord {
        let reason = try CatalogRules.proposalText(reason, what: "--reason")
        return try write { tx, chain in
            let changed = try tx.query("UPDATE duties SET withdrawn_at = \(CatalogRules.now()), withdrawn_reason = \(reason) WHERE id = \(id) AND withdrawn_at IS NULL RETURNING id")
            guard let row = try tx.query(PostgresQuery(unsafeSQL: CatalogRules.dutySelect + " WHERE d.id = $1", binds: bindings(id))).first else {
                throw KaifangError.notFound("no duty \(id): `kaifang duty list` shows them")
            }
            guard !changed.isEmpty else { throw KaifangError.conflict("duty \(id) is withdrawn already") }
            let d = try dutyRecord(row)
            try chain.append(tx, actor: actor, action: "duty.withdraw", dataset: d.dataset, detail: ["duty": .int(id), "reason": .string(reason)])
            return d
        }
    }
}
