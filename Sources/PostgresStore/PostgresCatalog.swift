import Audit
import Crypto
import Foundation
import KaifangCore
import Logging
import Synchronization
import PostgresNIO
import Storage

/// The shared store: the catalog in PostgreSQL, for several stateless `kaifang serve`
/// replicas. Every replica keeps only a local working directory (temporary files, jobs'
/// working folders, a verified cache of version files).
///
/// - Every write is one transaction that appends its audit event under the lock of the chain's
///   head row (`audit_head`), so the chain has one total order whichever replica writes.
/// - Lookups every request makes (publication stamp, key, license) are cached per replica and
///   trusted while `catalog_changes.seq`, which every write but read events moves, stands still;
///   a request reads it once, so a revocation counts on every replica from the next request.
/// - Version files are immutable SQLite files kept by their SHA-256 (`BlobStore`) and fetched
///   into a local cache that checks the hash before a file is first opened (`VersionCache`).
public final class PostgresCatalog: CatalogStore, @unchecked Sendable {
    public let directory: DataDirectory
    public let url: StoreURL
    let client: PGClient
    let blobs: BlobStore
    let cache: VersionCache
    let logger: Logger
    private let secretLock = NSLock()
    private var secret: SymmetricKey?

    private let seenMark = Mutex<Int64>(0)
    /// The chain's head as this process last appended it (a hint: a batch after it needs no lock).
    let knownHead = Mutex<(seq: Int64, hash: String)?>(nil)
    /// The connection every optimistic batch goes out on, so that they reach the store in the
    /// order they were chained, with the append call prepared on it (parsed and planned once
    /// per connection rather than once per batch).
    let appendLane = Mutex<AppendLane?>(nil)
    /// Batches appended, and guesses of the head that missed since the last that held.
    let optimism = Mutex<(batches: Int, misses: Int)>((0, 0))
    /// How this process's batches went in: in one optimistic statement, or (after a miss or
    /// while guessing rests) in a transaction that locked the head.
    package let appendPaths = Mutex<(guessed: Int, locked: Int)>((0, 0))
    let stamps = MarkCache<String?>()
    let keyRows = MarkCache<(hash: String, record: APIKeyRecord)?>()
    let licenseCache = MarkCache<LicenseRecord?>()

    public var kind: String { "postgres" }
    public var isShared: Bool { true }

    /// Connects, migrates, and makes sure the platform secret exists.
    /// - Parameters:
    ///   - directory: the local working directory (created if missing).
    ///   - blobsDirectory: keep version files in this shared folder instead of the database.
    ///   - cacheBytes: the bound of the local version-file cache.
    /// - Throws: `KaifangError.runtime` with a one-line reason when the store cannot be reached
    ///   or migrated.
    ///   - create: make the catalog when the database has none (`kaifang init`); otherwise such a
    ///     database is refused, so a mistyped URL never grows a second, empty catalog.
    public init(url: StoreURL, directory: DataDirectory, blobsDirectory: String? = nil, cacheBytes: Int64 = 8 << 30,
                maxConnections: Int = 16, create: Bool = true, logger: Logger = Logger(label: "kaifang.store")) throws {
        self.url = url
        self.directory = directory
        self.logger = logger
        try directory.prepareLocal()
        client = try PGClient(url: url, maxConnections: maxConnections, logger: logger)
        blobs = blobsDirectory.map { BlobStore.folder($0) } ?? .database
        cache = VersionCache(folder: directory.root.appendingPathComponent("cache", isDirectory: true), bound: cacheBytes)
        do {
            if !create, try client.query("SELECT to_regclass('kaifang_migrations') IS NOT NULL AS present").first?.bool("present") != true {
                throw KaifangError.badInput("the store \(url.redacted) holds no Kaifang catalog: run `kaifang init --store …` once to create it")
            }
            try PGMigrations.migrate(client)
            try ensureSecret()
            try ensureHead()
        } catch {
            client.close()
            throw error
        }
        directory.sweepTemporaryFiles()
    }

    /// Closes the store's connections.
    public func close() {
        closeLane()
        client.close()
    }

    // MARK: - Change marks

    public func changeMark() throws -> Int64 {
        let seq = try client.query("SELECT seq FROM catalog_changes WHERE id = 1").first?.int64("seq") ?? 0
        saw(seq)
        return seq
    }

    public var lastSeenMark: Int64 { seenMark.withLock { $0 } }

    /// Keeps the highest mark seen.
    func saw(_ seq: Int64) { seenMark.withLock { $0 = max($0, seq) } }

