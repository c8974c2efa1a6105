import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

extension PostgresCatalog {
    func reportRecord(_ r: PGRow) throws -> ErrorReportRecord {
        ErrorReportRecord(id: try r.int64("id"), dataset: try r.string("dataset_id"), department: try r.string("department"), field: try r.optString("field"),
                          version: try r.optInt("version"), row: try r.optString("row_ref"), text: try r.string("text"),
                          status: ReportStatus(rawValue: try r.string("status")) ?? .open, filedBy: try r.string("filed_by"), filedAt: try r.string("filed_at"),
                          due: try r.string("due"), resolution: try r.optString("resolution").flatMap(ReportResolution.init(rawValue:)),
                          fixedVersion: try r.optInt("fixed_version"), answer: try r.optString("answer"), closedAt: try r.optString("closed_at"),
                          closedBy: try r.optString("closed_by"))
    }

    func ratingRecord(_ r: PGRow) throws -> RatingRecord {
        RatingRecord(dataset: try r.string("dataset_id"), keyID: try r.string("key_id"), stars: try r.int("stars"), comment: try r.optString("comment"),
                     createdAt: try r.string("created_at"), updatedAt: try r.string("updated_at"))
    }

    /// A published dataset's manifest; its row is locked until the transaction ends.
    func publishedManifest(_ tx: PGTransaction, _ id: String) throws -> DatasetManifest {
        guard let row = try tx.query("SELECT manifest_json FROM datasets WHERE id = \(id) AND tier IS NOT NULL AND published_version IS NOT NULL FOR SHARE").first else {
            throw KaifangError.notFound("no published dataset '\(id)': `GET /v1/datasets` lists them")
        }
        return try CatalogRules.decodeManifest(try row.string("manifest_json"))
    }

    public func createReport(_ r: NewErrorReport, actor: String) throws -> ErrorReportRecord {
        try write { tx, chain in
            let manifest = try publishedManifest(tx, r.dataset)
            let c = try CatalogRules.checkReport(r, manifest: manifest) { v in
                try tx.query("SELECT 1 AS one FROM versions WHERE dataset_id = \(r.dataset) AND number = \(v)").first != nil
            }
            guard let row = try tx.query("""
                INSERT INTO error_reports (dataset_id, department, field, version, row_ref, text, status, filed_by, filed_at, due)
                VALUES (\(c.dataset), \(manifest.department), \(c.field), \(c.version), \(c.row), \(c.text), 'open', \(c.filerKey), \(CatalogRules.now()), \(c.due))
                RETURNING *
                """).first else { throw KaifangError.runtime("the report just filed is missing") }
            let made = try reportRecord(row)
            var detail: [String: JSONValue] = ["report": .int(made.id), "due": .string(c.due)]
            if let f = c.field { detail["field"] = .string(f) }
            if let v = c.version { detail["version"] = .int(Int64(v)) }
            try chain.append(tx, actor: actor, action: "report.create", dataset: c.dataset, detail: detail)
            return made
        }
    }

    public func errorReport(_ id: Int64) throws -> ErrorReportRecord? {
        try client.query("SELECT * FROM error_reports WHERE id = \(id)").first.map(reportRecord)
    }

    public func errorReports(dataset: String?, department: String?) throws -> [ErrorReportRecord] {
        try client.query("""
            SELECT * FROM error_reports WHERE (\(dataset)::text IS NULL OR dataset_id = \(dataset)) AND (\(department)::text IS NULL OR department = \(department))
            ORDER BY id DESC
            """).map(reportRecord)
    }

    public func closeReport(_ id: Int64, _ closing: ReportClosing, keyID: String, actor: String) throws -> ErrorReportRecord {
        try write { tx, chain in
            guard let row = try tx.query("SELECT * FROM error_reports WHERE id = \(id) FOR UPDATE").first else { throw CatalogRules.unknownReport(id) }
            let r = try reportRecord(row)
            let latest = try tx.query("SELECT max(number) AS n FROM versions WHERE dataset_id = \(r.dataset)").first?.optInt("n")
            let n = try CatalogRules.closed(r, closing, keyID: keyID, actor: actor, now: CatalogRules.now(), latestVersion: latest)
            try tx.query("""
                UPDATE error_reports SET status = \(n.status.rawValue), resolution = \(n.resolution?.rawValue), fixed_version = \(n.fixedVersion),
                    answer = \(n.answer), closed_at = \(n.closedAt), closed_by = \(n.closedBy) WHERE id = \(id)
                """)
            var detail: [String: JSONValue] = ["report": .int(id)]
            if let res = n.resolution { detail["resolution"] = .string(res.rawValue) }
            if let v = n.fixedVersion { detail["fixed_version"] = .int(Int64(v)) }
            try chain.append(tx, actor: actor, action: n.status == .withdrawn ? "report.withdraw" : "report.close", dataset: r.dataset, detail: detail)
            return n
        }
    }

