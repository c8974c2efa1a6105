import Audit
import Foundation
import GRDB
import KaifangCore
import PostgresNIO
import Storage

/// `kaifang store copy --to postgres://…`: moves an embedded data directory into an empty
/// shared store — catalog, keys, licenses, jobs and their files, version files, the platform
/// secret (so pseudonyms stay the same) and the audit chain event for event.
public enum StoreCopy {
    /// What was copied.
    public struct Report: Sendable {
        public var datasets = 0, versions = 0, accounts = 0, keys = 0, applications = 0, licenses = 0, jobs = 0, events = 0
        public var head: String = AuditChain.genesis
    }

    /// Copies `source` into `target`, which must hold no catalog data. The catalog rows go in one
    /// transaction (a failure leaves the target as empty as it was); version files go first,
    /// under their hashes. The target's chain is verified after, and must end where the source's does.
    /// - Throws: `KaifangError.badInput` for a broken source chain or a non-empty target; `.runtime` otherwise.
    public static func copy(from source: CatalogDatabase, to target: PostgresCatalog) throws -> Report {
        guard case .intact(_, let sourceHead) = try source.verifyAudit(anchors: []) else {
            throw KaifangError.badInput("the source's audit chain does not verify (`kaifang audit verify`): it is not copied")
        }
        let counts = try target.client.query("""
            SELECT (SELECT count(*) FROM datasets) + (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM accounts) + (SELECT count(*) FROM audit_events)
                + (SELECT count(*) FROM jobs) AS n
            """)
        guard try counts.first?.int("n") == 0 else {
            throw KaifangError.badInput("the target store \(target.url.redacted) is not empty: copy into a new database or schema (`kaifang init --store …`)")
        }
        var report = Report()
        // Version files first: content-addressed, so a failed copy leaves only unreferenced files.
        var fileOf: [String: String] = [:]
        let versions = try source.writer.read { db in try Row.fetchAll(db, sql: "SELECT dataset_id, number, file FROM versions") }
        for v in versions {
            let relative: String = v["file"]
            let sha = try target.blobs.store(path: source.directory.absolute(relative), client: target.client)
            fileOf["\(v["dataset_id"] as String)@\(v["number"] as Int)"] = sha
        }
        let secret = try Data(contentsOf: URL(fileURLWithPath: source.directory.secretPath))
        try target.client.transaction { tx in
            // The chain's head row, locked for the copy and moved to the source's head after it.
            _ = try ChainCursor(tx)
            try tx.query("UPDATE platform SET value = \(secret) WHERE name = 'secret'")
            try source.writer.read { db in
                func rows(_ sql: String) throws -> [Row] { try Row.fetchAll(db, sql: sql) }
                for r in try rows("SELECT * FROM datasets ORDER BY id") {
                    let m = try CatalogRules.decodeManifest(r["manifest_json"])
                    try tx.query("""
                        INSERT INTO datasets (id, title, description, department, topic, update_frequency, license, should_open, entity, manifest_json,
                            tier, published_version, created_at, updated_at, search_text)
                        VALUES (\(m.id), \(m.title), \(m.description), \(m.department), \(m.topic), \(m.updateFrequency), \(m.license), \(m.shouldOpen),
                            \(m.entity), \(r["manifest_json"] as String), \(r["tier"] as String?), \(r["published_version"] as Int?),
                            \(r["created_at"] as String), \(r["updated_at"] as String), \(CatalogRules.searchText(m).lowercased()))
                        """)
                    for (i, f) in m.fields.enumerated() {
                        try tx.query("""
                            INSERT INTO fields (dataset_id, position, name, title, type, semantic, level, qi, min, max, action)
                            VALUES (\(m.id), \(i), \(f.name), \(f.title), \(f.type.rawValue), \(f.semantic?.rawValue), \(f.level.rawValue), \(f.qi), \(f.min), \(f.max), \(f.action?.rawValue))
                            """)
                    }
                    for g in CatalogRules.divisionRows(m) {
                        try tx.query("INSERT INTO dataset_divisions (dataset_id, code, city, county) VALUES (\(m.id), \(g.code), \(g.city), \(g.county))")
                    }
                    report.datasets += 1
                }
                for r in try rows("SELECT * FROM versions ORDER BY dataset_id, number") {
                    let key = "\(r["dataset_id"] as String)@\(r["number"] as Int)"
                    guard let sha = fileOf[key] else { throw KaifangError.runtime("version \(key) appeared during the copy: stop every writer first") }
                    try tx.query("""
                        INSERT INTO versions (dataset_id, number, row_count, sha256, source, file, file_sha256, manifest_json, created_at, created_by, changes_json, quality_json)
                        VALUES (\(r["dataset_id"] as String), \(r["number"] as Int), \(r["row_count"] as Int), \(r["sha256"] as String), \(r["source"] as String),
                            \("blob:" + sha), \(sha), \(r["manifest_json"] as String), \(r["created_at"] as String), \(r["created_by"] as String),
                            \(r["changes_json"] as String?), \(r["quality_json"] as String?))
                        """)
                    report.versions += 1
                }
                for r in try rows("SELECT * FROM account_tiers ORDER BY name") {
                    try tx.query("""
                        INSERT INTO account_tiers (name, rate, burst, exports_per_day, max_keys)
                        VALUES (\(r["name"] as String), \(r["rate"] as Double), \(r["burst"] as Double), \(r["exports_per_day"] as Int), \(r["max_keys"] as Int))
                        ON CONFLICT (name) DO UPDATE SET rate = excluded.rate, burst = excluded.burst, exports_per_day = excluded.exports_per_day, max_keys = excluded.max_keys
                        """)
                }
                for r in try rows("SELECT * FROM accounts ORDER BY created_at, id") {
                    try tx.query("""
                        INSERT INTO accounts (id, email, name, organisation, tier, created_at, created_by, suspended_at, suspended_reason)
                        VALUES (\(r["id"] as String), \(r["email"] as String), \(r["name"] as String), \(r["organisation"] as String), \(r["tier"] as String),
                            \(r["created_at"] as String), \(r["created_by"] as String), \(r["suspended_at"] as String?), \(r["suspended_reason"] as String?))
                        """)
                    report.accounts += 1
                }
                // Departments before the keys that belong to them; parents set once all exist.
                let departments = try rows("SELECT * FROM departments ORDER BY name")
                for r in departments {
                    try tx.query("""
                        INSERT INTO departments (name, created_at, created_by) VALUES (\(r["name"] as String), \(r["created_at"] as String), \(r["created_by"] as String))
                        """)
                }
                for r in departments {
                    if let parent = r["parent"] as String? {
                        try tx.query("UPDATE departments SET parent = \(parent) WHERE name = \(r["name"] as String)")
                    }
                }
                for r in try rows("SELECT * FROM api_keys ORDER BY created_at, id") {
                    try tx.query("""
                        INSERT INTO api_keys (id, name, role, key_hash, created_at, revoked_at, account_id, department) VALUES (\(r["id"] as String), \(r["name"] as String),
                            \(r["role"] as String), \(r["key_hash"] as String), \(r["created_at"] as String), \(r["revoked_at"] as String?), \(r["account_id"] as String?),
                            \(r["department"] as String?))
                        """)
                    report.keys += 1
                }
                for r in try rows("SELECT * FROM proposals ORDER BY proposed_at, id") {
                    try tx.query("""
                        INSERT INTO proposals (id, dataset_id, department, kind, manifest_json, version, tier, override_reason, needs_security, status, proposed_by, proposed_at,
                            reviewed_by, reviewed_at, security_by, security_at, refused_by, refused_reason, decided_at)
                        VALUES (\(r["id"] as String), \(r["dataset_id"] as String), \(r["department"] as String), \(r["kind"] as String),
                            \(r["manifest_json"] as String?), \(r["version"] as Int), \(r["tier"] as String),
                            \(r["override_reason"] as String?), \(r["needs_security"] as Bool), \(r["status"] as String), \(r["proposed_by"] as String),
                            \(r["proposed_at"] as String), \(r["reviewed_by"] as String?), \(r["reviewed_at"] as String?), \(r["security_by"] as String?),
                            \(r["security_at"] as String?), \(r["refused_by"] as String?), \(r["refused_reason"] as String?), \(r["decided_at"] as String?))
                        """)
                }
                for r in try rows("SELECT * FROM duties ORDER BY id") {
                    try tx.query("""
                        INSERT INTO duties (id, department, dataset_id, kind, title, due, created_at, created_by, withdrawn_at, withdrawn_reason)
                        VALUES (\(r["id"] as Int64), \(r["department"] as String), \(r["dataset_id"] as String), \(r["kind"] as String), \(r["title"] as String),
                            \(r["due"] as String), \(r["created_at"] as String), \(r["created_by"] as String), \(r["withdrawn_at"] as String?),
                            \(r["withdrawn_reason"] as String?))
                        """)
                }
                try tx.query("SELECT setval('duties_id_seq', (SELECT COALESCE(max(id), 0) + 1 FROM duties), false)")
                for r in try rows("SELECT * FROM data_requests ORDER BY id") {
                    try tx.query("""
                        INSERT INTO data_requests (id, title, items_json, purpose, department, status, filed_by, filed_at, due, reply, replied_at,
                            answered_at, closed_at, reason, dataset_id, version, delivered_json)
                        VALUES (\(r["id"] as Int64), \(r["title"] as String), \(r["items_json"] as String), \(r["purpose"] as String),
                            \(r["department"] as String), \(r["status"] as String), \(r["filed_by"] as String), \(r["filed_at"] as String),
                            \(r["due"] as String), \(r["reply"] as String?), \(r["replied_at"] as String?), \(r["answered_at"] as String?),
                            \(r["closed_at"] as String?), \(r["reason"] as String?), \(r["dataset_id"] as String?), \(r["version"] as Int?),
                            \(r["delivered_json"] as String?))
                        """)
                }
                try tx.query("SELECT setval('data_requests_id_seq', (SELECT COALESCE(max(id), 0) + 1 FROM data_requests), false)")
                for r in try rows("SELECT * FROM request_votes ORDER BY request_id, key_id") {
                    try tx.query("INSERT INTO request_votes (request_id, key_id, at) VALUES (\(r["request_id"] as Int64), \(r["key_id"] as String), \(r["at"] as String))")
                }
                for r in try rows("SELECT * FROM request_comments ORDER BY id") {
                    try tx.query("""
                        INSERT INTO request_comments (id, request_id, key_id, role, from_department, text, at)
                        VALUES (\(r["id"] as Int64), \(r["request_id"] as Int64), \(r["key_id"] as String), \(r["role"] as String),
                            \(r["from_department"] as Bool), \(r["text"] as String), \(r["at"] as String))
                        """)
                }
                try tx.query("SELECT setval('request_comments_id_seq', (SELECT COALESCE(max(id), 0) + 1 FROM request_comments), false)")
                for r in try rows("SELECT * FROM error_reports ORDER BY id") {
                    try tx.query("""
                        INSERT INTO error_reports (id, dataset_id, department, field, version, row_ref, text, status, filed_by, filed_at, due, resolution,
                            fixed_version, answer, closed_at, closed_by)
                        VALUES (\(r["id"] as Int64), \(r["dataset_id"] as String), \(r["department"] as String), \(r["field"] as String?),
                            \(r["version"] as Int?), \(r["row_ref"] as String?), \(r["text"] as String), \(r["status"] as String),
                            \(r["filed_by"] as String), \(r["filed_at"] as String), \(r["due"] as String), \(r["resolution"] as String?),
                            \(r["fixed_version"] as Int?), \(r["answer"] as String?), \(r["closed_at"] as String?), \(r["closed_by"] as String?))
                        """)
                }
                try tx.query("SELECT setval('error_reports_id_seq', (SELECT COALESCE(max(id), 0) + 1 FROM error_reports), false)")
                for r in try rows("SELECT * FROM showcases ORDER BY id") {
                    try tx.query("""
                        INSERT INTO showcases (id, title, description, url, datasets_json, licenses_json, status, filed_by, filed_at, decided_by, decided_at, reason)
                        VALUES (\(r["id"] as Int64), \(r["title"] as String), \(r["description"] as String), \(r["url"] as String?),
                            \(r["datasets_json"] as String), \(r["licenses_json"] as String), \(r["status"] as String), \(r["filed_by"] as String),
                            \(r["filed_at"] as String), \(r["decided_by"] as String?), \(r["decided_at"] as String?), \(r["reason"] as String?))
                        """)
                }
                try tx.query("SELECT setval('showcases_id_seq', (SELECT COALESCE(max(id), 0) + 1 FROM showcases), false)")
                for r in try rows("SELECT * FROM ratings ORDER BY dataset_id, key_id") {
                    try tx.query("""
                        INSERT INTO ratings (dataset_id, key_id, stars, comment, created_at, updated_at)
                        VALUES (\(r["dataset_id"] as String), \(r["key_id"] as String), \(r["stars"] as Int), \(r["comment"] as String?),
                            \(r["created_at"] as String), \(r["updated_at"] as String))
                        """)
                }
                for r in try rows("SELECT * FROM uploads ORDER BY created_at") {
                    try tx.query("""
                        INSERT INTO uploads (key_id, idempotency_key, dataset_id, version, created_at) VALUES (\(r["key_id"] as String), \(r["idempotency_key"] as String),
                            \(r["dataset_id"] as String), \(r["version"] as Int), \(r["created_at"] as String))
                        """)
                }
                for r in try rows("SELECT * FROM applications ORDER BY id") {
                    try tx.query("""
                        INSERT INTO applications (id, dataset_id, key_id, purpose, fields_json, use, duration_days, status, reason, created_at, decided_at)
                        VALUES (\(r["id"] as Int64), \(r["dataset_id"] as String), \(r["key_id"] as String), \(r["purpose"] as String), \(r["fields_json"] as String),
                            \(r["use"] as String), \(r["duration_days"] as Int), \(r["status"] as String), \(r["reason"] as String?), \(r["created_at"] as String), \(r["decided_at"] as String?))
                        """)
                    report.applications += 1
                }
                // New applications are numbered after the copied ones.
                try tx.query("SELECT setval(pg_get_serial_sequence('applications', 'id'), greatest((SELECT max(id) FROM applications), 1), (SELECT count(*) > 0 FROM applications))")
                for r in try rows("SELECT * FROM licenses ORDER BY created_at, id") {
                    try tx.query("""
                        INSERT INTO licenses (id, application_id, key_id, dataset_id, fields_json, use, created_at, expires_at, revoked_at)
                        VALUES (\(r["id"] as String), \(r["application_id"] as Int64?), \(r["key_id"] as String), \(r["dataset_id"] as String), \(r["fields_json"] as String),
                            \(r["use"] as String), \(r["created_at"] as String), \(r["expires_at"] as String), \(r["revoked_at"] as String?))
                        """)
                    report.licenses += 1
                }
                for r in try rows("SELECT * FROM jobs ORDER BY created_at, id") {
                    let id: String = r["id"]
                    // A job the embedded server left running is queued again on the shared store.
                    let status: String = ["running", "checking"].contains(r["status"] as String) ? "queued" : r["status"]
                    try tx.query("""
                        INSERT INTO jobs (id, key_id, sql, mode, epsilon, purpose, status, detail_json, created_at, started_at, finished_at, attempts, dry_run, datasets_json)
                        VALUES (\(id), \(r["key_id"] as String), \(r["sql"] as String), \(r["mode"] as String), \(r["epsilon"] as Double?), \(r["purpose"] as String),
                            \(status), \(r["detail_json"] as String), \(r["created_at"] as String), \(r["started_at"] as String?), \(r["finished_at"] as String?),
                            \(r["attempts"] as Int), \((r["dry_run"] as Int) != 0), \(r["datasets_json"] as String))
                        """)
                    let folder = source.directory.jobsDir.appendingPathComponent(id, isDirectory: true)
                    for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
                    where name == "spec.json" || name == "result.json" || name.hasPrefix("rowset-") {
                        let data = try Data(contentsOf: folder.appendingPathComponent(name))
                        try tx.query("INSERT INTO job_files (job_id, name, data) VALUES (\(id), \(name), \(data))")
                    }
                    report.jobs += 1
                }
                for r in try rows("SELECT * FROM epsilon_spend") {
                    try tx.query("INSERT INTO epsilon_spend (job_id, key_id, dataset_id, license_id, month, epsilon) VALUES (\(r["job_id"] as String), \(r["key_id"] as String), \(r["dataset_id"] as String), \(r["license_id"] as String?), \(r["month"] as String), \(r["epsilon"] as Double))")
                }
                for r in try rows("SELECT * FROM job_rowsets") {
                    try tx.query("INSERT INTO job_rowsets (job_id, key_id, dataset_id, units, set_sha256) VALUES (\(r["job_id"] as String), \(r["key_id"] as String), \(r["dataset_id"] as String), \(r["units"] as Int), \(r["set_sha256"] as String?))")
                }
                for r in try rows("SELECT * FROM sources") {
                    try tx.query("""
                        INSERT INTO sources (dataset_id, url, interval_seconds, publish, etag, last_modified, content_sha256, last_checked_at, next_due_at, failures, last_error, created_at)
                        VALUES (\(r["dataset_id"] as String), \(r["url"] as String), \(r["interval_seconds"] as Int), \((r["publish"] as Int) != 0), \(r["etag"] as String?),
                            \(r["last_modified"] as String?), \(r["content_sha256"] as String?), \(r["last_checked_at"] as String?), \(r["next_due_at"] as String),
                            \(r["failures"] as Int), \(r["last_error"] as String?), \(r["created_at"] as String))
                        """)
                }
                for r in try rows("SELECT * FROM read_counts") {
                    try tx.query("INSERT INTO read_counts (day, dataset_id, n) VALUES (\(r["day"] as String), \(r["dataset_id"] as String), \(r["n"] as Int64))")
                }
                // Feeds and webhooks number events: the same numbers, and the sequence after them.
                for r in try rows("SELECT * FROM scorecards ORDER BY month, department") {
                    try tx.query("""
                        INSERT INTO scorecards (month, department, figures_json, taken_at)
                        VALUES (\(r["month"] as String), \(r["department"] as String), \(r["figures_json"] as String), \(r["taken_at"] as String))
                        """)
                }
                for r in try rows("SELECT * FROM dataset_events ORDER BY seq") {
                    try tx.query("""
                        INSERT INTO dataset_events (seq, dataset_id, kind, version, tier, at) VALUES (\(r["seq"] as Int64), \(r["dataset_id"] as String),
                            \(r["kind"] as String), \(r["version"] as Int?), \(r["tier"] as String?), \(r["at"] as String))
                        """)
                }
                try tx.query("SELECT setval('dataset_events_seq_seq', (SELECT COALESCE(max(seq), 0) + 1 FROM dataset_events), false)")
                for r in try rows("SELECT * FROM webhooks ORDER BY created_at, id") {
                    try tx.query("""
                        INSERT INTO webhooks (id, key_id, url, dataset_id, created_at, disabled_at, disabled_reason, failures)
                        VALUES (\(r["id"] as String), \(r["key_id"] as String), \(r["url"] as String), \(r["dataset_id"] as String?), \(r["created_at"] as String),
                            \(r["disabled_at"] as String?), \(r["disabled_reason"] as String?), \(r["failures"] as Int))
                        """)
                }
                // Deliveries under way continue on the shared store (a lease of this process is dropped).
                for r in try rows("SELECT * FROM webhook_deliveries ORDER BY id") {
                    try tx.query("""
                        INSERT INTO webhook_deliveries (id, webhook_id, event_seq, status, attempts, next_at, last_status, last_error, created_at, delivered_at)
                        VALUES (\(r["id"] as Int64), \(r["webhook_id"] as String), \(r["event_seq"] as Int64), \(r["status"] as String), \(r["attempts"] as Int),
                            \(r["next_at"] as String?), \(r["last_status"] as Int?), \(r["last_error"] as String?), \(r["created_at"] as String), \(r["delivered_at"] as String?))
                        """)
                }
                try tx.query("SELECT setval(pg_get_serial_sequence('webhook_deliveries', 'id'), greatest((SELECT max(id) FROM webhook_deliveries), 1), (SELECT count(*) > 0 FROM webhook_deliveries))")
                for r in try rows("SELECT * FROM usage_daily") {
                    try tx.query("""
                        INSERT INTO usage_daily (day, key_id, dataset_id, requests, rows_served, bytes, exports)
                        VALUES (\(r["day"] as String), \(r["key_id"] as String), \(r["dataset_id"] as String), \(r["requests"] as Int64),
                            \(r["rows_served"] as Int64), \(r["bytes"] as Int64), \(r["exports"] as Int64))
                        """)
                }
                // The chain, event for event (its hashes cover every field, so nothing is re-made),
                // ten thousand events a statement.
                let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit_events ORDER BY seq")
                var chunk = AuditRows()
                func insert() throws {
                    var b = PostgresBindings()
                    chunk.bind(&b)
                    try tx.query(PostgresQuery(unsafeSQL: "INSERT INTO audit_events (\(AuditRows.insertColumns)) \(AuditRows.select)", binds: b))
                    chunk = AuditRows()
                }
                while let r = try cursor.next() {
                    chunk.append(seq: r["seq"], at: r["at"], actor: r["actor"], action: r["action"], dataset: r["dataset_id"],
                                 detail: r["detail_json"], previous: r["prev_hash"], hash: r["hash"])
                    report.events += 1
                    if chunk.count == 10_000 { try insert() }
                }
                if chunk.count > 0 { try insert() }
            }
            if let last = try tx.query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first {
                try tx.query("UPDATE audit_head SET seq = \(try last.int64("seq")), hash = \(try last.string("hash")) WHERE id = 1")
            }
            try tx.query("UPDATE catalog_changes SET seq = seq + 1 WHERE id = 1")
        }
        // A bulk load leaves the tables without statistics or a visibility map: autovacuum would
        // catch up on them in the store's first minutes of serving. Done here instead.
        _ = try target.client.query("VACUUM (ANALYZE)")
        guard case .intact(let count, let head) = try target.verifyAudit(anchors: []), count == report.events, head == sourceHead else {
            throw KaifangError.runtime("the copied audit chain does not verify against the source's head: the target store must be dropped and the copy repeated")
        }
        report.head = head
        // Every copied version file opens from the target.
        for v in versions {
            guard let version = try target.version(v["dataset_id"], v["number"]) else { continue }
            _ = try target.localFile(version)
        }
        return report
    }
}