    /// The current change mark (once per request scope).
    func mark() throws -> Int64 {
        if let scope = CatalogReadScope.current { return try scope.mark(changeMark) }
        return try changeMark()
    }

    /// Runs a write transaction: the chain's head row locked first (one writer at a time, so the
    /// chain has one order), `body`, then the change mark moves (unless `signal` is false: read
    /// events and job bookkeeping change nothing a replica caches).
    @discardableResult
    func write<T>(signal: Bool = true, _ body: (PGTransaction, inout ChainCursor) throws -> T) throws -> T {
        let result = try client.transaction { tx -> T in
            var chain = try ChainCursor(tx)
            let r = try body(tx, &chain)
            if signal { try tx.query("UPDATE catalog_changes SET seq = seq + 1 WHERE id = 1") }
            return r
        }
        CatalogReadScope.current?.invalidate()
        return result
    }

    func read<T>(_ body: (PGTransaction) throws -> T) throws -> T {
        try client.withConnection { c in try body(PGTransaction(connection: c, logger: logger)) }
    }

    // MARK: - Secret and files

    /// Fills the chain's head row when the store has none yet (a new store, or one made before it).
    func ensureHead() throws {
        try client.transaction { tx in
            guard try tx.query("SELECT seq FROM audit_head WHERE id = 1").isEmpty else { return }
            if let last = try tx.query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first {
                try tx.query("INSERT INTO audit_head (id, seq, hash) VALUES (1, \(try last.int64("seq")), \(try last.string("hash"))) ON CONFLICT (id) DO NOTHING")
            } else {
                try tx.query("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, \(AuditChain.genesis)) ON CONFLICT (id) DO NOTHING")
            }
        }
    }

    func ensureSecret() throws {
        if try client.query("SELECT value FROM platform WHERE name = 'secret'").first != nil { return }
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        try client.query("INSERT INTO platform (name, value) VALUES ('secret', \(Data(bytes))) ON CONFLICT (name) DO NOTHING")
    }

    public func pseudonymSecret() throws -> SymmetricKey {
        secretLock.lock()
        if let secret { secretLock.unlock(); return secret }
        secretLock.unlock()
        guard let data = try client.query("SELECT value FROM platform WHERE name = 'secret'").first?.data("value"), data.count == 32 else {
            throw KaifangError.runtime("the store \(url.redacted) has no platform secret: run `kaifang init --store …` once")
        }
        let key = SymmetricKey(data: data)
        secretLock.lock()
        secret = key
        secretLock.unlock()
        return key
    }

    public func localFile(_ version: VersionRecord) throws -> String {
        guard version.file.hasPrefix("blob:") else {
            throw KaifangError.runtime("version \(version.number) of \(version.dataset) names no stored file")
        }
        let sha = String(version.file.dropFirst(5))
        return try cache.file(sha256: sha) { target in try blobs.fetch(sha256: sha, to: target, client: client) }
    }

    // MARK: - Records

    func datasetRecord(_ r: PGRow) throws -> DatasetRecord {
        DatasetRecord(manifest: try CatalogRules.decodeManifest(try r.string("manifest_json")),
                      tier: try r.optString("tier").flatMap(Tier.init(rawValue:)),
                      publishedVersion: try r.optInt("published_version"),
                      createdAt: try r.string("created_at"), updatedAt: try r.string("updated_at"))
    }

    func versionRecord(_ r: PGRow) throws -> VersionRecord {
        VersionRecord(dataset: try r.string("dataset_id"), number: try r.int("number"), rowCount: try r.int("row_count"),
                      sha256: try r.string("sha256"), source: try r.string("source"), file: try r.string("file"),
                      manifest: try CatalogRules.decodeManifest(try r.string("manifest_json")),
                      createdAt: try r.string("created_at"), createdBy: try r.string("created_by"))
    }

