import GRDB

/// The catalog's migrations: named, append-only, string table names. Never edit a shipped one;
/// add the next.
enum CatalogMigrations {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-catalog") { db in
            try db.execute(sql: """
            CREATE TABLE datasets (
                id TEXT PRIMARY KEY NOT NULL,
                title TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                department TEXT NOT NULL DEFAULT '',
                topic TEXT NOT NULL DEFAULT '',
                update_frequency TEXT NOT NULL DEFAULT 'irregular',
                license TEXT NOT NULL DEFAULT '',
                should_open INTEGER NOT NULL DEFAULT 0,
                entity TEXT,
                manifest_json TEXT NOT NULL,
                tier TEXT CHECK (tier IN ('open', 'conditional', 'restricted')),
                published_version INTEGER,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            );
            CREATE TABLE fields (
                dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                title TEXT,
                type TEXT NOT NULL,
                semantic TEXT,
                level TEXT NOT NULL CHECK (level IN ('L1', 'L2', 'L3', 'L4')),
                qi INTEGER NOT NULL DEFAULT 0,
                min REAL,
                max REAL,
                action TEXT,
                PRIMARY KEY (dataset_id, name)
            );
            CREATE TABLE versions (
                dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                row_count INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                source TEXT NOT NULL,
                file TEXT NOT NULL,
                manifest_json TEXT NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                PRIMARY KEY (dataset_id, number)
            );
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('developer', 'partner', 'steward')),
                key_hash TEXT NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            );
            CREATE TABLE applications (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
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
                id TEXT PRIMARY KEY NOT NULL,
                application_id INTEGER REFERENCES applications(id),
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
                id TEXT PRIMARY KEY NOT NULL,
                key_id TEXT NOT NULL REFERENCES api_keys(id),
                sql TEXT NOT NULL,
                mode TEXT NOT NULL CHECK (mode IN ('aggregate', 'dp')),
                epsilon REAL,
                purpose TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL,
                detail_json TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL,
                started_at TEXT,
                finished_at TEXT
            );
            CREATE INDEX jobs_by_status ON jobs(status, created_at);
            CREATE TABLE audit_events (
                seq INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                dataset_id TEXT,
                detail_json TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            );
            CREATE INDEX audit_by_dataset ON audit_events(dataset_id, seq);
            """)
        }
        m.registerMigration("v2-sources") { db in
            try db.execute(sql: """
            CREATE TABLE sources (
                dataset_id TEXT PRIMARY KEY NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
                url TEXT NOT NULL,
                interval_seconds INTEGER NOT NULL,
                publish INTEGER NOT NULL DEFAULT 0,
                etag TEXT,
                last_modified TEXT,
                content_sha256 TEXT,
                last_checked_at TEXT,
                next_due_at TEXT NOT NULL,
                failures INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                created_at TEXT NOT NULL
            );
            """)
        }
        m.registerMigration("v3-sandbox") { db in
            try db.execute(sql: """
            ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE jobs ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE jobs ADD COLUMN datasets_json TEXT NOT NULL DEFAULT '[]';
            CREATE INDEX jobs_by_key ON jobs(key_id, created_at);
            CREATE TABLE epsilon_spend (
                job_id TEXT NOT NULL REFERENCES jobs(id),
                key_id TEXT NOT NULL,
                dataset_id TEXT NOT NULL,
                license_id TEXT,
                month TEXT NOT NULL,
                epsilon REAL NOT NULL,
                PRIMARY KEY (job_id, dataset_id)
            );
            CREATE INDEX epsilon_by_key ON epsilon_spend(key_id, dataset_id, month);
            CREATE TABLE job_rowsets (
                job_id TEXT NOT NULL REFERENCES jobs(id),
                key_id TEXT NOT NULL,
                dataset_id TEXT NOT NULL,
                units INTEGER NOT NULL,
                PRIMARY KEY (job_id, dataset_id)
            );
            CREATE INDEX rowsets_by_key ON job_rowsets(key_id, dataset_id, units);
            """)
        }
        m.registerMigration("v4-rowset-digests") { db in
            // Identical row sets are kept once per key and dataset, so repeating a query does not
            // grow what overlap control compares against.
            try db.execute(sql: """
            ALTER TABLE job_rowsets ADD COLUMN set_sha256 TEXT;
            CREATE UNIQUE INDEX rowsets_unique ON job_rowsets(key_id, dataset_id, set_sha256);
            """)
        }
        m.registerMigration("v5-catalog-fts") { db in
            // Full-text search over id, title, description, department, topic and field names and
            // titles, with the trigram tokenizer (substring matches in Chinese text: 空气质 in
            // 空气质量; queries of one or two characters fall back to LIKE). Triggers keep it current.
            /// The indexed text of the datasets `filter` selects.
            func body(_ filter: String) -> String {
                """
                INSERT INTO dataset_fts (id, body) SELECT d.id, d.id || ' ' || d.title || ' ' || d.description || ' ' || d.department || ' ' || d.topic || ' ' ||
                    COALESCE((SELECT group_concat(f.name || ' ' || COALESCE(f.title, ''), ' ') FROM fields f WHERE f.dataset_id = d.id), '')
                    FROM datasets d \(filter);
                """
            }
            /// A trigger that re-indexes the dataset `id` names after `event`.
            func refresh(_ name: String, _ event: String, _ id: String) -> String {
                "CREATE TRIGGER \(name) AFTER \(event) BEGIN DELETE FROM dataset_fts WHERE id = \(id); \(body("WHERE d.id = \(id)")) END;"
            }
            try db.execute(sql: "CREATE VIRTUAL TABLE dataset_fts USING fts5(id UNINDEXED, body, tokenize = 'trigram');" + body(""))
            try db.execute(sql: [
                refresh("dataset_fts_ai", "INSERT ON datasets", "NEW.id"),
                refresh("dataset_fts_au", "UPDATE ON datasets", "NEW.id"),
                "CREATE TRIGGER dataset_fts_ad AFTER DELETE ON datasets BEGIN DELETE FROM dataset_fts WHERE id = OLD.id; END;",
                refresh("dataset_fts_fi", "INSERT ON fields", "NEW.dataset_id"),
                refresh("dataset_fts_fu", "UPDATE ON fields", "NEW.dataset_id"),
                refresh("dataset_fts_fd", "DELETE ON fields", "OLD.dataset_id"),
            ].joined(separator: "\n"))
        }
        m.registerMigration("v6-read-counts") { db in
            // Reads per dataset per day, kept with each audited read, so `/v1/stats` and the
            // portal's "most used" sum at most 30 rows per dataset instead of scanning the log
            // (the soak test found that scan, and the export quota's, growing with every request).
            try db.execute(sql: """
            CREATE TABLE read_counts (
                day TEXT NOT NULL,
                dataset_id TEXT NOT NULL,
                n INTEGER NOT NULL,
                PRIMARY KEY (day, dataset_id)
            ) WITHOUT ROWID;
            INSERT INTO read_counts (day, dataset_id, n)
                SELECT substr(at, 1, 10), dataset_id, count(*) FROM audit_events
                WHERE action IN ('rows.read', 'export.read') AND dataset_id IS NOT NULL GROUP BY 1, 2;
            -- The daily export quota counts a caller's exports today: an index range, not a scan.
            CREATE INDEX audit_by_actor ON audit_events(actor, action, at);
            """)
        }
        m.registerMigration("v7-job-leases") { db in
            // A running job names its worker and holds a lease the worker renews: a shared store
            // hands a job whose lease ran out to another worker (once), never to two at a time.
            // Job files (spec, result, row sets) stay in the data directory's jobs/ folder.
            try db.execute(sql: """
            ALTER TABLE jobs ADD COLUMN worker TEXT;
            ALTER TABLE jobs ADD COLUMN lease_until TEXT;
            """)
        }
        m.registerMigration("v8-accounts-usage") { db in
            // Developer accounts (sign-up), their tiers' limits, keys held by accounts, and usage
            // per day, key and dataset (counted by the server, added in batches).
            try db.execute(sql: """
            CREATE TABLE account_tiers (
                name TEXT PRIMARY KEY NOT NULL,
                rate REAL NOT NULL,
                burst REAL NOT NULL,
                exports_per_day INTEGER NOT NULL,
                max_keys INTEGER NOT NULL
            );
            CREATE TABLE accounts (
                id TEXT PRIMARY KEY NOT NULL,
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
                requests INTEGER NOT NULL DEFAULT 0,
                rows_served INTEGER NOT NULL DEFAULT 0,
                bytes INTEGER NOT NULL DEFAULT 0,
                exports INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (day, key_id, dataset_id)
            ) WITHOUT ROWID;
            CREATE INDEX usage_by_key ON usage_daily(key_id, day);
            CREATE INDEX usage_by_dataset ON usage_daily(dataset_id, day);
            """)
            for t in CatalogRules.seedTiers {
                try db.execute(sql: "INSERT INTO account_tiers (name, rate, burst, exports_per_day, max_keys) VALUES (?, ?, ?, ?, ?)",
                               arguments: [t.name, t.rate, t.burst, t.exportsPerDay, t.maxKeys])
            }
        }
        m.registerMigration("v9-version-changes") { db in
            // The changes of each version from the one before it, computed at import by the
            // dataset's primary key (`VersionDiff`, JSON).
            try db.execute(sql: "ALTER TABLE versions ADD COLUMN changes_json TEXT")
        }
        m.registerMigration("v10-dataset-events") { db in
            // Publications and withdrawals in order (the Atom feeds, webhooks), from the audit
            // chain's events for the ones before.
            try db.execute(sql: """
            CREATE TABLE dataset_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                dataset_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('published', 'withdrawn')),
                version INTEGER,
                tier TEXT,
                at TEXT NOT NULL
            );
            CREATE INDEX dataset_events_by_dataset ON dataset_events(dataset_id, seq);
            INSERT INTO dataset_events (dataset_id, kind, version, tier, at)
                SELECT dataset_id, CASE action WHEN 'dataset.publish' THEN 'published' ELSE 'withdrawn' END,
                       json_extract(detail_json, '$.version'), json_extract(detail_json, '$.tier'), at
                FROM audit_events WHERE action IN ('dataset.publish', 'dataset.withdraw') AND dataset_id IS NOT NULL ORDER BY seq;
            """)
        }
        m.registerMigration("v11-webhooks") { db in
            // Key holders' webhooks, and the outbox of their deliveries (one row per event and
            // webhook, added in the publishing transaction).
            try db.execute(sql: """
            CREATE TABLE webhooks (
                id TEXT PRIMARY KEY NOT NULL,
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
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                webhook_id TEXT NOT NULL REFERENCES webhooks(id),
                event_seq INTEGER NOT NULL REFERENCES dataset_events(seq),
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
            """)
        }
        m.registerMigration("v12-version-quality") { db in
            // Each version's quality report, computed at import (`QualityReport`, JSON).
            try db.execute(sql: "ALTER TABLE versions ADD COLUMN quality_json TEXT")
        }
        m.registerMigration("v13-dataset-divisions") { db in
            // The divisions a dataset's manifest declares (`spatial`), each with its city and,
            // for a county, the county: what the catalog's city and county facets count.
            try db.execute(sql: """
            CREATE TABLE dataset_divisions (
                dataset_id TEXT NOT NULL REFERENCES datasets(id),
                code TEXT NOT NULL,
                city TEXT,
                county TEXT,
                PRIMARY KEY (dataset_id, code)
            );
            CREATE INDEX dataset_divisions_by_city ON dataset_divisions(city);
            CREATE INDEX dataset_divisions_by_county ON dataset_divisions(county);
            """)
        }
        m.registerMigration("v14-scorecards") { db in
            // Monthly department scorecards, kept forever (`Scorecard`, JSON).
            try db.execute(sql: """
            CREATE TABLE scorecards (
                month TEXT NOT NULL,
                department TEXT NOT NULL,
                figures_json TEXT NOT NULL,
                taken_at TEXT NOT NULL,
                PRIMARY KEY (month, department)
            );
            """)
        }
        m.registerMigration("v15-departments") { db in
            // Departments own datasets (by the manifest's `department`); publishers' and
            // reviewers' keys belong to one. The keys table is rebuilt for its wider role check.
            try db.execute(sql: """
            CREATE TABLE departments (
                name TEXT PRIMARY KEY NOT NULL,
                parent TEXT REFERENCES departments(name),
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL
            );
            CREATE TABLE api_keys_new (
                id TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('developer', 'partner', 'steward', 'publisher', 'reviewer', 'security')),
                key_hash TEXT NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT,
                account_id TEXT REFERENCES accounts(id),
                department TEXT REFERENCES departments(name),
                CHECK ((role IN ('publisher', 'reviewer')) = (department IS NOT NULL))
            );
            INSERT INTO api_keys_new (id, name, role, key_hash, created_at, revoked_at, account_id)
                SELECT id, name, role, key_hash, created_at, revoked_at, account_id FROM api_keys;
            DROP TABLE api_keys;
            ALTER TABLE api_keys_new RENAME TO api_keys;
            CREATE INDEX keys_by_account ON api_keys(account_id);
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
            """)
        }
        m.registerMigration("v16-proposals") { db in
            // Publications and policy changes proposed by a department's publisher, approved by someone else.
            try db.execute(sql: """
            CREATE TABLE proposals (
                id TEXT PRIMARY KEY NOT NULL,
                dataset_id TEXT NOT NULL REFERENCES datasets(id),
                department TEXT NOT NULL,
                version INTEGER NOT NULL,
                tier TEXT NOT NULL CHECK (tier IN ('open', 'conditional', 'restricted')),
                override_reason TEXT,
                needs_security INTEGER NOT NULL,
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
            """)
        }
        m.registerMigration("v17-duties") { db in
            // Departments' duty lists: datasets to open or share by a date.
            try db.execute(sql: """
            CREATE TABLE duties (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
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
            """)
        }
        m.registerMigration("v18-data-requests") { db in
            // Data requests (数据需求) on the public board, their votes and comments.
            try db.execute(sql: """
            CREATE TABLE data_requests (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
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
                request_id INTEGER NOT NULL REFERENCES data_requests(id),
                key_id TEXT NOT NULL,
                at TEXT NOT NULL,
                PRIMARY KEY (request_id, key_id)
            );
            CREATE TABLE request_comments (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id INTEGER NOT NULL REFERENCES data_requests(id),
                key_id TEXT NOT NULL,
                role TEXT NOT NULL,
                from_department INTEGER NOT NULL,
                text TEXT NOT NULL,
                at TEXT NOT NULL
            );
            CREATE INDEX request_comments_by_request ON request_comments(request_id);
            """)
        }
        m.registerMigration("v19-error-reports-and-ratings") { db in
            // Error reports (纠错) on datasets, fields or rows, and ratings (好差评), one per key and dataset.
            try db.execute(sql: """
            CREATE TABLE error_reports (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
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
            """)
        }
        m.registerMigration("v20-showcases") { db in
            // Applications and research results built on the data (应用场景), shown once approved.
            try db.execute(sql: """
            CREATE TABLE showcases (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
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
            """)
        }
        return m
    }
}
