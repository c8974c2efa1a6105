import Audit
import Foundation
import GRDB
import KaifangCore

/// What a caller may do with a licensed dataset.
public enum LicenseUse: String, Sendable, Codable, CaseIterable {
    /// Read rows through the licensed view.
    case rows
    /// Submit sandbox jobs only.
    case sandbox
}

/// An application for a license (有条件开放 申请).
public struct ApplicationRecord: Sendable, Equatable {
    public var id: Int64
    public var dataset: String
    public var keyID: String
    public var purpose: String
    /// Requested fields; empty means all.
    public var fields: [String]
    public var use: LicenseUse
    public var durationDays: Int
    /// pending, approved or rejected.
    public var status: String
    public var reason: String?
    public var createdAt: String
    public var decidedAt: String?
    /// The license granted, once approved.
    public var licenseID: String?

    package init(id: Int64, dataset: String, keyID: String, purpose: String, fields: [String], use: LicenseUse, durationDays: Int,
                 status: String, reason: String?, createdAt: String, decidedAt: String?, licenseID: String?) {
        self.id = id; self.dataset = dataset; self.keyID = keyID; self.purpose = purpose; self.fields = fields; self.use = use
        self.durationDays = durationDays; self.status = status; self.reason = reason; self.createdAt = createdAt
        self.decidedAt = decidedAt; self.licenseID = licenseID
    }
}

/// A license: a key may read (or run jobs over) a dataset, some fields, until it expires or is revoked.
public struct LicenseRecord: Sendable, Equatable {
    public var id: String
    public var applicationID: Int64?
    public var keyID: String
    public var dataset: String
    /// Granted fields; empty means all.
    public var fields: [String]
    public var use: LicenseUse
    public var createdAt: String
    public var expiresAt: String
    public var revokedAt: String?

    package init(id: String, applicationID: Int64?, keyID: String, dataset: String, fields: [String], use: LicenseUse,
                 createdAt: String, expiresAt: String, revokedAt: String?) {
        self.id = id; self.applicationID = applicationID; self.keyID = keyID; self.dataset = dataset; self.fields = fields
        self.use = use; self.createdAt = createdAt; self.expiresAt = expiresAt; self.revokedAt = revokedAt
    }

    /// Whether the license is in force at `now` (ISO 8601 UTC).
    public func isActive(at now: String) -> Bool { revokedAt == nil && expiresAt > now }
}

extension CatalogDatabase {
    static func fieldsJSON(_ f: [String]) -> String { CatalogRules.fieldsJSON(f) }
    static func fields(_ json: String) -> [String] { CatalogRules.fields(json) }

    static func applicationRecord(_ row: Row) -> ApplicationRecord {
        ApplicationRecord(id: row["id"], dataset: row["dataset_id"], keyID: row["key_id"], purpose: row["purpose"],
                          fields: fields(row["fields_json"]), use: LicenseUse(rawValue: row["use"]) ?? .rows,
                          durationDays: row["duration_days"], status: row["status"], reason: row["reason"],
                          createdAt: row["created_at"], decidedAt: row["decided_at"], licenseID: row["license_id"])
    }

    static func licenseRecord(_ row: Row) -> LicenseRecord {
        LicenseRecord(id: row["id"], applicationID: row["application_id"], keyID: row["key_id"], dataset: row["dataset_id"],
                      fields: fields(row["fields_json"]), use: LicenseUse(rawValue: row["use"]) ?? .rows,
                      createdAt: row["created_at"], expiresAt: row["expires_at"], revokedAt: row["revoked_at"])
    }

    static let applicationSelect = "SELECT a.*, (SELECT l.id FROM licenses l WHERE l.application_id = a.id) AS license_id FROM applications a"

