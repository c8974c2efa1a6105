import Audit
import Foundation
import GRDB
import KaifangCore

extension CatalogDatabase {
    // MARK: - Error reports and ratings

    static func reportRecord(_ row: Row) -> ErrorReportRecord {
        ErrorReportRecord(id: row["id"], dataset: row["dataset_id"], department: row["department"], field: row["field"], version: row["version"],
                          row: row["row_ref"], text: row["text"], status: ReportStatus(rawValue: row["status"]) ?? .open, filedBy: row["filed_by"],
                          filedAt: row["filed_at"], due: row["due"], resolution: (row["resolution"] as String?).flatMap(ReportResolution.init(rawValue:)),
                          fixedVersion: row["fixed_version"], answer: row["answer"], closedAt: row["closed_at"], closedBy: row["closed_by"])
    }

    static func requireReport(_ db: Database, _ id: Int64) throws -> ErrorReportRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM error_reports WHERE id = ?", arguments: [id]) else { throw CatalogRules.unknownReport(id) }
        return reportRecord(row)
    }

    /// A published dataset's manifest and department.
    static func publishedManifest(_ db: Database, _ id: String) throws -> DatasetManifest {
        guard let row = try Row.fetchOne(db, sql: "SELECT manifest_json FROM datasets WHERE id = ? AND tier IS NOT NULL AND published_version IS NOT NULL",
                                         arguments: [id]) else {
            throw KaifangError.notFound("no published dataset '\(id)': `GET /v1/datasets` lists them")
        }
        return try decodeManifest(row["manifest_json"])
    }

    public func createReport(_ r: NewErrorReport, actor: String) throws -> ErrorReportRecord {
        try write { db in
            let manifest = try Self.publishedManifest(db, r.dataset)
            let c = try CatalogRules.checkReport(r, manifest: manifest) { v in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM versions WHERE dataset_id = ? AND number = ?", arguments: [r.dataset, v]) == true
            }
            try db.execute(sql: """
                INSERT INTO error_reports (dataset_id, department, field, version, row_ref, text, status, filed_by, filed_at, due)
                VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)
                """, arguments: [c.dataset, manifest.department, c.field, c.version, c.row, c.text, c.filerKey, Self.now(), c.due])
            let id = db.lastInsertedRowID
            var detail: [String: JSONValue] = ["report": .int(id), "due": .string(c.due)]
            if let f = c.field { detail["field"] = .string(f) }
            if let v = c.version { detail["version"] = .int(Int64(v)) }
            _ = try Self.appendAudit(db, actor: actor, action: "report.create", dataset: c.dataset, detail: detail)
            return try Self.requireReport(db, id)
        }
    }

    public func errorReport(_ id: Int64) throws -> ErrorReportRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM error_reports WHERE id = ?", arguments: [id]).map(Self.reportRecord) }
    }

    public func errorReports(dataset: String?, department: String?) throws -> [ErrorReportRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM error_reports WHERE (?1 IS NULL OR dataset_id = ?1) AND (?2 IS NULL OR department = ?2) ORDER BY id DESC",
                             arguments: [dataset, department]).map(Self.reportRecord)
        }
    }

    public func closeReport(_ id: Int64, _ closing: ReportClosing, keyID: String, actor: String) throws -> ErrorReportRecord {
        try write { db in
            let r = try Self.requireReport(db, id)
            let latest = try Int.fetchOne(db, sql: "SELECT max(number) FROM versions WHERE dataset_id = ?", arguments: [r.dataset])
            let n = try CatalogRules.closed(r, closing, keyID: keyID, actor: actor, now: Self.now(), latestVersion: latest)
            try db.execute(sql: "UPDATE error_reports SET status = ?, resolution = ?, fixed_version = ?, answer = ?, closed_at = ?, closed_by = ? WHERE id = ?",
                           arguments: [n.status.rawValue, n.resolution?.rawValue, n.fixedVersion, n.answer, n.closedAt, n.closedBy, id])
            var detail: [String: JSONValue] = ["report": .int(id)]
            if let res = n.resolution { detail["resolution"] = .string(res.rawValue) }
            if let v = n.fixedVersion { detail["fixed_version"] = .int(Int64(v)) }
            _ = try Self.appendAudit(db, actor: actor, action: n.status == .withdrawn ? "report.withdraw" : "report.close", dataset: r.dataset, detail: detail)
            return n
        }
    }

    static func ratingRecord(_ row: Row) -> RatingRecord {
        RatingRecord(dataset: row["dataset_id"], keyID: row["key_id"], stars: row["stars"], comment: row["comment"], createdAt: row["created_at"],
                     updatedAt: row["updated_at"])
    }

    public func rate(dataset: String, keyID: String, stars: Int, comment: String?, actor: String) throws -> (RatingRecord, created: Bool) {
        let comment = try CatalogRules.checkRating(stars: stars, comment: comment)
        return try write { db in
            _ = try Self.publishedManifest(db, dataset)
            let now = Self.now()
            let existed = try Bool.fetchOne(db, sql: "SELECT 1 FROM ratings WHERE dataset_id = ? AND key_id = ?", arguments: [dataset, keyID]) == true
            try db.execute(sql: """
                INSERT INTO ratings (dataset_id, key_id, stars, comment, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (dataset_id, key_id) DO UPDATE SET stars = excluded.stars, comment = excluded.comment, updated_at = excluded.updated_at
                """, arguments: [dataset, keyID, stars, comment, now, now])
            _ = try Self.appendAudit(db, actor: actor, action: existed ? "rating.change" : "rating.create", dataset: dataset, detail: ["stars": .int(Int64(stars))])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM ratings WHERE dataset_id = ? AND key_id = ?", arguments: [dataset, keyID])!
            return (Self.ratingRecord(row), !existed)
        }
    }

    public func ratings(dataset: String?) throws -> [RatingRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ratings WHERE ?1 IS NULL OR dataset_id = ?1 ORDER BY updated_at DESC, key_id", arguments: [dataset])
                .map(Self.ratingRecord)
        }
    }
}

