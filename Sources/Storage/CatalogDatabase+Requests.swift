import Audit
import Foundation
import GRDB
import KaifangCore

extension CatalogDatabase {
    // MARK: - Data requests

    static func requestRecord(_ row: Row) -> DataRequestRecord {
        DataRequestRecord(id: row["id"], title: row["title"], items: CatalogRules.items(fromJSON: row["items_json"]), purpose: row["purpose"],
                          department: row["department"], status: RequestStatus(rawValue: row["status"]) ?? .open, filedBy: row["filed_by"],
                          filedAt: row["filed_at"], due: row["due"], reply: row["reply"], repliedAt: row["replied_at"], answeredAt: row["answered_at"],
                          closedAt: row["closed_at"], reason: row["reason"], dataset: row["dataset_id"], version: row["version"],
                          delivered: CatalogRules.items(fromJSON: row["delivered_json"]), votes: row["votes"], comments: row["comments"])
    }

    static func requireRequest(_ db: Database, _ id: Int64) throws -> DataRequestRecord {
        guard let row = try Row.fetchOne(db, sql: CatalogRules.requestSelect + " WHERE r.id = ?", arguments: [id]) else {
            throw CatalogRules.unknownRequest(id)
        }
        return requestRecord(row)
    }

    public func createRequest(_ r: NewDataRequest, actor: String) throws -> DataRequestRecord {
        let r = try CatalogRules.checkRequest(r)
        return try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM departments WHERE name = ?", arguments: [r.department]) == true else {
                throw CatalogRules.unknownDepartment(r.department)
            }
            try db.execute(sql: """
                INSERT INTO data_requests (title, items_json, purpose, department, status, filed_by, filed_at, due)
                VALUES (?, ?, ?, ?, 'open', ?, ?, ?)
                """, arguments: [r.title, CatalogRules.itemsJSON(r.items), r.purpose, r.department, r.filerKey, Self.now(), r.due])
            let id = db.lastInsertedRowID
            _ = try Self.appendAudit(db, actor: actor, action: "request.create", dataset: nil, detail: [
                "request": .int(id), "department": .string(r.department), "items": .int(Int64(r.items.count)), "due": .string(r.due),
            ])
            return try Self.requireRequest(db, id)
        }
    }

    public func dataRequest(_ id: Int64) throws -> DataRequestRecord? {
        try read { db in try Row.fetchOne(db, sql: CatalogRules.requestSelect + " WHERE r.id = ?", arguments: [id]).map(Self.requestRecord) }
    }

    public func dataRequests(department: String?, status: RequestStatus?) throws -> [DataRequestRecord] {
        try read { db in
            try Row.fetchAll(db, sql: CatalogRules.requestSelect + " WHERE (?1 IS NULL OR r.department = ?1) AND (?2 IS NULL OR r.status = ?2) ORDER BY r.id DESC",
                             arguments: [department, status?.rawValue]).map(Self.requestRecord)
        }
    }

    public func voteRequest(_ id: Int64, keyID: String, actor: String) throws -> DataRequestRecord {
        try write { db in
            _ = try Self.requireRequest(db, id)
            try db.execute(sql: "INSERT INTO request_votes (request_id, key_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", arguments: [id, keyID, Self.now()])
            guard db.changesCount == 1 else { throw KaifangError.conflict("your key has voted for request \(id) already: one vote per key") }
            _ = try Self.appendAudit(db, actor: actor, action: "request.vote", dataset: nil, detail: ["request": .int(id)])
            return try Self.requireRequest(db, id)
        }
    }

    public func commentRequest(_ id: Int64, keyID: String, role: Role, fromDepartment: Bool, text: String, actor: String) throws -> RequestComment {
        let text = try CatalogRules.requestText(text, what: "text")
        return try write { db in
            _ = try Self.requireRequest(db, id)
            try db.execute(sql: "INSERT INTO request_comments (request_id, key_id, role, from_department, text, at) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [id, keyID, role.rawValue, fromDepartment, text, Self.now()])
            let cid = db.lastInsertedRowID
            _ = try Self.appendAudit(db, actor: actor, action: "request.comment", dataset: nil, detail: ["request": .int(id), "comment": .int(cid)])
            return Self.commentRecord(try Row.fetchOne(db, sql: "SELECT * FROM request_comments WHERE id = ?", arguments: [cid])!)
        }
    }

    static func commentRecord(_ row: Row) -> RequestComment {
        RequestComment(id: row["id"], request: row["request_id"], keyID: row["key_id"], role: Role(rawValue: row["role"]) ?? .developer,
                       fromDepartment: row["from_department"], text: row["text"], at: row["at"])
    }

    public func requestComments(_ id: Int64) throws -> [RequestComment] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM request_comments WHERE request_id = ? ORDER BY id", arguments: [id]).map(Self.commentRecord)
        }
    }

    public func answerRequest(_ id: Int64, _ answer: RequestAnswer, keyID: String, actor: String) throws -> DataRequestRecord {
        let answer = try CatalogRules.checkAnswer(answer)
        return try write { db in
            let r = try Self.requireRequest(db, id)
            let (n, detail, dataset) = try CatalogRules.answered(r, answer, keyID: keyID, now: Self.now()) { dataset, version in
                guard let row = try Row.fetchOne(db, sql: "SELECT manifest_json, published_version FROM datasets WHERE id = ? AND tier IS NOT NULL", arguments: [dataset]) else {
                    throw CatalogRules.noPublishedDataset(dataset)
                }
                let number = try CatalogRules.fulfillingVersion(dataset, given: version, published: row["published_version"]) { n in
                    try Bool.fetchOne(db, sql: "SELECT 1 FROM versions WHERE dataset_id = ? AND number = ?", arguments: [dataset, n]) == true
                }
                return (try Self.decodeManifest(row["manifest_json"]), number)
            }
            try db.execute(sql: """
                UPDATE data_requests SET status = ?, reply = ?, replied_at = ?, answered_at = ?, closed_at = ?, reason = ?, dataset_id = ?, version = ?,
                    delivered_json = ? WHERE id = ?
                """, arguments: [n.status.rawValue, n.reply, n.repliedAt, n.answeredAt, n.closedAt, n.reason, n.dataset, n.version,
                                 n.dataset == nil ? nil : CatalogRules.itemsJSON(n.delivered), id])
            _ = try Self.appendAudit(db, actor: actor, action: "request.\(answer.action)", dataset: dataset, detail: detail)
            return try Self.requireRequest(db, id)
        }
    }
}