    public func rate(dataset: String, keyID: String, stars: Int, comment: String?, actor: String) throws -> (RatingRecord, created: Bool) {
        let comment = try CatalogRules.checkRating(stars: stars, comment: comment)
        return try write { tx, chain in
            _ = try publishedManifest(tx, dataset)
            let now = CatalogRules.now()
            // xmax = 0 only for a row this statement inserted.
            guard let row = try tx.query("""
                INSERT INTO ratings (dataset_id, key_id, stars, comment, created_at, updated_at) VALUES (\(dataset), \(keyID), \(stars), \(comment), \(now), \(now))
                ON CONFLICT (dataset_id, key_id) DO UPDATE SET stars = excluded.stars, comment = excluded.comment, updated_at = excluded.updated_at
                RETURNING *, (xmax = 0) AS inserted
                """).first else { throw KaifangError.runtime("the rating just made is missing") }
            let created = try row.bool("inserted")
            try chain.append(tx, actor: actor, action: created ? "rating.create" : "rating.change", dataset: dataset, detail: ["stars": .int(Int64(stars))])
            return (try ratingRecord(row), created)
        }
    }

    public func ratings(dataset: String?) throws -> [RatingRecord] {
        try client.query("SELECT * FROM ratings WHERE \(dataset)::text IS NULL OR dataset_id = \(dataset) ORDER BY updated_at DESC, key_id").map(ratingRecord)
    }
}

extension PostgresCatalog {
    func showcaseRecord(_ r: PGRow) throws -> ShowcaseRecord {
        ShowcaseRecord(id: try r.int64("id"), title: try r.string("title"), description: try r.string("description"), url: try r.optString("url"),
                       datasets: CatalogRules.items(fromJSON: try r.string("datasets_json")), licenses: CatalogRules.items(fromJSON: try r.string("licenses_json")),
                       status: ShowcaseStatus(rawValue: try r.string("status")) ?? .pending, filedBy: try r.string("filed_by"), filedAt: try r.string("filed_at"),
                       decidedBy: try r.optString("decided_by"), decidedAt: try r.optString("decided_at"), reason: try r.optString("reason"))
    }

    public func createShowcase(_ s: NewShowcase, actor: String) throws -> ShowcaseRecord {
        let c = try CatalogRules.checkShowcase(s)
        return try write { tx, chain in
            for d in c.datasets { _ = try publishedManifest(tx, d) }
            try CatalogRules.checkShowcaseLicenses(c) { id in try tx.query("SELECT * FROM licenses WHERE id = \(id)").first.map(licenseRecord) }
            guard let row = try tx.query("""
                INSERT INTO showcases (title, description, url, datasets_json, licenses_json, status, filed_by, filed_at)
                VALUES (\(c.title), \(c.description), \(c.url), \(CatalogRules.itemsJSON(c.datasets)), \(CatalogRules.itemsJSON(c.licenses)), 'pending',
                        \(c.filerKey), \(CatalogRules.now())) RETURNING *
                """).first else { throw KaifangError.runtime("the showcase just registered is missing") }
            let made = try showcaseRecord(row)
            try chain.append(tx, actor: actor, action: "showcase.create", dataset: nil, detail: [
                "showcase": .int(made.id), "datasets": .array(c.datasets.map(JSONValue.string)), "licenses": .int(Int64(c.licenses.count)),
            ])
            return made
        }
    }

    public func showcase(_ id: Int64) throws -> ShowcaseRecord? {
        try client.query("SELECT * FROM showcases WHERE id = \(id)").first.map(showcaseRecord)
    }

    public func showcases(status: ShowcaseStatus?) throws -> [ShowcaseRecord] {
        let s = status?.rawValue
        return try client.query("SELECT * FROM showcases WHERE \(s)::text IS NULL OR status = \(s) ORDER BY id DESC").map(showcaseRecord)
    }

    public func decideShowcase(_ id: Int64, _ decision: ShowcaseDecision, keyID: String, actor: String) throws -> ShowcaseRecord {
        try write { tx, chain in
            guard let row = try tx.query("SELECT * FROM showcases WHERE id = \(id) FOR UPDATE").first else { throw CatalogRules.unknownShowcase(id) }
            let n = try CatalogRules.decided(try showcaseRecord(row), decision, keyID: keyID, actor: actor, now: CatalogRules.now())
            try tx.query("UPDATE showcases SET status = \(n.status.rawValue), decided_by = \(n.decidedBy), decided_at = \(n.decidedAt), reason = \(n.reason) WHERE id = \(id)")
            let action = switch n.status { case .approved: "showcase.approve"; case .refused: "showcase.refuse"; default: "showcase.withdraw" }
            try chain.append(tx, actor: actor, action: action, dataset: nil, detail: ["showcase": .int(id)])
            return n
        }
    }
}