    func saveManifest(_ tx: PGTransaction, _ m: DatasetManifest, at: String) throws {
        let json = try CatalogRules.manifestJSON(m)
        let search = CatalogRules.searchText(m).lowercased()
        try tx.query("""
            INSERT INTO datasets (id, title, description, department, topic, update_frequency, license, should_open, entity, manifest_json, created_at, updated_at, search_text)
            VALUES (\(m.id), \(m.title), \(m.description), \(m.department), \(m.topic), \(m.updateFrequency), \(m.license), \(m.shouldOpen), \(m.entity), \(json), \(at), \(at), \(search))
            ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,
                department = excluded.department, topic = excluded.topic, update_frequency = excluded.update_frequency,
                license = excluded.license, should_open = excluded.should_open, entity = excluded.entity,
                manifest_json = excluded.manifest_json, updated_at = excluded.updated_at, search_text = excluded.search_text
            """)
        try tx.query("DELETE FROM fields WHERE dataset_id = \(m.id)")
        try tx.query("DELETE FROM dataset_divisions WHERE dataset_id = \(m.id)")
        for g in CatalogRules.divisionRows(m) {
            try tx.query("INSERT INTO dataset_divisions (dataset_id, code, city, county) VALUES (\(m.id), \(g.code), \(g.city), \(g.county))")
        }
        for (i, f) in m.fields.enumerated() {
            try tx.query("""
                INSERT INTO fields (dataset_id, position, name, title, type, semantic, level, qi, min, max, action)
                VALUES (\(m.id), \(i), \(f.name), \(f.title), \(f.type.rawValue), \(f.semantic?.rawValue), \(f.level.rawValue), \(f.qi), \(f.min), \(f.max), \(f.action?.rawValue))
                """)
        }
    }

    // MARK: - Datasets and versions

    public func dataset(_ id: String) throws -> DatasetRecord? {
        try client.query("SELECT * FROM datasets WHERE id = \(id)").first.map(datasetRecord)
    }

    public func versions(_ id: String) throws -> [VersionRecord] {
        try client.query("SELECT * FROM versions WHERE dataset_id = \(id) ORDER BY number").map(versionRecord)
    }

    public func versionReport(_ id: String, _ number: Int, _ kind: VersionReportKind) throws -> String? {
        try client.query("SELECT \(unescaped: kind.column) AS report FROM versions WHERE dataset_id = \(id) AND number = \(number)").first?.optString("report")
    }

    public func recordVersionReport(_ id: String, _ number: Int, _ kind: VersionReportKind, json: String) throws {
        try client.query("UPDATE versions SET \(unescaped: kind.column) = \(json) WHERE dataset_id = \(id) AND number = \(number)")
    }

    public func datasetEvents(dataset: String?, limit: Int) throws -> [DatasetEvent] {
        let rows = dataset == nil
            ? try client.query("SELECT * FROM dataset_events ORDER BY seq DESC LIMIT \(limit)")
            : try client.query("SELECT * FROM dataset_events WHERE dataset_id = \(dataset) ORDER BY seq DESC LIMIT \(limit)")
        return try rows.map {
            DatasetEvent(seq: try $0.int64("seq"), dataset: try $0.string("dataset_id"), kind: try $0.string("kind"), version: try $0.optInt("version"),
                         tier: try $0.optString("tier").flatMap(Tier.init(rawValue:)), at: try $0.string("at"))
        }
    }

    public func version(_ id: String, _ number: Int) throws -> VersionRecord? {
        try client.query("SELECT * FROM versions WHERE dataset_id = \(id) AND number = \(number)").first.map(versionRecord)
    }

    public func publicationStamp(_ id: String) throws -> String? {
        try stamps.value(id, mark: try mark()) {
            try client.query("SELECT updated_at, tier, published_version FROM datasets WHERE id = \(id)").first.map { r in
                "\(try r.string("updated_at"))|\(try r.optString("tier") ?? "-")|\(try r.optInt("published_version").map(String.init) ?? "-")"
            }
        }
    }

    public func publishedVersion(_ id: String) throws -> (DatasetRecord, VersionRecord)? {
        let rows = try client.query("""
            SELECT d.*, v.dataset_id AS v_dataset_id, v.number AS v_number, v.row_count AS v_row_count, v.sha256 AS v_sha256,
                   v.source AS v_source, v.file AS v_file, v.manifest_json AS v_manifest_json, v.created_at AS v_created_at, v.created_by AS v_created_by
            FROM datasets d JOIN versions v ON v.dataset_id = d.id AND v.number = d.published_version
            WHERE d.id = \(id)
            """)
        guard let r = rows.first else { return nil }
        let v = VersionRecord(dataset: try r.string("v_dataset_id"), number: try r.int("v_number"), rowCount: try r.int("v_row_count"),
                              sha256: try r.string("v_sha256"), source: try r.string("v_source"), file: try r.string("v_file"),
                              manifest: try CatalogRules.decodeManifest(try r.string("v_manifest_json")),
                              createdAt: try r.string("v_created_at"), createdBy: try r.string("v_created_by"))
        return (try datasetRecord(r), v)
    }

