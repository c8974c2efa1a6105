import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

extension PostgresCatalog {
    func requestRecord(_ r: PGRow) throws -> DataRequestRecord {
        DataRequestRecord(id: try r.int64("id"), title: try r.string("title"), items: CatalogRules.items(fromJSON: try r.string("items_json")),
                          purpose: try r.string("purpose"), department: try r.string("department"),
                          status: RequestStatus(rawValue: try r.string("status")) ?? .open, filedBy: try r.string("filed_by"),
                          filedAt: try r.string("filed_at"), due: try r.string("due"), reply: try r.optString("reply"),
                          repliedAt: try r.optString("replied_at"), answeredAt: try r.optString("answered_at"), closedAt: try r.optString("closed_at"),
                          reason: try r.optString("reason"), dataset: try r.optString("dataset_id"), version: try r.optInt("version"),
                          delivered: CatalogRules.items(fromJSON: try r.optString("delivered_json")), votes: Int(try r.int64("votes")),
                          comments: Int(try r.int64("comments")))
    }

    func commentRecord(_ r: PGRow) throws -> RequestComment {
        RequestComment(id: try r.int64("id"), request: try r.int64("request_id"), keyID: try r.string("key_id"),
                       role: Role(rawValue: try r.string("role")) ?? .developer, fromDepartment: try r.bool("from_department"),
                       text: try r.string("text"), at: try r.string("at"))
    }

    /// The request, read inside `tx`; with `lock`, its row is locked until the transaction ends.
    func requireRequest(_ tx: PGTransaction, _ id: Int64, lock: Bool = false) throws -> DataRequestRecord {
        if lock {
            guard try tx.query("SELECT id FROM data_requests WHERE id = \(id) FOR UPDATE").first != nil else { throw CatalogRules.unknownRequest(id) }
        }
        guard let row = try tx.query(PostgresQuery(unsafeSQL: CatalogRules.requestSelect + " WHERE r.id = $1", binds: bindings(id))).first else {
            throw CatalogRules.unknownRequest(id)
        }
        return try requestRecord(row)
    }

    public func createRequest(_ r: NewDataRequest, actor: String) throws -> DataRequestRecord {
        let r = try CatalogRules.checkRequest(r)
        return try write { tx, chain in
            guard try tx.query("SELECT 1 AS one FROM departments WHERE name = \(r.department)").first != nil else {
                throw CatalogRules.unknownDepartment(r.department)
            }
            guard let id = try tx.query("""
                INSERT INTO data_requests (title, items_json, purpose, department, status, filed_by, filed_at, due)
                VALUES (\(r.title), \(CatalogRules.itemsJSON(r.items)), \(r.purpose), \(r.department), 'open', \(r.filerKey), \(CatalogRules.now()), \(r.due))
                RETURNING id
                """).first?.int64("id") else { throw KaifangError.runtime("the request just filed is missing") }
            try chain.append(tx, actor: actor, action: "request.create", dataset: nil, detail: [
                "request": .int(id), "department": .string(r.department), "items": .int(Int64(r.items.count)), "due": .string(r.due),
            ])
            return try requireRequest(tx, id)
        }
    }

    public func dataRequest(_ id: Int64) throws -> DataRequestRecord? {
        try client.query(PostgresQuery(unsafeSQL: CatalogRules.requestSelect + " WHERE r.id = $1", binds: bindings(id))).first.map(requestRecord)
    }

    public func dataRequests(department: String?, status: RequestStatus?) throws -> [DataRequestRecord] {
        let s = status?.rawValue
        return try client.query("""
            \(unescaped: CatalogRules.requestSelect) WHERE (\(department)::text IS NULL OR r.department = \(department))
            AND (\(s)::text IS NULL OR r.status = \(s)) ORDER BY r.id DESC
            """).map(requestRecord)
    }

    public func voteRequest(_ id: Int64, keyID: String, actor: String) throws -> DataRequestRecord {
        try write { tx, chain in
            _ = try requireRequest(tx, id)
            let inserted = try tx.query("INSERT INTO request_votes (request_id, key_id, at) VALUES (\(id), \(keyID), \(CatalogRules.now())) ON CONFLICT DO NOTHING RETURNING key_id")
            guard !inserted.isEmpty else { throw KaifangError.conflict("your key has voted for request \(id) already: one vote per key") }
            try chain.append(tx, actor: actor, action: "request.vote", dataset: nil, detail: ["request": .int(id)])
            return try requireRequest(tx, id)
        }
    }

    public func commentRequest(_ id: Int64, keyID: String, role: Role, fromDepartment: Bool, text: String, actor: String) throws -> RequestComment {
        let text = try CatalogRules.requestText(text, what: "text")
        return try write { tx, chain in
            _ = try requireRequest(tx, id)
            guard let row = try tx.query("""
                INSERT INTO request_comments (request_id, key_id, role, from_department, text, at)
                VALUES (\(id), \(keyID), \(role.rawValue), \(fromDepartment), \(text), \(CatalogRules.now())) RETURNING *
                """).first else { throw KaifangError.runtime("the comment just made is missing") }
            let c = try commentRecord(row)
            try chain.append(tx, actor: actor, action: "request.comment", dataset: nil, detail: ["request": .int(id), "comment": .int(c.id)])
            return c
        }
    }

    public func requestComments(_ id: Int64) throws -> [RequestComment] {
        try client.query("SELECT * FROM request_comments WHERE request_id = \(id) ORDER BY id").map(commentRecord)
    }

    public func answerRequest(_ id: Int64, _ answer: RequestAnswer, keyID: String, actor: String) throws -> DataRequestRecord {
        let answer = try CatalogRules.checkAnswer(answer)
        return try write { tx, chain in
            let r = try requireRequest(tx, id, lock: true)
            let (n, detail, dataset) = try CatalogRules.answered(r, answer, keyID: keyID, now: CatalogRules.now()) { dataset, version in
                // The dataset's row is locked: its publication cannot change under the fulfilment.
                guard let row = try tx.query("SELECT manifest_json, published_version FROM datasets WHERE id = \(dataset) AND tier IS NOT NULL FOR UPDATE").first else {
                    throw CatalogRules.noPublishedDataset(dataset)
                }
                let number = try CatalogRules.fulfillingVersion(dataset, given: version, published: try row.optInt("published_version")) { n in
                    try tx.query("SELECT 1 AS one FROM versions WHERE dataset_id = \(dataset) AND number = \(n)").first != nil
                }
                return (try CatalogRules.decodeManifest(try row.string("manifest_json")), number)
            }
            let delivered = n.dataset == nil ? nil : CatalogRules.itemsJSON(n.delivered)
            try tx.query("""
                UPDATE data_requests SET status = \(n.status.rawValue), reply = \(n.reply), replied_at = \(n.repliedAt), answered_at = \(n.answeredAt),
                    closed_at = \(n.closedAt), reason = \(n.reason), dataset_id = \(n.dataset), version = \(n.version), delivered_json = \(delivered)
                WHERE id = \(id)
                """)
            try chain.append(tx, actor: actor, action: "request.\(answer.action)", dataset: dataset, detail: detail)
            return try requireRequest(tx, id)
        }
    }
}
