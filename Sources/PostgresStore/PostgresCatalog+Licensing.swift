import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

extension PostgresCatalog {
    static let applicationSelect = "SELECT a.*, (SELECT l.id FROM licenses l WHERE l.application_id = a.id) AS license_id FROM applications a"

    func applicationRecord(_ r: PGRow) throws -> ApplicationRecord {
        ApplicationRecord(id: try r.int64("id"), dataset: try r.string("dataset_id"), keyID: try r.string("key_id"), purpose: try r.string("purpose"),
                          fields: CatalogRules.fields(try r.string("fields_json")), use: LicenseUse(rawValue: try r.string("use")) ?? .rows,
                          durationDays: try r.int("duration_days"), status: try r.string("status"), reason: try r.optString("reason"),
                          createdAt: try r.string("created_at"), decidedAt: try r.optString("decided_at"), licenseID: try r.optString("license_id"))
    }

    func licenseRecord(_ r: PGRow) throws -> LicenseRecord {
        LicenseRecord(id: try r.string("id"), applicationID: try r.get("application_id", as: Int64?.self), keyID: try r.string("key_id"),
                      dataset: try r.string("dataset_id"), fields: CatalogRules.fields(try r.string("fields_json")),
                      use: LicenseUse(rawValue: try r.string("use")) ?? .rows, createdAt: try r.string("created_at"),
                      expiresAt: try r.string("expires_at"), revokedAt: try r.optString("revoked_at"))
    }

    public func createApplication(keyID: String, dataset: String, purpose: String, fields: [String], use: LicenseUse,
                                  durationDays: Int) throws -> ApplicationRecord {
        let trimmed = try CatalogRules.applicationPurpose(purpose, durationDays: durationDays)
        return try write { tx, chain in
            guard let row = try tx.query("SELECT manifest_json, tier FROM datasets WHERE id = \(dataset)").first, try row.optString("tier") != nil else {
                throw KaifangError.notFound("no published dataset '\(dataset)': GET /v1/datasets lists them")
            }
            let manifest = try CatalogRules.decodeManifest(try row.string("manifest_json"))
            try CatalogRules.checkFields(fields, of: manifest, listing: true)
            let tier = try row.optString("tier")
            if use == .rows && tier == Tier.restricted.rawValue {
                throw KaifangError.badInput("'\(dataset)' is restricted (不予开放): its rows never leave; apply with use 'sandbox'")
            }
            let at = CatalogRules.now()
            guard let id = try tx.query("""
                INSERT INTO applications (dataset_id, key_id, purpose, fields_json, use, duration_days, status, created_at)
                VALUES (\(dataset), \(keyID), \(trimmed), \(CatalogRules.fieldsJSON(fields)), \(use.rawValue), \(durationDays), 'pending', \(at))
                RETURNING id
                """).first?.int64("id") else { throw KaifangError.runtime("the store did not number the application") }
            try chain.append(tx, actor: "key:\(keyID)", action: "application.create", dataset: dataset, detail: [
                "application": .int(id), "use": .string(use.rawValue), "fields": .array(fields.map(JSONValue.string)), "duration_days": .int(Int64(durationDays)),
            ])
            guard let created = try tx.query(PostgresQuery(unsafeSQL: Self.applicationSelect + " WHERE a.id = $1", binds: bindings(id))).first else {
                throw KaifangError.runtime("the application just made is missing")
            }
            return try applicationRecord(created)
        }
    }

    public func application(_ id: Int64) throws -> ApplicationRecord? {
        try client.query(PostgresQuery(unsafeSQL: Self.applicationSelect + " WHERE a.id = $1", binds: bindings(id))).first.map(applicationRecord)
    }

    public func applications(status: String?) throws -> [ApplicationRecord] {
        if let status {
            return try client.query(PostgresQuery(unsafeSQL: Self.applicationSelect + " WHERE a.status = $1 ORDER BY a.id DESC", binds: bindings(status))).map(applicationRecord)
        }
        return try client.query(PostgresQuery(unsafeSQL: Self.applicationSelect + " ORDER BY a.id DESC")).map(applicationRecord)
    }