    public func commitVersion(manifest: DatasetManifest, temporaryFile: String, rowCount: Int, sha256: String,
                              source: String, actor: String, rejected: Int, upload: UploadKey?) throws -> VersionRecord {
        // The file goes in first, under its own hash (a second copy of the same bytes is kept
        // once); the version row that names it is committed after, so a reader never meets a
        // version without its file.
        let fileSHA = try blobs.store(path: temporaryFile, client: client)
        try cache.adopt(path: temporaryFile, sha256: fileSHA)
        let at = CatalogRules.now()
        return try write { tx, chain in
            if let upload, let made = try tx.query("""
                SELECT version FROM uploads WHERE key_id = \(upload.keyID) AND idempotency_key = \(upload.idempotencyKey)
                """).first {
                throw CatalogRules.uploadKeyUsed(upload, version: try made.int("version"))
            }
            try saveManifest(tx, manifest, at: at)
            let number = (try tx.query("SELECT max(number) AS n FROM versions WHERE dataset_id = \(manifest.id)").first?.optInt("n") ?? 0) + 1
            let json = try CatalogRules.manifestJSON(manifest)
            let file = "blob:\(fileSHA)"
            try tx.query("""
                INSERT INTO versions (dataset_id, number, row_count, sha256, source, file, file_sha256, manifest_json, created_at, created_by)
                VALUES (\(manifest.id), \(number), \(rowCount), \(sha256), \(source), \(file), \(fileSHA), \(json), \(at), \(actor))
                """)
            var detail: [String: JSONValue] = [
                "version": .int(Int64(number)), "rows": .int(Int64(rowCount)), "sha256": .string(sha256),
                "source": .string(source), "rejected": .int(Int64(rejected)),
            ]
            if let upload {
                // Two uploads with one key racing: the second waits on the first's row and fails here.
                try tx.query("""
                    INSERT INTO uploads (key_id, idempotency_key, dataset_id, version, created_at)
                    VALUES (\(upload.keyID), \(upload.idempotencyKey), \(manifest.id), \(number), \(at))
                    """)
                detail["idempotency_key"] = .string(upload.idempotencyKey)
            }
            try chain.append(tx, actor: actor, action: "dataset.import", dataset: manifest.id, detail: detail)
            return VersionRecord(dataset: manifest.id, number: number, rowCount: rowCount, sha256: sha256, source: source,
                                 file: file, manifest: manifest, createdAt: at, createdBy: actor)
        }
    }

    public func uploadedVersion(_ upload: UploadKey) throws -> VersionRecord? {
        try client.query("""
            SELECT v.* FROM uploads u JOIN versions v ON v.dataset_id = u.dataset_id AND v.number = u.version
            WHERE u.key_id = \(upload.keyID) AND u.idempotency_key = \(upload.idempotencyKey)
            """).first.map(versionRecord)
    }

    @discardableResult
    public func publish(dataset id: String, version: Int?, tier: Tier, actor: String, reason: String?,
                        detail extra: [String: JSONValue]) throws -> DatasetRecord {
        try write { tx, chain in try publish(tx, &chain, dataset: id, version: version, tier: tier, actor: actor, reason: reason, detail: extra) }
    }

    /// `version` when the dataset has it, else (nil) its newest.
    /// - Throws: `KaifangError.notFound` (no such version), `.conflict` (no version at all).
    func versionToPublish(_ tx: PGTransaction, dataset id: String, _ version: Int?) throws -> Int {
        if let version {
            guard try tx.query("SELECT number FROM versions WHERE dataset_id = \(id) AND number = \(version)").first != nil else {
                throw CatalogRules.noVersion(id, version)
            }
            return version
        }
        guard let n = try tx.query("SELECT max(number) AS n FROM versions WHERE dataset_id = \(id)").first?.optInt("n") else {
            throw CatalogRules.nothingToPublish(id)
        }
        return n
    }

    /// Publishes inside the caller's transaction (with its audit event and feed entry).
    func publish(_ tx: PGTransaction, _ chain: inout ChainCursor, dataset id: String, version: Int?, tier: Tier, actor: String, reason: String?,
                 detail extra: [String: JSONValue]) throws -> DatasetRecord {
        guard let previous = try tx.query("SELECT tier, published_version FROM datasets WHERE id = \(id) FOR UPDATE").first else {
            throw CatalogRules.noDataset(id)
        }
        let number = try versionToPublish(tx, dataset: id, version)
        try tx.query("UPDATE datasets SET tier = \(tier.rawValue), published_version = \(number), updated_at = \(CatalogRules.now()) WHERE id = \(id)")
        var detail: [String: JSONValue] = ["version": .int(Int64(number)), "tier": .string(tier.rawValue)]
        if let pt = try previous.optString("tier") { detail["previous_tier"] = .string(pt) }
        if let pv = try previous.optInt("published_version") { detail["previous_version"] = .int(Int64(pv)) }
        if let reason { detail["reason"] = .string(reason) }
        detail.merge(extra) { a, _ in a }
        try chain.append(tx, actor: actor, action: "dataset.publish", dataset: id, detail: detail)
        guard let seq = try tx.query("INSERT INTO dataset_events (dataset_id, kind, version, tier, at) VALUES (\(id), 'published', \(number), \(tier.rawValue), \(CatalogRules.now())) RETURNING seq").first?.int64("seq") else {
            throw KaifangError.runtime("the publication event was not recorded")
        }
        try enqueueDeliveries(tx, seq: seq, dataset: id)
        guard let row = try tx.query("SELECT * FROM datasets WHERE id = \(id)").first else { throw CatalogRules.noDataset(id) }
        return try datasetRecord(row)
    }

