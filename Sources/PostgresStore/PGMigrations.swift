import Foundation
import KaifangCore
import PostgresNIO
import Storage

/// The shared store's migrations: named and append-only, like the embedded catalog's. Each
/// runs once, in its own transaction, under an advisory lock, so replicas that start together
/// migrate the database exactly once. Never edit a shipped one; add the next.
enum PGMigrations {
    static let all: [(name: String, sql: String)] = [
        ("v1-catalog", """
        CREATE TABLE datasets (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            department TEXT NOT NULL DEFAULT '',
            topic TEXT NOT NULL DEFAULT '',
            update_frequency TEXT NOT NULL DEFAULT 'irregular',
            license TEXT NOT NULL DEFAULT '',
            should_open BOOLEAN NOT NULL DEFAULT false,
            entity TEXT,
            manifest_json TEXT NOT NULL,
            tier TEXT CHECK (tier IN ('open', 'conditional', 'restricted')),
            published_version INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            -- id, title, description, department, topic and every field's name and title, lower-cased:
            -- what catalog search matches words in.
            search_text TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE fields (
            dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            title TEXT,
            type TEXT NOT NULL,
            semantic TEXT,
            level TEXT NOT NULL CHECK (level IN ('L1', 'L2', 'L3', 'L4')),
            qi BOOLEAN NOT NULL DEFAULT false,
            min DOUBLE PRECISION,
            max DOUBLE PRECISION,
            action TEXT,
            PRIMARY KEY (dataset_id, name)
        );
        -- Version files are immutable SQLite files named by the SHA-256 of their bytes, kept in
        -- 1 MiB chunks (or in a shared folder, then with no chunks here).
        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            size BIGINT NOT NULL,
            chunks INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE blob_chunks (
            sha256 TEXT NOT NULL REFERENCES blobs(sha256),
            n INTEGER NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (sha256, n)
        );
        CREATE TABLE versions (
            dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            row_count BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL,
            file TEXT NOT NULL,
            file_sha256 TEXT NOT NULL REFERENCES blobs(sha256),
            manifest_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            PRIMARY KEY (dataset_id, number)
        );
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('developer', 'partner', 'steward')),
            key_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE TABLE applications (
            id BIGSERIAL PRIMARY KEY,
            dataset_id TEXT NOT NULL REFERENCES datasets(id),
            key_id TEXT NOT NULL REFERENCES api_keys(id),
            purpose TEXT NOT NULL,
            fields_json TEXT NOT NULL,
            use TEXT NOT NULL CHECK (use IN ('rows', 'sandbox')),
            duration_days INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
            reason TEXT,
            created_at TEXT NOT NULL,
            decided_at TEXT
        );
        CREATE TABLE licenses (
            id TEXT PRIMARY KEY,
            application_id BIGINT REFERENCES applications(id),
            key_id TEXT NOT NULL REFERENCES api_keys(id),
            dataset_id TEXT NOT NULL REFERENCES datasets(id),
            fields_json TEXT NOT NULL,
            use TEXT NOT NULL CHECK (use IN ('rows', 'sandbox')),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX licenses_by_key ON licenses(key_id, dataset_id);
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL REFERENCES api_keys(id),
            sql TEXT NOT NULL,
            mode TEXT NOT NULL CHECK (mode IN ('aggregate', 'dp')),
            epsilon DOUBLE PRECISION,
            purpose TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            detail_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            dry_run BOOLEAN NOT NULL DEFAULT false,
            datasets_json TEXT NOT NULL DEFAULT '[]',
            -- The worker running it and until when its lease holds (the database's clock).
            worker TEXT,
            lease_until TIMESTAMPTZ
        );
        CREATE INDEX jobs_by_status ON jobs(status, created_at);
        CREATE INDEX jobs_by_key ON jobs(key_id, created_at);
        CREATE TABLE job_files (
            job_id TEXT NOT NULL,
            name TEXT NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (job_id, name)
        );
        CREATE TABLE epsilon_spend (
            job_id TEXT NOT NULL REFERENCES jobs(id),
            key_id TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            license_id TEXT,
            month TEXT NOT NULL,
            epsilon DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job_id, dataset_id)
        );
        CREATE INDEX epsilon_by_key ON epsilon_spend(key_id, dataset_id, month);
        CREATE TABLE job_rowsets (
            job_id TEXT NOT NULL REFERENCES jobs(id),
            key_id TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            units INTEGER NOT NULL,
            set_sha256 TEXT,
            PRIMARY KEY (job_id, dataset_id)
        );
        CREATE INDEX rowsets_by_key ON job_rowsets(key_id, dataset_id, units);
        CREATE UNIQUE INDEX rowsets_unique ON job_rowsets(key_id, dataset_id, set_sha256);
        CREATE TABLE audit_events (
            seq BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            dataset_id TEXT,
            detail_json TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_by_dataset ON audit_events(dataset_id, seq);
        CREATE INDEX audit_by_actor ON audit_events(actor, action, at);
        CREATE TABLE read_counts (
            day TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (day, dataset_id)
        );
        CREATE TABLE sources (
            dataset_id TEXT PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            interval_seconds INTEGER NOT NULL,
            publish BOOLEAN NOT NULL DEFAULT false,
            etag TEXT,
            last_modified TEXT,
            content_sha256 TEXT,
            last_checked_at TEXT,
            next_due_at TEXT NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL
        );
        -- Rate-limit buckets (GCRA: the theoretical arrival time, in seconds since 1970). Unlogged:
        -- lost on a crash of the database, which only forgives recent requests.
        CREATE UNLOGGED TABLE rate_buckets (
            bucket TEXT PRIMARY KEY,
            tat DOUBLE PRECISION NOT NULL
        );
        -- Moves with every change but read events: replicas keep catalog lookups cached while it
        -- stands still.
        CREATE TABLE catalog_changes (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL
        );
        INSERT INTO catalog_changes (id, seq) VALUES (1, 1);
        -- The platform secret pseudonym keys derive from (created with the store).
        CREATE TABLE platform (
            name TEXT PRIMARY KEY,
            value BYTEA NOT NULL
        );
        """),
        ("v2-audit-head", """
        -- The chain's head in one row: locking it (SELECT … FOR UPDATE) is what orders every write
        -- that appends, and reading it costs no search of the events. Filled from the events (or
        -- the genesis hash) when the store opens.
        CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL
        );
        """),
        ("v3-audit-append", """
        -- Appends a chained batch of events, moves the head and counts the reads among them, in
        -- one call. With an expected head, only if the head still is that one (the head row's
        -- lock orders the call against every other writer); with NULL, the caller's transaction
        -- already holds the head row. A function, so each connection plans its statements once
        -- rather than once per batch. Answers `ok` (whether it appended) and `mark` (the change
        -- mark, read while the head row is held).
        CREATE FUNCTION audit_append(
            seqs BIGINT[], ats TEXT[], actors TEXT[], actions TEXT[], datasets TEXT[], details TEXT[], prevs TEXT[], hashes TEXT[],
            new_seq BIGINT, new_hash TEXT, days TEXT[], read_datasets TEXT[], reads BIGINT[],
            expected_seq BIGINT, expected_hash TEXT,
            OUT ok INTEGER, OUT mark BIGINT)
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE audit_head SET seq = new_seq, hash = new_hash
            WHERE id = 1 AND (expected_seq IS NULL OR (seq = expected_seq AND hash = expected_hash));
            IF NOT FOUND THEN
                ok := 0;
                RETURN;
            END IF;
            INSERT INTO audit_events (seq, at, actor, action, dataset_id, detail_json, prev_hash, hash)
            SELECT s, a, ac, act, NULLIF(d, ''), dj, p, h
            FROM unnest(seqs, ats, actors, actions, datasets, details, prevs, hashes) AS t(s, a, ac, act, d, dj, p, h);
            INSERT INTO read_counts (day, dataset_id, n)
            SELECT * FROM unnest(days, read_datasets, reads)
            ON CONFLICT (day, dataset_id) DO UPDATE SET n = read_counts.n + excluded.n;
            ok := 1;
            SELECT c.seq INTO mark FROM catalog_changes c WHERE c.id = 1;
        END
        $$;
        """),
        ("v4-accounts-usage", """
        -- Developer accounts (sign-up), their tiers' limits, keys held by accounts, and usage per
        -- day, key and dataset (counted by each replica, added in batches).
        CREATE TABLE account_tiers (
            name TEXT PRIMARY KEY,
            rate DOUBLE PRECISION NOT NULL,
            burst DOUBLE PRECISION NOT NULL,
            exports_per_day INTEGER NOT NULL,
            max_keys INTEGER NOT NULL
        );
        INSERT INTO account_tiers (name, rate, burst, exports_per_day, max_keys) VALUES \(PGMigrations.seedTiers);
        CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            organisation TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL REFERENCES account_tiers(name),
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            suspended_at TEXT,
            suspended_reason TEXT
        );
        ALTER TABLE api_keys ADD COLUMN account_id TEXT REFERENCES accounts(id);
        CREATE INDEX keys_by_account ON api_keys(account_id);
        CREATE TABLE usage_daily (
            day TEXT NOT NULL,
            key_id TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            requests BIGINT NOT NULL DEFAULT 0,
            rows_served BIGINT NOT NULL DEFAULT 0,
            bytes BIGINT NOT NULL DEFAULT 0,
            exports BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (day, key_id, dataset_id)
        );
        CREATE INDEX usage_by_key ON usage_daily(key_id, day);
        CREATE INDEX usage_by_dataset ON usage_daily(dataset_id, day);
        """),
        ("v5-version-changes", """
        -- The changes of each version from the one before it, computed at import by the dataset's
        -- primary key (VersionDiff, JSON).
        ALTER TABLE versions ADD COLUMN changes_json TEXT;
        """),
        ("v6-dataset-events", """
        -- Publications and withdrawals in order (the Atom feeds, webhooks), from the audit chain's
        -- events for the ones before.
        CREATE TABLE dataset_events (
            seq BIGSERIAL PRIMARY KEY,
            dataset_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('published', 'withdrawn')),
            version INTEGER,
            tier TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX dataset_events_by_dataset ON dataset_events(dataset_id, seq);
        INSERT INTO dataset_events (dataset_id, kind, version, tier, at)
            SELECT dataset_id, CASE action WHEN 'dataset.publish' THEN 'published' ELSE 'withdrawn' END,
                   (detail_json::jsonb->>'version')::integer, detail_json::jsonb->>'tier', at
            FROM audit_events WHERE action IN ('dataset.publish', 'dataset.withdraw') AND dataset_id IS NOT NULL ORDER BY seq;
        """),
        ("v7-webhooks", """
        -- Key holders' webhooks, and the outbox of their deliveries (one row per event and webhook,
        -- added in the publishing transaction, claimed by delivery workers with a lease).
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL REFERENCES api_keys(id),
            url TEXT NOT NULL,
            dataset_id TEXT,
            created_at TEXT NOT NULL,
            disabled_at TEXT,
            disabled_reason TEXT,
            failures INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX webhooks_by_key ON webhooks(key_id);
        CREATE TABLE webhook_deliveries (
            id BIGSERIAL PRIMARY KEY,
            webhook_id TEXT NOT NULL REFERENCES webhooks(id),
            event_seq BIGINT NOT NULL REFERENCES dataset_events(seq),
            status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT,
            lease_until TEXT,
            last_status INTEGER,
            last_error TEXT,
            created_at TEXT NOT NULL,
            delivered_at TEXT
        );
        CREATE INDEX deliveries_due ON webhook_deliveries(status, next_at);
        CREATE INDEX deliveries_by_webhook ON webhook_deliveries(webhook_id, id);
        """),
        ("v8-version-quality", """
        -- Each version's quality report, computed at import (QualityReport, JSON).
        ALTER TABLE versions ADD COLUMN quality_json TEXT;
        """),
        ("v9-dataset-divisions", """
        -- The divisions a dataset's manifest declares (spatial), each with its city and, for a
        -- county, the county: what the catalog's city and county facets count.
        CREATE TABLE dataset_divisions (
            dataset_id TEXT NOT NULL REFERENCES datasets(id),
            code TEXT NOT NULL,
            city TEXT,
            county TEXT,
            PRIMARY KEY (dataset_id, code)
        );
        CREATE INDEX dataset_divisions_by_city ON dataset_divisions(city);
        CREATE INDEX dataset_divisions_by_county ON dataset_divisions(county);
        """),
        ("v10-scorecards", """
        -- Monthly department scorecards, kept forever (Scorecard, JSON).
        CREATE TABLE scorecards (
            month TEXT NOT NULL,
            department TEXT NOT NULL,
            figures_json TEXT NOT NULL,
            taken_at TEXT NOT NULL,
            PRIMARY KEY (month, department)
        );
        """),
        ("v11-departments", """
        -- Departments own datasets (by the manifest's department); publishers' and reviewers' keys belong to one.
        CREATE TABLE departments (
            name TEXT PRIMARY KEY,
            parent TEXT REFERENCES departments(name),
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
        ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('developer', 'partner', 'steward', 'publisher', 'reviewer', 'security'));
        ALTER TABLE api_keys ADD COLUMN department TEXT REFERENCES departments(name);
        ALTER TABLE api_keys ADD CONSTRAINT api_keys_department_check CHECK ((role IN ('publisher', 'reviewer')) = (department IS NOT NULL));
        -- The version each upload made, by the key that sent it and its Idempotency-Key.
        CREATE TABLE uploads (
            key_id TEXT NOT NULL REFERENCES api_keys(id),
            idempotency_key TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (key_id, idempotency_key),
            FOREIGN KEY (dataset_id, version) REFERENCES versions(dataset_id, number)
        );
        """),
        ("v12-proposals", """
        -- Publications and policy changes proposed by a department's publisher, approved by someone else.
        CREATE TABLE proposals (
            id TEXT PRIMARY KEY,
            dataset_id TEXT NOT NULL REFERENCES datasets(id),
            department TEXT NOT NULL,
            version INTEGER NOT NULL,
            tier TEXT NOT NULL CHECK (tier IN ('open', 'conditional', 'restricted')),
            override_reason TEXT,
            needs_security BOOLEAN NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'published', 'applied', 'refused', 'withdrawn')),
            kind TEXT NOT NULL DEFAULT 'publish' CHECK (kind IN ('publish', 'policy')),
            manifest_json TEXT,
            proposed_by TEXT NOT NULL,
            proposed_at TEXT NOT NULL,
            reviewed_by TEXT,
            reviewed_at TEXT,
            security_by TEXT,
            security_at TEXT,
            refused_by TEXT,
            refused_reason TEXT,
            decided_at TEXT
        );
        CREATE UNIQUE INDEX proposals_one_pending ON proposals(dataset_id) WHERE status = 'pending';
        CREATE INDEX proposals_by_department ON proposals(department, status);
        """),
        ("v13-duties", """
        -- Departments' duty lists: datasets to open or share by a date.
        CREATE TABLE duties (
            id BIGSERIAL PRIMARY KEY,
            department TEXT NOT NULL REFERENCES departments(name),
            dataset_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('open', 'share')),
            title TEXT NOT NULL,
            due TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            withdrawn_at TEXT,
            withdrawn_reason TEXT
        );
        CREATE INDEX duties_by_department ON duties(department);
        """),
        ("v14-data-requests", """
        -- Data requests (数据需求) on the public board, their votes and comments.
        CREATE TABLE data_requests (
            id BIGSERIAL PRIMARY KEY,
            title TEXT NOT NULL,
            items_json TEXT NOT NULL,
            purpose TEXT NOT NULL,
            department TEXT NOT NULL REFERENCES departments(name),
            status TEXT NOT NULL CHECK (status IN ('open', 'accepted', 'fulfilled', 'declined', 'withdrawn')),
            filed_by TEXT NOT NULL,
            filed_at TEXT NOT NULL,
            due TEXT NOT NULL,
            reply TEXT,
            replied_at TEXT,
            answered_at TEXT,
            closed_at TEXT,
            reason TEXT,
            dataset_id TEXT,
            version INTEGER,
            delivered_json TEXT
        );
        CREATE INDEX data_requests_by_department ON data_requests(department, status);
        CREATE TABLE request_votes (
            request_id BIGINT NOT NULL REFERENCES data_requests(id),
            key_id TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (request_id, key_id)
        );
        CREATE TABLE request_comments (
            id BIGSERIAL PRIMARY KEY,
            request_id BIGINT NOT NULL REFERENCES data_requests(id),
            key_id TEXT NOT NULL,
            role TEXT NOT NULL,
            from_department BOOLEAN NOT NULL,
            text TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX request_comments_by_request ON request_comments(request_id);
        """),
        ("v15-error-reports-and-ratings", """
        -- Error reports (纠错) on datasets, fields or rows, and ratings (好差评), one per key and dataset.
        CREATE TABLE error_reports (
            id BIGSERIAL PRIMARY KEY,
            dataset_id TEXT NOT NULL,
            department TEXT NOT NULL,
            field TEXT,
            version INTEGER,
            row_ref TEXT,
            text TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'withdrawn')),
            filed_by TEXT NOT NULL,
            filed_at TEXT NOT NULL,
            due TEXT NOT NULL,
            resolution TEXT CHECK (resolution IN ('fixed', 'not_an_error', 'wont_fix')),
            fixed_version INTEGER,
            answer TEXT,
            closed_at TEXT,
            closed_by TEXT
        );
        CREATE INDEX error_reports_by_dataset ON error_reports(dataset_id);
        CREATE INDEX error_reports_by_department ON error_reports(department);
        CREATE TABLE ratings (
            dataset_id TEXT NOT NULL,
            key_id TEXT NOT NULL,
            stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
            comment TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (dataset_id, key_id)
        );
        """),
        ("v16-showcases", """
        -- Applications and research results built on the data (应用场景), shown once approved.
        CREATE TABLE showcases (
            id BIGSERIAL PRIMARY KEY,
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            url TEXT,
            datasets_json TEXT NOT NULL,
            licenses_json TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused', 'withdrawn')),
            filed_by TEXT NOT NULL,
            filed_at TEXT NOT NULL,
            decided_by TEXT,
            decided_at TEXT,
            reason TEXT
        );
        """),
    ]