    /// Records an application by a key.
    /// - Throws: `KaifangError.notFound` (dataset), `.badInput` (fields, purpose), `.conflict` (an open dataset needs none).
    public func createApplication(keyID: String, dataset: String, purpose: String, fields: [String], use: LicenseUse,
                                  durationDays: Int) throws -> ApplicationRecord {
        let trimmed = try CatalogRules.applicationPurpose(purpose, durationDays: durationDays)
        return try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT manifest_json, tier, published_version FROM datasets WHERE id = ?", arguments: [dataset]),
                  (row["tier"] as String?) != nil else {
                throw KaifangError.notFound("no published dataset '\(dataset)': GET /v1/datasets lists them")
            }
            let manifest = try Self.decodeManifest(row["manifest_json"])
            try CatalogRules.checkFields(fields, of: manifest, listing: true)
            if use == .rows && (row["tier"] as String?) == Tier.restricted.rawValue {
                throw KaifangError.badInput("'\(dataset)' is restricted (不予开放): its rows never leave; apply with use 'sandbox'")
            }
            let at = Self.now()
            try db.execute(sql: "INSERT INTO applications (dataset_id, key_id, purpose, fields_json, use, duration_days, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                           arguments: [dataset, keyID, trimmed, Self.fieldsJSON(fields), use.rawValue, durationDays, at])
            let id = db.lastInsertedRowID
            try Self.appendAudit(db, actor: "key:\(keyID)", action: "application.create", dataset: dataset, detail: [
                "application": .int(id), "use": .string(use.rawValue), "fields": .array(fields.map(JSONValue.string)), "duration_days": .int(Int64(durationDays)),
            ])
            return Self.applicationRecord(try Row.fetchOne(db, sql: Self.applicationSelect + " WHERE a.id = ?", arguments: [id])!)
        }
    }

    /// One application, or nil.
    public func application(_ id: Int64) throws -> ApplicationRecord? {
        try read { db in try Row.fetchOne(db, sql: Self.applicationSelect + " WHERE a.id = ?", arguments: [id]).map(Self.applicationRecord) }
    }

    /// Applications, newest first, optionally only one status.
    public func applications(status: String? = nil) throws -> [ApplicationRecord] {
        try read { db in
            if let status {
                return try Row.fetchAll(db, sql: Self.applicationSelect + " WHERE a.status = ? ORDER BY a.id DESC", arguments: [status]).map(Self.applicationRecord)
            }
            return try Row.fetchAll(db, sql: Self.applicationSelect + " ORDER BY a.id DESC").map(Self.applicationRecord)
        }
    }

