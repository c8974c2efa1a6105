import Audit
import Foundation
import GRDB
import KaifangCore

extension CatalogDatabase {
    // MARK: - Proposals

    static func proposalRecord(_ row: Row) -> ProposalRecord {
        ProposalRecord(id: row["id"], dataset: row["dataset_id"], department: row["department"],
                       kind: ProposalKind(rawValue: row["kind"]) ?? .publish, version: row["version"],
                       tier: Tier(rawValue: row["tier"]) ?? .restricted,
                       manifest: (row["manifest_json"] as String?).flatMap { try? CatalogRules.decodeManifest($0) }, overrideReason: row["override_reason"],
                       needsSecurity: row["needs_security"], status: ProposalStatus(rawValue: row["status"]) ?? .pending,
                       proposedBy: row["proposed_by"], proposedAt: row["proposed_at"], reviewedBy: row["reviewed_by"],
                       reviewedAt: row["reviewed_at"], securityBy: row["security_by"], securityAt: row["security_at"],
                       refusedBy: row["refused_by"], refusedReason: row["refused_reason"], decidedAt: row["decided_at"])
    }

    static func requireProposal(_ db: Database, _ id: String) throws -> ProposalRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM proposals WHERE id = ?", arguments: [id]) else {
            throw CatalogRules.unknownProposal(id)
        }
        return proposalRecord(row)
    }

    public func createProposal(_ p: NewProposal, actor: String) throws -> ProposalRecord {
        let reason = try p.overrideReason.map { try CatalogRules.proposalText($0, what: "override_reason") }
        return try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT department, tier, manifest_json FROM datasets WHERE id = ?", arguments: [p.dataset]) else {
                throw CatalogRules.noDataset(p.dataset)
            }
            let department: String = row["department"]
            var tier = p.tier
            if let m = p.manifest {
                try CatalogRules.checkSameFields(current: try Self.decodeManifest(row["manifest_json"]), new: m)
                tier = (row["tier"] as String?).flatMap(Tier.init(rawValue:)) ?? .restricted
            }
            let version = try Self.versionToPublish(db, dataset: p.dataset, p.version)
            if let pending = try String.fetchOne(db, sql: "SELECT id FROM proposals WHERE dataset_id = ? AND status = 'pending'", arguments: [p.dataset]) {
                throw KaifangError.conflict("dataset '\(p.dataset)' has a pending proposal already (\(pending)): it is approved, refused or withdrawn first")
            }
            let id = CatalogRules.newProposalID(), at = Self.now()
            try db.execute(sql: """
                INSERT INTO proposals (id, dataset_id, department, kind, version, tier, manifest_json, override_reason, needs_security, status, proposed_by, proposed_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)
                """, arguments: [id, p.dataset, department, p.kind.rawValue, version, tier.rawValue, try p.manifest.map(Self.manifestJSON), reason,
                                 p.needsSecurity, p.proposerKey, at])
            var detail: [String: JSONValue] = ["proposal": .string(id), "kind": .string(p.kind.rawValue), "version": .int(Int64(version)),
                                               "tier": .string(tier.rawValue), "needs_security": .bool(p.needsSecurity)]
            if let reason { detail["override_reason"] = .string(reason) }
            _ = try Self.appendAudit(db, actor: actor, action: "proposal.create", dataset: p.dataset, detail: detail)
            return try Self.requireProposal(db, id)
        }
    }

    public func proposal(_ id: String) throws -> ProposalRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM proposals WHERE id = ?", arguments: [id]).map(Self.proposalRecord) }
    }

    public func proposals(department: String?, status: ProposalStatus?) throws -> [ProposalRecord] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM proposals WHERE (?1 IS NULL OR department = ?1) AND (?2 IS NULL OR status = ?2)
                ORDER BY proposed_at DESC, id
                """, arguments: [department, status?.rawValue]).map(Self.proposalRecord)
        }
    }

    public func approveProposal(_ id: String, part: ReviewPart, keyID: String, actor: String, publishDetail: [String: JSONValue]) throws -> ProposalRecord {
        try write { db in
            var p = try Self.requireProposal(db, id)
            if let refusal = CatalogRules.approvalRefusal(p, part: part, keyID: keyID) { throw refusal }
            let at = Self.now()
            switch part {
            case .reviewer:
                try db.execute(sql: "UPDATE proposals SET reviewed_by = ?, reviewed_at = ? WHERE id = ?", arguments: [keyID, at, id])
                p.reviewedBy = keyID; p.reviewedAt = at
            case .security:
                try db.execute(sql: "UPDATE proposals SET security_by = ?, security_at = ? WHERE id = ?", arguments: [keyID, at, id])
                p.securityBy = keyID; p.securityAt = at
            }
            _ = try Self.appendAudit(db, actor: actor, action: "proposal.approve", dataset: p.dataset,
                                     detail: ["proposal": .string(id), "part": .string(part.rawValue)])
            if p.awaiting.isEmpty {
                var detail = publishDetail
                detail["proposal"] = .string(id)
                if let m = p.manifest {
                    try Self.updateManifest(db, m, actor: actor, action: "dataset.policy", detail: detail)
                } else {
                    _ = try Self.publish(db, dataset: p.dataset, version: p.version, tier: p.tier, actor: actor, reason: p.overrideReason, detail: detail)
                }
                try db.execute(sql: "UPDATE proposals SET status = ?, decided_at = ? WHERE id = ?",
                               arguments: [p.kind == .policy ? "applied" : "published", at, id])
            }
            return try Self.requireProposal(db, id)
        }
    }

    public func withdrawProposal(_ id: String, keyID: String, actor: String) throws -> ProposalRecord {
        try write { db in
            let p = try Self.requireProposal(db, id)
            if let refusal = CatalogRules.withdrawalRefusal(p, keyID: keyID) { throw refusal }
            try db.execute(sql: "UPDATE proposals SET status = 'withdrawn', decided_at = ? WHERE id = ?", arguments: [Self.now(), id])
            _ = try Self.appendAudit(db, actor: actor, action: "proposal.withdraw", dataset: p.dataset, detail: ["proposal": .string(id)])
            return try Self.requireProposal(db, id)
        }
    }

    public func refuseProposal(_ id: String, keyID: String, reason: String, actor: String) throws -> ProposalRecord {
        let reason = try CatalogRules.proposalText(reason, what: "reason")
        return try write { db in
            let p = try Self.requireProposal(db, id)
            guard p.status == .pending else {
                throw KaifangError.conflict("proposal \(id) is \(p.status.rawValue) already: only a pending one is refused")
            }
            try db.execute(sql: "UPDATE proposals SET status = 'refused', refused_by = ?, refused_reason = ?, decided_at = ? WHERE id = ?",
                           arguments: [keyID, reason, Self.now(), id])
            _ = try Self.appendAudit(db, actor: actor, action: "proposal.refuse", dataset: p.dataset,
                                     detail: ["proposal": .string(id), "reason": .string(reason)])
            return try Self.requireProposal(db, id)
        }
    }
}

extension CatalogDatabase {
    // MARK: - Duty lists

    static func dutyRecord(_ row: Row) -> DutyRecord {
        DutyRecord(id: row["id"], department: row["department"], dataset: row["dataset_id"], kind: DutyKind(rawValue: row["kind"]) ?? .open,
                   title: row["title"], due: row["due"], createdAt: row["created_at"], createdBy: row["created_by"],
                   withdrawnAt: row["withdrawn_at"], withdrawnReason: row["withdrawn_reason"], fulfilledAt: row["fulfilled_at"])
    }

    public func createDuty(department: String, dataset: String, kind: DutyKind, title: String, due: String, actor: String) throws -> DutyRecord {
        let title = try CatalogRules.checkDuty(dataset: dataset, title: title, due: due)
        return try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM departments WHERE name = ?", arguments: [department]) == true else {
                throw CatalogRules.unknownDepartment(department)
            }
            try db.execute(sql: "INSERT INTO duties (department, dataset_id, kind, title, due, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [department, dataset, kind.rawValue, title, due, Self.now(), actor])
            let id = db.lastInsertedRowID
            _ = try Self.appendAudit(db, actor: actor, action: "duty.create", dataset: dataset, detail: [
                "duty": .int(id), "department": .string(department), "kind": .string(kind.rawValue), "due": .string(due),
            ])
            return Self.dutyRecord(try Row.fetchOne(db, sql: CatalogRules.dutySelect + " WHERE d.id = ?", arguments: [id])!)
        }
    }

    public func duties(department: String?) throws -> [DutyRecord] {
        try read { db in
            try Row.fetchAll(db, sql: CatalogRules.dutySelect + " WHERE ?1 IS NULL OR d.department = ?1 ORDER BY d.department, d.dataset_id, d.id",
                             arguments: [department]).map(Self.dutyRecord)
        }
    }

    public func withdrawDuty(_ id: Int64, reason: String, actor: String) throws -> DutyRecord {
        let reason = try CatalogRules.proposalText(reason, what: "--reason")
        return try write { db in
            try db.execute(sql: "UPDATE duties SET withdrawn_at = ?, withdrawn_reason = ? WHERE id = ? AND withdrawn_at IS NULL", arguments: [Self.now(), reason, id])
            let changed = db.changesCount
            guard let row = try Row.fetchOne(db, sql: CatalogRules.dutySelect + " WHERE d.id = ?", arguments: [id]) else {
                throw KaifangError.notFound("no duty \(id): `kaifang duty list` shows them")
            }
            guard changed == 1 else { throw KaifangError.conflict("duty \(id) is withdrawn already") }
            let d = Self.dutyRecord(row)
            _ = try Self.appendAudit(db, actor: actor, action: "duty.withdraw", dataset: d.dataset, detail: ["duty": .int(id), "reason": .string(reason)])
            return d
        }
    }
}