    public func approve(application id: Int64, expires: Date?, fields: [String]?, use: LicenseUse?, actor: String) throws -> LicenseRecord {
        try write { tx, chain in
            guard let row = try tx.query(PostgresQuery(unsafeSQL: Self.applicationSelect + " WHERE a.id = $1 FOR UPDATE OF a", binds: bindings(id))).first else {
                throw KaifangError.notFound("no application \(id): `kaifang application list` shows them")
            }
            let app = try applicationRecord(row)
            guard app.status == "pending" else { throw KaifangError.conflict("application \(id) is already \(app.status)") }
            guard let m = try tx.query("SELECT manifest_json FROM datasets WHERE id = \(app.dataset)").first else { throw CatalogRules.noDataset(app.dataset) }
            let manifest = try CatalogRules.decodeManifest(try m.string("manifest_json"))
            let granted = fields ?? app.fields
            try CatalogRules.checkFields(granted, of: manifest, listing: false)
            let expiry = expires ?? Date().addingTimeInterval(Double(app.durationDays) * 86_400)
            guard expiry > Date() else { throw KaifangError.badInput("--expires is in the past: give a future date") }
            let at = CatalogRules.now()
            let licenseID = CatalogRules.newLicenseID()
            let grantedUse = use ?? app.use
            let expiresAt = AuditChain.timestamp(expiry)
            try tx.query("UPDATE applications SET status = 'approved', decided_at = \(at) WHERE id = \(id)")
            try tx.query("""
                INSERT INTO licenses (id, application_id, key_id, dataset_id, fields_json, use, created_at, expires_at)
                VALUES (\(licenseID), \(id), \(app.keyID), \(app.dataset), \(CatalogRules.fieldsJSON(granted)), \(grantedUse.rawValue), \(at), \(expiresAt))
                """)
            try chain.append(tx, actor: actor, action: "license.grant", dataset: app.dataset, detail: [
                "license": .string(licenseID), "application": .int(id), "key_id": .string(app.keyID), "use": .string(grantedUse.rawValue),
                "fields": .array(granted.map(JSONValue.string)), "expires_at": .string(expiresAt),
            ])
            return LicenseRecord(id: licenseID, applicationID: id, keyID: app.keyID, dataset: app.dataset, fields: granted, use: grantedUse,
                                 createdAt: at, expiresAt: expiresAt, revokedAt: nil)
        }
    }