extension CatalogDatabase {
    // MARK: - Showcases

    static func showcaseRecord(_ row: Row) -> ShowcaseRecord {
        ShowcaseRecord(id: row["id"], title: row["title"], description: row["description"], url: row["url"],
                       datasets: CatalogRules.items(fromJSON: row["datasets_json"]), licenses: CatalogRules.items(fromJSON: row["licenses_json"]),
                       status: ShowcaseStatus(rawValue: row["status"]) ?? .pending, filedBy: row["filed_by"], filedAt: row["filed_at"],
                       decidedBy: row["decided_by"], decidedAt: row["decided_at"], reason: row["reason"])
    }

    public func createShowcase(_ s: NewShowcase, actor: String) throws -> ShowcaseRecord {
        let c = try CatalogRules.checkShowcase(s)
        return try write { db in
            for d in c.datasets { _ = try Self.publishedManifest(db, d) }
            try CatalogRules.checkShowcaseLicenses(c) { id in
                try Row.fetchOne(db, sql: "SELECT * FROM licenses WHERE id = ?", arguments: [id]).map(Self.licenseRecord)
            }
            try db.execute(sql: """
                INSERT INTO showcases (title, description, url, datasets_json, licenses_json, status, filed_by, filed_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
                """, arguments: [c.title, c.description, c.url, CatalogRules.itemsJSON(c.datasets), CatalogRules.itemsJSON(c.licenses), c.filerKey, Self.now()])
            let id = db.lastInsertedRowID
            _ = try Self.appendAudit(db, actor: actor, action: "showcase.create", dataset: nil, detail: [
                "showcase": .int(id), "datasets": .array(c.datasets.map(JSONValue.string)), "licenses": .int(Int64(c.licenses.count)),
            ])
            return Self.showcaseRecord(try Row.fetchOne(db, sql: "SELECT * FROM showcases WHERE id = ?", arguments: [id])!)
        }
    }

    public func showcase(_ id: Int64) throws -> ShowcaseRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM showcases WHERE id = ?", arguments: [id]).map(Self.showcaseRecord) }
    }

    public func showcases(status: ShowcaseStatus?) throws -> [ShowcaseRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM showcases WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC", arguments: [status?.rawValue]).map(Self.showcaseRecord)
        }
    }

    public func decideShowcase(_ id: Int64, _ decision: ShowcaseDecision, keyID: String, actor: String) throws -> ShowcaseRecord {
        try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM showcases WHERE id = ?", arguments: [id]) else { throw CatalogRules.unknownShowcase(id) }
            let n = try CatalogRules.decided(Self.showcaseRecord(row), decision, keyID: keyID, actor: actor, now: Self.now())
            try db.execute(sql: "UPDATE showcases SET status = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ?",
                           arguments: [n.status.rawValue, n.decidedBy, n.decidedAt, n.reason, id])
            let action = switch n.status { case .approved: "showcase.approve"; case .refused: "showcase.refuse"; default: "showcase.withdraw" }
            _ = try Self.appendAudit(db, actor: actor, action: action, dataset: nil, detail: ["showcase": .int(id)])
            return n
        }
    }
}