    public func updateManifest(_ manifest: DatasetManifest, actor: String, action: String, detail: [String: JSONValue]) throws {
        try manifest.validate()
        try write { tx, chain in try updateManifest(tx, &chain, manifest, actor: actor, action: action, detail: detail) }
    }

    public func registerDataset(_ manifest: DatasetManifest, actor: String) throws -> DatasetRecord {
        try manifest.validate()
        return try write { tx, chain in
            guard try tx.query("SELECT id FROM datasets WHERE id = \(manifest.id) FOR UPDATE").first == nil else {
                throw CatalogRules.datasetExists(manifest.id)
            }
            try saveManifest(tx, manifest, at: CatalogRules.now())
            try chain.append(tx, actor: actor, action: "dataset.register", dataset: manifest.id, detail: ["department": .string(manifest.department)])
            guard let row = try tx.query("SELECT * FROM datasets WHERE id = \(manifest.id)").first else { throw CatalogRules.noDataset(manifest.id) }
            return try datasetRecord(row)
        }
    }

    /// Replaces a dataset's manifest inside the caller's transaction, with its audit event.
    func updateManifest(_ tx: PGTransaction, _ chain: inout ChainCursor, _ manifest: DatasetManifest, actor: String, action: String,
                        detail: [String: JSONValue]) throws {
        guard let row = try tx.query("SELECT manifest_json FROM datasets WHERE id = \(manifest.id) FOR UPDATE").first else {
            throw CatalogRules.noDataset(manifest.id)
        }
        try CatalogRules.checkSameFields(current: try CatalogRules.decodeManifest(try row.string("manifest_json")), new: manifest)
        try saveManifest(tx, manifest, at: CatalogRules.now())
        try chain.append(tx, actor: actor, action: action, dataset: manifest.id, detail: detail)
    }

    public func withdraw(dataset id: String, actor: String) throws {
        try write { tx, chain in
            guard try tx.query("SELECT id FROM datasets WHERE id = \(id) FOR UPDATE").first != nil else { throw CatalogRules.noDataset(id) }
            try tx.query("UPDATE datasets SET tier = NULL, published_version = NULL, updated_at = \(CatalogRules.now()) WHERE id = \(id)")
            try chain.append(tx, actor: actor, action: "dataset.withdraw", dataset: id, detail: [:])
            guard let seq = try tx.query("INSERT INTO dataset_events (dataset_id, kind, at) VALUES (\(id), 'withdrawn', \(CatalogRules.now())) RETURNING seq").first?.int64("seq") else {
                throw KaifangError.runtime("the withdrawal event was not recorded")
            }
            try enqueueDeliveries(tx, seq: seq, dataset: id)
        }
    }

    public func datasetCount() throws -> Int {
        try client.query("SELECT count(*) AS n FROM datasets").first?.int("n") ?? 0
    }