    public func reject(application id: Int64, reason: String, actor: String) throws {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw KaifangError.badInput("--reason must say why, for the applicant") }
        try write { tx, chain in
            guard let row = try tx.query("SELECT status, dataset_id FROM applications WHERE id = \(id) FOR UPDATE").first else {
                throw KaifangError.notFound("no application \(id): `kaifang application list` shows them")
            }
            let status = try row.string("status")
            guard status == "pending" else { throw KaifangError.conflict("application \(id) is already \(status)") }
            try tx.query("UPDATE applications SET status = 'rejected', reason = \(trimmed), decided_at = \(CatalogRules.now()) WHERE id = \(id)")
            try chain.append(tx, actor: actor, action: "application.reject", dataset: try row.string("dataset_id"),
                             detail: ["application": .int(id), "reason": .string(trimmed)])
        }
    }

    public func licenses(keyID: String?) throws -> [LicenseRecord] {
        if let keyID {
            return try client.query("SELECT * FROM licenses WHERE key_id = \(keyID) ORDER BY created_at DESC, id").map(licenseRecord)
        }
        return try client.query("SELECT * FROM licenses ORDER BY created_at DESC, id").map(licenseRecord)
    }

    public func license(_ id: String) throws -> LicenseRecord? {
        try client.query("SELECT * FROM licenses WHERE id = \(id)").first.map(licenseRecord)
    }

    public func activeLicense(keyID: String, dataset: String, use: LicenseUse) throws -> LicenseRecord? {
        let now = CatalogRules.now()
        func readActive() throws -> LicenseRecord? {
            try client.query("""
                SELECT * FROM licenses WHERE key_id = \(keyID) AND dataset_id = \(dataset) AND use = \(use.rawValue)
                    AND revoked_at IS NULL AND expires_at > \(now) ORDER BY expires_at DESC LIMIT 1
                """).first.map(licenseRecord)
        }
        // Cached until the next change (an approval or revocation is one); a license that has
        // expired since it was cached is looked up again.
        let cached = try licenseCache.value("\(keyID)|\(dataset)|\(use.rawValue)", mark: try mark()) { try readActive() }
        if let cached, !cached.isActive(at: now) { return try readActive() }
        return cached
    }

    public func revokeLicense(_ id: String, actor: String) throws {
        try write { tx, chain in
            guard let row = try tx.query("UPDATE licenses SET revoked_at = \(CatalogRules.now()) WHERE id = \(id) AND revoked_at IS NULL RETURNING dataset_id").first else {
                throw KaifangError.notFound("no active license '\(id)': `kaifang license list` shows them")
            }
            try chain.append(tx, actor: actor, action: "license.revoke", dataset: try row.string("dataset_id"), detail: ["license": .string(id)])
        }
    }

    // MARK: - Harvested sources

    func sourceRecord(_ r: PGRow) throws -> SourceRecord {
        SourceRecord(dataset: try r.string("dataset_id"), url: try r.string("url"), intervalSeconds: try r.int("interval_seconds"),
                     publish: try r.bool("publish"), etag: try r.optString("etag"), lastModified: try r.optString("last_modified"),
                     contentSHA256: try r.optString("content_sha256"), lastCheckedAt: try r.optString("last_checked_at"),
                     nextDueAt: try r.string("next_due_at"), failures: try r.int("failures"), lastError: try r.optString("last_error"))
    }

    public func addSource(dataset: String, url: String, intervalSeconds: Int, publish: Bool, actor: String) throws {
        try CatalogRules.checkSource(url: url, intervalSeconds: intervalSeconds)
        try write { tx, chain in
            guard try tx.query("SELECT id FROM datasets WHERE id = \(dataset)").first != nil else {
                throw KaifangError.notFound("no dataset '\(dataset)': import a first version with --manifest, then add its source")
            }
            let at = CatalogRules.now()
            try tx.query("""
                INSERT INTO sources (dataset_id, url, interval_seconds, publish, next_due_at, created_at) VALUES (\(dataset), \(url), \(intervalSeconds), \(publish), \(at), \(at))
                ON CONFLICT (dataset_id) DO UPDATE SET url = excluded.url, interval_seconds = excluded.interval_seconds,
                    publish = excluded.publish, next_due_at = excluded.next_due_at, failures = 0, last_error = NULL,
                    etag = CASE WHEN sources.url = excluded.url THEN sources.etag END,
                    last_modified = CASE WHEN sources.url = excluded.url THEN sources.last_modified END
                """)
            try chain.append(tx, actor: actor, action: "source.add", dataset: dataset, detail: [
                "url": .string(url), "interval_seconds": .int(Int64(intervalSeconds)), "publish": .bool(publish),
            ])
        }
    }

    public func source(_ dataset: String) throws -> SourceRecord? {
        try client.query("SELECT * FROM sources WHERE dataset_id = \(dataset)").first.map(sourceRecord)
    }

    public func sources(dueAt now: String?) throws -> [SourceRecord] {
        if let now {
            return try client.query("SELECT * FROM sources WHERE next_due_at <= \(now) ORDER BY next_due_at").map(sourceRecord)
        }
        return try client.query("SELECT * FROM sources ORDER BY dataset_id").map(sourceRecord)
    }

    public func recordFetch(dataset: String, etag: String?, lastModified: String?, contentSHA256: String?, error: String?, nextDue: Date) throws {
        let now = CatalogRules.now(), due = AuditChain.timestamp(nextDue)
        if let error {
            try client.query("UPDATE sources SET failures = failures + 1, last_error = \(error), last_checked_at = \(now), next_due_at = \(due) WHERE dataset_id = \(dataset)")
        } else {
            try client.query("""
                UPDATE sources SET failures = 0, last_error = NULL, last_checked_at = \(now), next_due_at = \(due),
                    etag = coalesce(\(etag), etag), last_modified = coalesce(\(lastModified), last_modified), content_sha256 = coalesce(\(contentSHA256), content_sha256)
                WHERE dataset_id = \(dataset)
                """)
        }
    }
}

/// Bindings of the given values, in order.
func bindings(_ values: any PostgresDynamicTypeEncodable...) -> PostgresBindings {
    var b = PostgresBindings()
    for v in values { b.append(v) }
    return b
}
