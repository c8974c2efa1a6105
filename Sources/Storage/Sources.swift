import Audit
import Foundation
import GRDB
import KaifangCore

/// A harvested source: a URL the server fetches on an interval (docs/steward-guide.md).
public struct SourceRecord: Sendable, Equatable {
    public var dataset: String
    public var url: String
    public var intervalSeconds: Int
    /// Publish each new version at the dataset's tier.
    public var publish: Bool
    public var etag: String?
    public var lastModified: String?
    /// SHA-256 of the last fetched body.
    public var contentSHA256: String?
    public var lastCheckedAt: String?
    public var nextDueAt: String
    public var failures: Int
    public var lastError: String?

    package init(dataset: String, url: String, intervalSeconds: Int, publish: Bool, etag: String?, lastModified: String?,
                 contentSHA256: String?, lastCheckedAt: String?, nextDueAt: String, failures: Int, lastError: String?) {
        self.dataset = dataset; self.url = url; self.intervalSeconds = intervalSeconds; self.publish = publish; self.etag = etag
        self.lastModified = lastModified; self.contentSHA256 = contentSHA256; self.lastCheckedAt = lastCheckedAt
        self.nextDueAt = nextDueAt; self.failures = failures; self.lastError = lastError
    }
}

extension CatalogDatabase {
    static func sourceRecord(_ r: Row) -> SourceRecord {
        SourceRecord(dataset: r["dataset_id"], url: r["url"], intervalSeconds: r["interval_seconds"], publish: r["publish"],
                     etag: r["etag"], lastModified: r["last_modified"], contentSHA256: r["content_sha256"], lastCheckedAt: r["last_checked_at"],
                     nextDueAt: r["next_due_at"], failures: r["failures"], lastError: r["last_error"])
    }

    /// Adds or replaces the source of a dataset; it is due at once.
    /// - Throws: `KaifangError.notFound` (dataset), `.badInput` (URL, interval).
    public func addSource(dataset: String, url: String, intervalSeconds: Int, publish: Bool, actor: String) throws {
        try CatalogRules.checkSource(url: url, intervalSeconds: intervalSeconds)
        try write { db in
            guard try Row.fetchOne(db, sql: "SELECT id FROM datasets WHERE id = ?", arguments: [dataset]) != nil else {
                throw KaifangError.notFound("no dataset '\(dataset)': import a first version with --manifest, then add its source")
            }
            let at = Self.now()
            try db.execute(sql: """
                INSERT INTO sources (dataset_id, url, interval_seconds, publish, next_due_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(dataset_id) DO UPDATE SET url = excluded.url, interval_seconds = excluded.interval_seconds,
                    publish = excluded.publish, next_due_at = excluded.next_due_at, failures = 0, last_error = NULL,
                    etag = CASE WHEN sources.url = excluded.url THEN sources.etag END,
                    last_modified = CASE WHEN sources.url = excluded.url THEN sources.last_modified END
                """, arguments: [dataset, url, intervalSeconds, publish, at, at])
            try Self.appendAudit(db, actor: actor, action: "source.add", dataset: dataset, detail: [
                "url": .string(url), "interval_seconds": .int(Int64(intervalSeconds)), "publish": .bool(publish),
            ])
        }
    }

    /// One source, or nil.
    public func source(_ dataset: String) throws -> SourceRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM sources WHERE dataset_id = ?", arguments: [dataset]).map(Self.sourceRecord) }
    }

    /// Every source, or those due at `now`.
    public func sources(dueAt now: String? = nil) throws -> [SourceRecord] {
        try read { db in
            if let now {
                return try Row.fetchAll(db, sql: "SELECT * FROM sources WHERE next_due_at <= ? ORDER BY next_due_at", arguments: [now]).map(Self.sourceRecord)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM sources ORDER BY dataset_id").map(Self.sourceRecord)
        }
    }

    /// Records the outcome of a fetch: validators, content hash, next due time, failures.
    public func recordFetch(dataset: String, etag: String?, lastModified: String?, contentSHA256: String?, error: String?, nextDue: Date) throws {
        try write { db in
            if let error {
                try db.execute(sql: "UPDATE sources SET failures = failures + 1, last_error = ?, last_checked_at = ?, next_due_at = ? WHERE dataset_id = ?",
                               arguments: [error, Self.now(), AuditChain.timestamp(nextDue), dataset])
            } else {
                try db.execute(sql: """
                    UPDATE sources SET failures = 0, last_error = NULL, last_checked_at = ?, next_due_at = ?,
                        etag = coalesce(?, etag), last_modified = coalesce(?, last_modified), content_sha256 = coalesce(?, content_sha256)
                    WHERE dataset_id = ?
                    """, arguments: [Self.now(), AuditChain.timestamp(nextDue), etag, lastModified, contentSHA256, dataset])
            }
        }
    }
}