    public func search(_ query: DatasetQuery) throws -> DatasetPage {
        let offset = try CatalogRules.searchOffset(query.cursor)
        let limit = CatalogRules.pageSize(query.limit)
        // The same words and the same matching as the embedded store: each word a
        // case-insensitive substring of the dataset's search text.
        var base: [String] = []
        var binds = PostgresBindings()
        if !query.includeUnpublished { base.append("d.tier IS NOT NULL AND d.published_version IS NOT NULL") }
        for word in CatalogRules.searchWords(query.q) {
            binds.append(String(word).lowercased())
            base.append("strpos(d.search_text, $\(binds.count)) > 0")
        }
        let from = " FROM datasets d" + CatalogRules.publishedVersionJoin
        let filters = CatalogRules.searchFilters(query)
        func conditions(excluding facet: String?) -> [String] {
            filters.filter { $0.facet != facet }.map { f in
                binds.append(f.value)
                return f.condition.replacingOccurrences(of: "?", with: "$\(binds.count)")
            }
        }
        func whereClause(_ conds: [String]) -> String { conds.isEmpty ? "" : " WHERE " + conds.joined(separator: " AND ") }
        let shared = binds
        return try read { tx in
            binds = shared
            let all = base + conditions(excluding: nil)
            let total = try tx.query(PostgresQuery(unsafeSQL: "SELECT count(*) AS n" + from + whereClause(all), binds: binds)).first?.int("n") ?? 0
            var pageBinds = binds
            pageBinds.append(limit + 1)
            pageBinds.append(offset)
            let rows = try tx.query(PostgresQuery(unsafeSQL: """
                SELECT d.*, v.row_count AS v_rows, v.created_at AS v_at FROM datasets d
                LEFT JOIN versions v ON v.dataset_id = d.id AND v.number = d.published_version
                \(whereClause(all)) ORDER BY d.title COLLATE "C", d.id COLLATE "C" LIMIT $\(pageBinds.count - 1) OFFSET $\(pageBinds.count)
                """, binds: pageBinds))
            var facets: [String: [FacetCount]] = [:]
            for name in CatalogRules.facets {
                binds = shared
                let (value, join) = CatalogRules.facetSQL(name, now: query.now)
                let conds = base + conditions(excluding: name) + ["\(value) IS NOT NULL AND \(value) <> ''"]
                facets[name] = try tx.query(PostgresQuery(unsafeSQL: "SELECT \(value) AS value, count(DISTINCT d.id) AS n" + from + join + whereClause(conds)
                                                          + " GROUP BY \(value) ORDER BY count(DISTINCT d.id) DESC, \(value) COLLATE \"C\"", binds: binds))
                    .map { FacetCount(value: try $0.string("value"), count: try $0.int("n")) }
            }
            var items: [(record: DatasetRecord, rowCount: Int, updatedAt: String?)] = []
            for r in rows.prefix(limit) { items.append((try datasetRecord(r), try r.optInt("v_rows") ?? 0, try r.optString("v_at"))) }
            return DatasetPage(datasets: items, total: total, facets: facets,
                               nextCursor: rows.count > limit ? CatalogRules.searchCursor(offset: offset + limit) : nil)
        }
    }

    // MARK: - Scorecards

    public func recordScorecards(month: String, figures: [(department: String, json: String)], actor: String) throws -> Int {
        guard !figures.isEmpty else { return 0 }
        let at = CatalogRules.now()
        // Under the chain's lock: replicas taking the same month one after the other, the
        // second finds it kept.
        return try write { tx, chain in
            guard try tx.query("SELECT count(*) AS n FROM scorecards WHERE month = \(month)").first?.int("n") == 0 else { return 0 }
            for f in figures {
                try tx.query("INSERT INTO scorecards (month, department, figures_json, taken_at) VALUES (\(month), \(f.department), \(f.json), \(at))")
            }
            try chain.append(tx, actor: actor, action: "scorecards.snapshot", dataset: nil,
                             detail: ["month": .string(month), "departments": .int(Int64(figures.count))])
            return figures.count
        }
    }

    public func scorecards(month: String?) throws -> [ScorecardSnapshot] {
        let rows = month == nil
            ? try client.query("SELECT * FROM scorecards ORDER BY month COLLATE \"C\", department COLLATE \"C\"")
            : try client.query("SELECT * FROM scorecards WHERE month = \(month!) ORDER BY department COLLATE \"C\"")
        return try rows.map {
            ScorecardSnapshot(month: try $0.string("month"), department: try $0.string("department"),
                              figuresJSON: try $0.string("figures_json"), takenAt: try $0.string("taken_at"))
        }
    }