    /// The seeded tiers as SQL values (numbers only: nothing to quote).
    static var seedTiers: String {
        CatalogRules.seedTiers.map { "('\($0.name)', \($0.rate), \($0.burst), \($0.exportsPerDay), \($0.maxKeys))" }.joined(separator: ", ")
    }

    /// Applies the migrations the database lacks.
    /// - Throws: `KaifangError.runtime` naming the migration that failed.
    static func migrate(_ client: PGClient) throws {
        try client.transaction { tx in
            // One migrating process at a time (the lock ends with the transaction).
            try tx.query("SELECT pg_advisory_xact_lock(\(PGLocks.migrations))")
            try tx.execute("CREATE TABLE IF NOT EXISTS kaifang_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            let done = Set(try tx.query("SELECT name FROM kaifang_migrations").map { try $0.string("name") })
            for m in all where !done.contains(m.name) {
                do {
                    // One statement at a time: the extended protocol runs one per message.
                    for statement in Self.statements(m.sql) { try tx.execute(statement) }
                    try tx.query("INSERT INTO kaifang_migrations (name) VALUES (\(m.name))")
                } catch {
                    throw KaifangError.runtime("the store's migration \(m.name) failed: \(PGClient.reason(error))")
                }
            }
        }
    }
}

extension PGMigrations {
    /// The statements of a migration: split after each `;` that ends a line outside a `$$`-quoted
    /// body (comment lines dropped).
    static func statements(_ sql: String) -> [String] {
        var out: [String] = [], current = ""
        var quoted = false
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("--") { continue }
            current += line + "\n"
            if line.components(separatedBy: "$$").count % 2 == 0 { quoted.toggle() }
            if !quoted, line.trimmingCharacters(in: .whitespaces).hasSuffix(";") {
                out.append(current)
                current = ""
            }
        }
        if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { out.append(current) }
        return out
    }
}

/// Advisory lock keys.
enum PGLocks {
    static let migrations: Int64 = 0x6B61_6966_0001
}