    /// Approves a pending application and grants its license.
    /// - Parameters:
    ///   - expires: when the license ends (default: now + the requested duration).
    ///   - fields: the granted fields (default: the requested ones).
    /// - Throws: `KaifangError.notFound`, `.conflict` (already decided), `.badInput` (fields, past expiry).
    public func approve(application id: Int64, expires: Date? = nil, fields: [String]? = nil, use: LicenseUse? = nil, actor: String) throws -> LicenseRecord {
        try write { db in
            guard let row = try Row.fetchOne(db, sql: Self.applicationSelect + " WHERE a.id = ?", arguments: [id]) else {
                throw KaifangError.notFound("no application \(id): `kaifang application list` shows them")
            }
            let app = Self.applicationRecord(row)
            guard app.status == "pending" else {
                throw KaifangError.conflict("application \(id) is already \(app.status)")
            }
            let manifest = try Self.decodeManifest(try String.fetchOne(db, sql: "SELECT manifest_json FROM datasets WHERE id = ?", arguments: [app.dataset])!)
            let granted = fields ?? app.fields
            try CatalogRules.checkFields(granted, of: manifest, listing: false)
            let expiry = expires ?? Date().addingTimeInterval(Double(app.durationDays) * 86_400)
            guard expiry > Date() else { throw KaifangError.badInput("--expires is in the past: give a future date") }
            let at = Self.now()
            let licenseID = CatalogRules.newLicenseID()
            let grantedUse = use ?? app.use
            try db.execute(sql: "UPDATE applications SET status = 'approved', decided_at = ? WHERE id = ?", arguments: [at, id])
            try db.execute(sql: "INSERT INTO licenses (id, application_id, key_id, dataset_id, fields_json, use, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [licenseID, id, app.keyID, app.dataset, Self.fieldsJSON(granted), grantedUse.rawValue, at, AuditChain.timestamp(expiry)])
            try Self.appendAudit(db, actor: actor, action: "license.grant", dataset: app.dataset, detail: [
                "license": .string(licenseID), "application": .int(id), "key_id": .string(app.keyID), "use": .string(grantedUse.rawValue),
                "fields": .array(granted.map(JSONValue.string)), "expires_at": .string(AuditChain.timestamp(expiry)),
            ])
            return Self.licenseRecord(try Row.fetchOne(db, sql: "SELECT * FROM licenses WHERE id = ?", arguments: [licenseID])!)
        }
    }

    /// Rejects a pending application with a reason the applicant sees.
    /// - Throws: `KaifangError.notFound`, `.conflict`, `.badInput` (empty reason).
    public func reject(application id: Int64, reason: String, actor: String) throws {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw KaifangError.badInput("--reason must say why, for the applicant") }
        try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT status, dataset_id FROM applications WHERE id = ?", arguments: [id]) else {
                throw KaifangError.notFound("no application \(id): `kaifang application list` shows them")
            }
            guard (row["status"] as String) == "pending" else { throw KaifangError.conflict("application \(id) is already \(row["status"] as String)") }
            try db.execute(sql: "UPDATE applications SET status = 'rejected', reason = ?, decided_at = ? WHERE id = ?", arguments: [trimmed, Self.now(), id])
            try Self.appendAudit(db, actor: actor, action: "application.reject", dataset: row["dataset_id"], detail: ["application": .int(id), "reason": .string(trimmed)])
        }
    }

    /// Licenses, newest first: of one key, or all.
    public func licenses(keyID: String? = nil) throws -> [LicenseRecord] {
        try read { db in
            if let keyID {
                return try Row.fetchAll(db, sql: "SELECT * FROM licenses WHERE key_id = ? ORDER BY created_at DESC, id", arguments: [keyID]).map(Self.licenseRecord)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM licenses ORDER BY created_at DESC, id").map(Self.licenseRecord)
        }
    }

    /// One license, or nil.
    public func license(_ id: String) throws -> LicenseRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM licenses WHERE id = ?", arguments: [id]).map(Self.licenseRecord) }
    }

    /// The key's license in force for a dataset and use, if any (checked on every request, so a
    /// revocation or an expiry takes effect on the next one).
    public func activeLicense(keyID: String, dataset: String, use: LicenseUse) throws -> LicenseRecord? {
        let now = Self.now()
        // Cached until the next catalog change (an approval or revocation is one); a license
        // that has expired since it was cached is looked up again.
        let cached = try licenseCache.value("\(keyID)|\(dataset)|\(use.rawValue)", mark: changes.mark()) {
            try readActiveLicense(keyID: keyID, dataset: dataset, use: use, now: now)
        }
        if let cached, !cached.isActive(at: now) { return try readActiveLicense(keyID: keyID, dataset: dataset, use: use, now: now) }
        return cached
    }

    func readActiveLicense(keyID: String, dataset: String, use: LicenseUse, now: String) throws -> LicenseRecord? {
        try readOne { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM licenses WHERE key_id = ? AND dataset_id = ? AND use = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY expires_at DESC LIMIT 1"),
                             arguments: [keyID, dataset, use.rawValue, now]).map(Self.licenseRecord)
        }
    }

    /// Revokes a license.
    /// - Throws: `KaifangError.notFound` when there is no such active license.
    public func revokeLicense(_ id: String, actor: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE licenses SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [Self.now(), id])
            guard db.changesCount == 1 else { throw KaifangError.notFound("no active license '\(id)': `kaifang license list` shows them") }
            let dataset = try String.fetchOne(db, sql: "SELECT dataset_id FROM licenses WHERE id = ?", arguments: [id])
            try Self.appendAudit(db, actor: actor, action: "license.revoke", dataset: dataset, detail: ["license": .string(id)])
        }
    }
}