    public func stats(since: String) throws -> CatalogStats {
        try read { tx in
            func count(_ sql: String) throws -> Int { try tx.query(PostgresQuery(unsafeSQL: sql)).first?.int("n") ?? 0 }
            func facets(_ q: PostgresQuery) throws -> [FacetCount] {
                try tx.query(q).map { FacetCount(value: try $0.string("v"), count: try $0.int("n")) }
            }
            let datasets = try count("SELECT count(*) AS n FROM datasets")
            let published = try count("SELECT count(*) AS n FROM datasets WHERE tier IS NOT NULL AND published_version IS NOT NULL")
            let byTier = try facets("SELECT tier AS v, count(*) AS n FROM datasets WHERE tier IS NOT NULL GROUP BY tier ORDER BY count(*) DESC, tier COLLATE \"C\"")
            let byDepartment = try facets("SELECT department AS v, count(*) AS n FROM datasets WHERE tier IS NOT NULL AND department <> '' GROUP BY department ORDER BY count(*) DESC, department COLLATE \"C\"")
            let shouldOpen = try count("SELECT count(*) AS n FROM datasets WHERE should_open")
            let opened = try count("SELECT count(*) AS n FROM datasets WHERE should_open AND tier IN ('open', 'conditional') AND published_version IS NOT NULL")
            let day = String(since.prefix(10))
            let reads = try facets("SELECT dataset_id AS v, SUM(n)::bigint AS n FROM read_counts WHERE day >= \(day) GROUP BY dataset_id ORDER BY SUM(n) DESC, dataset_id COLLATE \"C\"")
            return CatalogStats(datasets: datasets, published: published, byTier: byTier, byDepartment: byDepartment, shouldOpen: shouldOpen,
                                opened: opened, openRate: shouldOpen == 0 ? 1 : Double(opened) / Double(shouldOpen), reads: reads)
        }
    }

    // MARK: - Keys

    public func createKey(role: Role, name: String, account: String?, department: String?, actor: String) throws -> (APIKeyRecord, String) {
        let trimmed = try CatalogRules.keyName(name)
        try CatalogRules.checkKeyDepartment(role: role, department: department)
        return try write { tx, chain in
            if let department, try tx.query("SELECT 1 AS one FROM departments WHERE name = \(department)").isEmpty {
                throw CatalogRules.unknownDepartment(department)
            }
            return try insertKey(tx, &chain, role: role, name: trimmed, account: account, department: department, actor: actor)
        }
    }

    /// Inserts a key and its audit event inside the caller's transaction (an account's row is
    /// locked while its keys are counted).
    func insertKey(_ tx: PGTransaction, _ chain: inout ChainCursor, role: Role, name: String, account: String?, department: String? = nil,
                   actor: String) throws -> (APIKeyRecord, String) {
        if let account {
            guard let row = try tx.query("""
                SELECT a.suspended_at, t.max_keys, (SELECT count(*) FROM api_keys k WHERE k.account_id = a.id AND k.revoked_at IS NULL)::integer AS active
                FROM accounts a JOIN account_tiers t ON t.name = a.tier WHERE a.id = \(account) FOR UPDATE OF a
                """).first else {
                throw CatalogRules.unknownAccount(account)
            }
            try CatalogRules.checkRoomForKey(suspended: try row.optString("suspended_at") != nil, active: try row.int("active"), max: try row.int("max_keys"))
        }
        let (id, key) = CatalogRules.newKey()
        let at = CatalogRules.now()
        try tx.query("""
            INSERT INTO api_keys (id, name, role, key_hash, created_at, account_id, department)
            VALUES (\(id), \(name), \(role.rawValue), \(CatalogRules.hashKey(key)), \(at), \(account), \(department))
            """)
        var detail: [String: JSONValue] = ["key_id": .string(id), "role": .string(role.rawValue), "name": .string(name)]
        if let account { detail["account"] = .string(account) }
        if let department { detail["department"] = .string(department) }
        try chain.append(tx, actor: actor, action: "key.create", dataset: nil, detail: detail)
        guard let row = try tx.query(PostgresQuery(unsafeSQL: CatalogRules.keySelect + " WHERE k.id = $1", binds: bindings(id))).first else {
            throw KaifangError.runtime("the key just made is missing")
        }
        return (try keyRecord(row), key)
    }

    /// A key from a row of `CatalogRules.keySelect`.
    func keyRecord(_ r: PGRow) throws -> APIKeyRecord {
        let rate = try r.optDouble("tier_rate")
        return APIKeyRecord(id: try r.string("id"), name: try r.string("name"), role: Role(rawValue: try r.string("role")) ?? .developer,
                            createdAt: try r.string("created_at"), revokedAt: try r.optString("revoked_at"), accountID: try r.optString("account_id"),
                            suspension: try r.optString("account_suspended_at").map { _ in try r.optString("account_suspended_reason") ?? "" },
                            limits: try rate.map { KeyLimits(rate: $0, burst: try r.double("tier_burst"), exportsPerDay: try r.int("tier_exports")) },
                            department: try r.optString("department"))
    }

    // MARK: - Departments

    public func createDepartment(name: String, parent: String?, actor: String) throws -> DepartmentRecord {
        let name = try CatalogRules.departmentName(name)
        let parent = try parent.map { try CatalogRules.departmentName($0, what: "--parent") }
        return try write { tx, chain in
            if let parent, try tx.query("SELECT 1 AS one FROM departments WHERE name = \(parent)").isEmpty {
                throw CatalogRules.unknownDepartment(parent)
            }
            let at = CatalogRules.now()
            let made = try tx.query("""
                INSERT INTO departments (name, parent, created_at, created_by) VALUES (\(name), \(parent), \(at), \(actor))
                ON CONFLICT (name) DO NOTHING RETURNING name
                """)
            guard !made.isEmpty else { throw CatalogRules.duplicateDepartment(name) }
            var detail: [String: JSONValue] = ["department": .string(name)]
            if let parent { detail["parent"] = .string(parent) }
            try chain.append(tx, actor: actor, action: "department.create", dataset: nil, detail: detail)
            return DepartmentRecord(name: name, parent: parent, createdAt: at, createdBy: actor)
        }
    }

    public func departments() throws -> [DepartmentRecord] {
        try client.query("SELECT * FROM departments ORDER BY name").map {
            DepartmentRecord(name: try $0.string("name"), parent: try $0.optString("parent"), createdAt: try $0.string("created_at"),
                             createdBy: try $0.string("created_by"))
        }
    }

    public func authenticate(_ presented: String) throws -> APIKeyRecord? {
        guard let id = CatalogRules.keyID(presented) else { return nil }
        let found = try keyRows.value(id, mark: try mark()) {
            try client.query(PostgresQuery(unsafeSQL: CatalogRules.keySelect + " WHERE k.id = $1", binds: bindings(id))).first.map { (try $0.string("key_hash"), try keyRecord($0)) }
        }
        guard let (stored, record) = found, CatalogRules.matches(presented, storedHash: stored) else { return nil }
        return record.isActive ? record : nil
    }

    public func keys(account: String?) throws -> [APIKeyRecord] {
        if let account {
            return try client.query(PostgresQuery(unsafeSQL: CatalogRules.keySelect + " WHERE k.account_id = $1 ORDER BY k.created_at DESC, k.id", binds: bindings(account))).map(keyRecord)
        }
        return try client.query(PostgresQuery(unsafeSQL: CatalogRules.keySelect + " ORDER BY k.created_at DESC, k.id")).map(keyRecord)
    }

    public func revokeKey(_ id: String, actor: String) throws {
        try write { tx, chain in
            let revoked = try tx.query("UPDATE api_keys SET revoked_at = \(CatalogRules.now()) WHERE id = \(id) AND revoked_at IS NULL RETURNING id")
            guard !revoked.isEmpty else { throw KaifangError.notFound("no active key '\(id)': `kaifang key list` shows the key ids") }
            try chain.append(tx, actor: actor, action: "key.revoke", dataset: nil, detail: ["key_id": .string(id)])
        }
    }

    public func keyName(_ id: String) throws -> String? {
        try client.query("SELECT name FROM api_keys WHERE id = \(id)").first?.string("name")
    }

    // MARK: - Rate limits

    public func takeToken(bucket: String, rate: Double, burst: Double) throws -> Double? {
        guard rate > 0 else { return nil }
        let interval = 1 / rate, tolerance = max(0, burst - 1) * interval
        // GCRA on the database's clock: the bucket's arrival time moves on by one interval when
        // it is no further ahead of now than the tolerance; otherwise nothing changes.
        let admitted = try client.query("""
            INSERT INTO rate_buckets AS b (bucket, tat) VALUES (\(bucket), extract(epoch FROM clock_timestamp())::float8 + \(interval))
            ON CONFLICT (bucket) DO UPDATE SET tat = greatest(b.tat, extract(epoch FROM clock_timestamp())::float8) + \(interval)
                WHERE b.tat - extract(epoch FROM clock_timestamp())::float8 <= \(tolerance)
            RETURNING tat
            """)
        guard admitted.isEmpty else { return nil }
        let wait = try client.query("SELECT tat - extract(epoch FROM clock_timestamp())::float8 - \(tolerance) AS wait FROM rate_buckets WHERE bucket = \(bucket)")
        return max(0.001, try wait.first?.double("wait") ?? interval)
    }
}

/// Values cached with the change mark they were read under.
final class MarkCache<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (mark: Int64, value: Value)] = [:]

    func value(_ key: String, mark: Int64, read: () throws -> Value) throws -> Value {
        lock.lock()
        if let hit = entries[key], hit.mark == mark { lock.unlock(); return hit.value }
        lock.unlock()
        let value = try read()
        lock.lock()
        if entries.count >= 4096 { entries.removeAll(keepingCapacity: true) }
        entries[key] = (mark, value)
        lock.unlock()
        return value
    }
}
