import Audit
import Crypto
import Foundation
import GRDB
import GRDBSQLite
import KaifangCore
import VersionFormat

/// The catalog: datasets, versions, fields, keys, licenses, applications, jobs and the audit
/// chain, in one SQLite database (WAL). It never exists unmigrated. Every write is one named
/// transaction that also appends its audit event, so no action happens unrecorded.
public struct CatalogDatabase: CatalogStore {
    /// The database (a pool in WAL mode).
    public let writer: DatabasePool
    /// The data directory it belongs to.
    public let directory: DataDirectory
    /// GRDB-free connections for the publication stamp (read when `changes` moved).
    let rawReads: RawReads
    /// The highest seq this process has anchored (so a write that appended nothing skips the file).
    let anchored: AnchorMark
    /// Grows after every committed change but read events (`ChangeSignal`).
    let changes: ChangeSignal
    /// Publication stamps by dataset, valid while `changes` shows no new write.
    let stamps = SignalledCache<String?>()
    /// API keys (stored digest and record) by key id, and active licenses by key, dataset and
    /// use, cached the same way (an expired license is looked up again).
    let keyRows = SignalledCache<(hash: String, record: APIKeyRecord)?>()
    let licenseCache = SignalledCache<LicenseRecord?>()
    /// Rate-limit buckets of this process.
    let buckets = TokenBuckets()

    /// Opens (creating if needed) the catalog of a data directory and migrates it.
    /// - Throws: `KaifangError.runtime` when the database cannot be opened.
    public init(directory: DataDirectory) throws {
        self.directory = directory
        try directory.prepare()
        rawReads = RawReads(path: directory.catalogPath)
        anchored = AnchorMark(path: directory.root.appendingPathComponent("audit.head").path)
        changes = ChangeSignal(path: directory.root.appendingPathComponent("catalog.changes").path)
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            writer = try DatabasePool(path: directory.catalogPath, configuration: config)
            try CatalogMigrations.migrator.migrate(writer)
        } catch {
            throw KaifangError.runtime("cannot open the catalog \(directory.catalogPath)", cause: error)
        }
        directory.sweepTemporaryFiles()
        if changes.mark() == nil { changes.bump() }
    }

    static func now() -> String { CatalogRules.now() }

    /// The embedded store.
    public var kind: String { "embedded" }

    /// One server process owns the data directory.
    public var isShared: Bool { false }

    /// The embedded store keeps its caches by its own signal file (`ChangeSignal`).
    public func changeMark() throws -> Int64 { 0 }
    public var lastSeenMark: Int64 { 0 }

    /// The data directory's `secret.key`.
    public func pseudonymSecret() throws -> SymmetricKey { try directory.secret() }

    /// The version's file in the data directory (written and fsynced by this process's import,
    /// renamed into place by the commit, never changed after).
    public func localFile(_ version: VersionRecord) throws -> String { directory.absolute(version.file) }

    /// Takes a token from an in-memory bucket: the embedded store serves one process.
    public func takeToken(bucket: String, rate: Double, burst: Double) throws -> Double? {
        buckets.take(bucket, rate: rate, burst: burst, now: Date().timeIntervalSince1970)
    }

    // MARK: - Audit

    /// Appends one event to the hash chain inside the caller's transaction.
    @discardableResult
    static func appendAudit(_ db: Database, actor: String, action: String, dataset: String?, detail: [String: JSONValue]) throws -> AuditEvent {
        var head = try chainHead(db)
        var reads = ReadCounts()
        let event = try appendAudit(db, after: &head, reads: &reads, actor: actor, action: action, dataset: dataset, detail: detail)
        try reads.store(db)
        return event
    }

    /// The last event's seq and hash (0 and the genesis hash for an empty chain).
    static func chainHead(_ db: Database) throws -> (seq: Int64, hash: String) {
        // Through the C API on GRDB's cached statement: every batch of read events asks.
        let stmt = try db.cachedStatement(sql: "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").sqliteStatement
        sqlite3_reset(stmt)
        defer { sqlite3_reset(stmt) }
        switch sqlite3_step(stmt) {
        case SQLITE_ROW:
            return (sqlite3_column_int64(stmt, 0), sqlite3_column_text(stmt, 1).map { String(cString: $0) } ?? "")
        case SQLITE_DONE:
            return (0, AuditChain.genesis)
        case let rc:
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    /// Appends one event after `head` (which it advances) and counts a read in `reads`
    /// (by day and dataset) for `ReadCounts.store`.
    static func appendAudit(_ db: Database, after head: inout (seq: Int64, hash: String), reads: inout ReadCounts,
                            actor: String, action: String, dataset: String?, detail: [String: JSONValue]) throws -> AuditEvent {
        let at = try appendAudit(db, after: &head, reads: &reads, actor: actor, action: action, dataset: dataset, canonicalDetail: JSONValue.object(detail).canonicalBytes)
        return AuditEvent(seq: head.seq, at: at, actor: actor, action: action, dataset: dataset, detail: detail)
    }

    /// The same with the detail already in its canonical form (`JSONValue.canonicalBytes`);
    /// returns the event's time.
    static func appendAudit(_ db: Database, after head: inout (seq: Int64, hash: String), reads: inout ReadCounts,
                            actor: String, action: String, dataset: String?, canonicalDetail detailBytes: [UInt8]) throws -> String {
        let seq = head.seq + 1
        let prev = head.hash
        let event = AuditEvent(seq: seq, at: now(), actor: actor, action: action, dataset: dataset, detail: [:])
        let hash = AuditChain.hash(previous: prev, canonical: event.canonicalBytes(detail: detailBytes))
        // Bound through the C API on GRDB's cached statement: every served read comes here, and
        // GRDB's argument arrays cost a third of the insert.
        let stmt = try db.cachedStatement(sql: "INSERT INTO audit_events (seq, at, actor, action, dataset_id, detail_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").sqliteStatement
        sqlite3_reset(stmt)
        sqlite3_bind_int64(stmt, 1, seq)
        sqlite3_bind_text(stmt, 2, event.at, -1, sqliteTransient)
        sqlite3_bind_text(stmt, 3, actor, -1, sqliteTransient)
        sqlite3_bind_text(stmt, 4, action, -1, sqliteTransient)
        if let dataset { sqlite3_bind_text(stmt, 5, dataset, -1, sqliteTransient) } else { sqlite3_bind_null(stmt, 5) }
        detailBytes.withUnsafeBufferPointer { b in
            // The empty object is at least "{}", so the buffer is never empty.
            _ = b.baseAddress.map { sqlite3_bind_text(stmt, 6, UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self), Int32(b.count), sqliteTransient) }
        }
        sqlite3_bind_text(stmt, 7, prev, -1, sqliteTransient)
        sqlite3_bind_text(stmt, 8, hash, -1, sqliteTransient)
        let rc = sqlite3_step(stmt)
        sqlite3_reset(stmt)
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
        head = (seq, hash)
        if let dataset, case let n = CatalogRules.readCount(action), n != 0 {
            reads.add(day: event.at.utf8.prefix(10), dataset: dataset, n)
        }
        return event.at
    }

    /// Reads counted by day and dataset for `read_counts` (`GET /v1/stats`). A batch of read
    /// events is nearly always one day and a few datasets: a short list scanned linearly.
    struct ReadCounts {
        private(set) var entries: [(day: String, dataset: String, n: Int)] = []

        mutating func add(day: Substring.UTF8View, dataset: String, _ n: Int) {
            for i in entries.indices where entries[i].dataset == dataset && entries[i].day.utf8.elementsEqual(day) {
                entries[i].n += n
                return
            }
            entries.append((String(Substring(day)), dataset, n))
        }

        /// Adds the counts to `read_counts` inside the caller's transaction.
        func store(_ db: Database) throws {
            for e in entries {
                try db.cachedStatement(sql: "INSERT INTO read_counts (day, dataset_id, n) VALUES (?, ?, ?) ON CONFLICT (day, dataset_id) DO UPDATE SET n = n + excluded.n")
                    .execute(arguments: [e.day, e.dataset, e.n])
            }
        }
    }

    /// Records an event on its own (for reads, which change nothing else).
    /// - Throws: `KaifangError.runtime`.
    public func audit(actor: String, action: String, dataset: String?, detail: [String: JSONValue]) throws {
        try write(signal: false) { db in _ = try Self.appendAudit(db, actor: actor, action: action, dataset: dataset, detail: detail) }
    }

    /// All stored events with their links, in order.
    public func auditEvents(dataset: String? = nil, actor: String? = nil, limit: Int? = nil) throws -> [(event: AuditEvent, previous: String, hash: String)] {
        try read { db in
            var sql = "SELECT * FROM audit_events"
            var conds: [String] = []
            var args: [DatabaseValueConvertible?] = []
            if let dataset { conds.append("dataset_id = ?"); args.append(dataset) }
            if let actor { conds.append("actor = ?"); args.append(actor) }
            if !conds.isEmpty { sql += " WHERE " + conds.joined(separator: " AND ") }
            sql += " ORDER BY seq"
            if let limit { sql = "SELECT * FROM (\(sql.replacingOccurrences(of: "ORDER BY seq", with: "ORDER BY seq DESC")) LIMIT \(limit)) ORDER BY seq" }
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { row in
                let detailJSON: String = row["detail_json"]
                let detail = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(detailJSON.utf8))) ?? [:]
                let event = AuditEvent(seq: row["seq"], at: row["at"], actor: row["actor"], action: row["action"],
                                       dataset: row["dataset_id"], detail: detail)
                return (event, row["prev_hash"], row["hash"])
            }
        }
    }

    /// Recomputes the whole chain, then checks it against the anchors: the data directory's
    /// `audit.head` (the head after the last write) and any kept elsewhere (`seq`, `hash`). An
    /// anchor beyond the stored head means the newest events were deleted; a different hash at
    /// the anchor's event means the chain was rewritten.
    public func verifyAudit(anchors: [(seq: Int64, hash: String)] = []) throws -> AuditChain.Verdict {
        var all = anchors.map { (source: "the given anchor", seq: $0.seq, hash: $0.hash) }
        if let file = auditAnchor() { all.append((source: "audit.head", seq: file.seq, hash: file.hash)) }
        return try read { db in
            try CatalogRules.verify(anchors: all) { verifier in
                let rows = try Row.fetchCursor(db, sql: "SELECT seq, at, actor, action, dataset_id, detail_json, prev_hash, hash FROM audit_events ORDER BY seq")
                while let r = try rows.next() {
                    let detail: [UInt8] = try r.withUnsafeData(atIndex: 5) { $0.map { Array($0) } } ?? Array("{}".utf8)
                    if let broken = verifier.check(seq: r[0], at: r[1], actor: r[2], action: r[3], dataset: r[4], detailJSON: detail,
                                                   previous: r[6], hash: r[7]) { return broken }
                }
                return nil
            }
        }
    }

    /// The chain's head: the last event's seq and hash.
    public func auditHead() throws -> (seq: Int64, hash: String)? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").map { ($0["seq"], $0["hash"]) }
        }
    }

    /// `audit.head` in the data directory: `<seq> <hash>`, rewritten after every write that
    /// appended events (never moved backwards).
    public var auditAnchorPath: String { anchored.path }

    public func auditAnchor() -> (seq: Int64, hash: String)? {
        let fd = open(auditAnchorPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return Self.parseAnchor(fd)
    }

    /// The record at the start of an open `audit.head`: `<seq> <hash>`, padded.
    static func parseAnchor(_ fd: Int32) -> (seq: Int64, hash: String)? {
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 256, 0) }
        guard n > 0 else { return nil }
        let parts = buf[..<n].split(whereSeparator: { $0 == 0x20 || $0 == 0x0A })
        guard parts.count >= 2, let seq = Int64(String(decoding: parts[0], as: UTF8.self)) else { return nil }
        return (seq, String(decoding: parts[1], as: UTF8.self))
    }

    /// Writes `audit.head` when `head` is beyond what is anchored: in place, one fixed-width
    /// record (a rename and an fsync per write cost more than the write they anchor; like the
    /// catalog's own commits, synchronous=NORMAL, the file may lag after a power loss).
    func updateAuditAnchor(_ head: (seq: Int64, hash: String)?) {
        guard let head else { return }
        // Writes that appended nothing (job claims, row-set records) stop here, without touching the file.
        anchored.write(head)
    }

    // MARK: - Helpers

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try writer.read(body) } catch let e as KaifangError { throw e } catch {
            throw KaifangError.runtime("catalog read failed", cause: error)
        }
    }

    /// One SELECT (atomic by itself), without the snapshot transaction of `read`: the hot
    /// per-request lookups (publication stamp, key, license) use it with cached statements.
    func readOne<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try writer.unsafeRead(body) } catch let e as KaifangError { throw e } catch {
            throw KaifangError.runtime("catalog read failed", cause: error)
        }
    }

    /// Runs `body` in a write transaction, then anchors the audit chain's head and — unless
    /// `signal` is false (read events, which change nothing a reader caches) — bumps `changes`.
    func write<T>(signal: Bool = true, _ body: (Database) throws -> T) throws -> T {
        let result: T
        let head: (seq: Int64, hash: String)?
        do {
            (result, head) = try writer.write { db in
                let r = try body(db)
                let h = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"))
                    .map { (seq: $0[0] as Int64, hash: $0[1] as String) }
                return (r, h)
            }
        } catch let e as KaifangError { throw e } catch {
            throw KaifangError.runtime("catalog write failed", cause: error)
        }
        updateAuditAnchor(head)
        if signal { changes.bump() }
        return result
    }

    static func decodeManifest(_ json: String) throws -> DatasetManifest { try CatalogRules.decodeManifest(json) }

    static func manifestJSON(_ m: DatasetManifest) throws -> String { try CatalogRules.manifestJSON(m) }

    static func datasetRecord(_ row: Row) throws -> DatasetRecord {
        DatasetRecord(manifest: try decodeManifest(row["manifest_json"]),
                      tier: (row["tier"] as String?).flatMap(Tier.init(rawValue:)),
                      publishedVersion: row["published_version"],
                      createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    static func versionRecord(_ row: Row) throws -> VersionRecord {
        VersionRecord(dataset: row["dataset_id"], number: row["number"], rowCount: row["row_count"], sha256: row["sha256"],
                      source: row["source"], file: row["file"], manifest: try decodeManifest(row["manifest_json"]),
                      createdAt: row["created_at"], createdBy: row["created_by"])
    }

    static func saveManifest(_ db: Database, _ m: DatasetManifest, at: String) throws {
        let json = try manifestJSON(m)
        try db.execute(sql: """
            INSERT INTO datasets (id, title, description, department, topic, update_frequency, license, should_open, entity, manifest_json, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET title = excluded.title, description = excluded.description,
                department = excluded.department, topic = excluded.topic, update_frequency = excluded.update_frequency,
                license = excluded.license, should_open = excluded.should_open, entity = excluded.entity,
                manifest_json = excluded.manifest_json, updated_at = excluded.updated_at
            """, arguments: [m.id, m.title, m.description, m.department, m.topic, m.updateFrequency, m.license,
                             m.shouldOpen, m.entity, json, at, at])
        try db.execute(sql: "DELETE FROM fields WHERE dataset_id = ?", arguments: [m.id])
        try db.execute(sql: "DELETE FROM dataset_divisions WHERE dataset_id = ?", arguments: [m.id])
        for g in CatalogRules.divisionRows(m) {
            try db.execute(sql: "INSERT INTO dataset_divisions (dataset_id, code, city, county) VALUES (?, ?, ?, ?)", arguments: [m.id, g.code, g.city, g.county])
        }
        for (i, f) in m.fields.enumerated() {
            try db.execute(sql: "INSERT INTO fields (dataset_id, position, name, title, type, semantic, level, qi, min, max, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [m.id, i, f.name, f.title, f.type.rawValue, f.semantic?.rawValue, f.level.rawValue, f.qi, f.min, f.max, f.action?.rawValue])
        }
    }

    // MARK: - Datasets and versions

    /// One dataset, or nil.
    public func dataset(_ id: String) throws -> DatasetRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM datasets WHERE id = ?", arguments: [id]).map(Self.datasetRecord) }
    }

    /// One dataset, or a not-found error that says how to list them.
    /// - Throws: `KaifangError.notFound`.
    public func requireDataset(_ id: String) throws -> DatasetRecord {
        guard let d = try dataset(id) else {
            throw KaifangError.notFound("no dataset '\(id)' in the catalog: `kaifang dataset list` shows the ids")
        }
        return d
    }

    /// The versions of a dataset, oldest first.
    public func versions(_ id: String) throws -> [VersionRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM versions WHERE dataset_id = ? ORDER BY number", arguments: [id]).map(Self.versionRecord)
        }
    }

    public func versionReport(_ id: String, _ number: Int, _ kind: VersionReportKind) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT \(kind.column) FROM versions WHERE dataset_id = ? AND number = ?", arguments: [id, number]) }
    }

    public func recordVersionReport(_ id: String, _ number: Int, _ kind: VersionReportKind, json: String) throws {
        try write(signal: false) { db in
            try db.execute(sql: "UPDATE versions SET \(kind.column) = ? WHERE dataset_id = ? AND number = ?", arguments: [json, id, number])
        }
    }

    public func datasetEvents(dataset: String?, limit: Int) throws -> [DatasetEvent] {
        try read { db in
            let rows = dataset == nil
                ? try Row.fetchAll(db, sql: "SELECT * FROM dataset_events ORDER BY seq DESC LIMIT ?", arguments: [limit])
                : try Row.fetchAll(db, sql: "SELECT * FROM dataset_events WHERE dataset_id = ? ORDER BY seq DESC LIMIT ?", arguments: [dataset, limit])
            return rows.map {
                DatasetEvent(seq: $0["seq"], dataset: $0["dataset_id"], kind: $0["kind"], version: $0["version"],
                             tier: ($0["tier"] as String?).flatMap(Tier.init(rawValue:)), at: $0["at"])
            }
        }
    }

    /// One version, or nil.
    public func version(_ id: String, _ number: Int) throws -> VersionRecord? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM versions WHERE dataset_id = ? AND number = ?", arguments: [id, number]).map(Self.versionRecord)
        }
    }

    /// What changes when a dataset is republished or its policy edited: (updated_at, tier,
    /// published version). One cheap query; callers cache the full records by it.
    /// Cached until the next catalog change in any process (`ChangeSignal`): read events, which
    /// the server commits all the time, do not count.
    public func publicationStamp(_ id: String) throws -> String? {
        try stamps.value(id, mark: changes.mark()) { try readPublicationStamp(id) }
    }

    func readPublicationStamp(_ id: String) throws -> String? {
        try rawReads.withStatement("SELECT updated_at, tier, published_version FROM datasets WHERE id = ?", [id]) { stmt in
            switch sqlite3_step(stmt) {
            case SQLITE_DONE: return nil
            case SQLITE_ROW:
                return "\(RawReads.text(stmt, 0) ?? "")|\(RawReads.text(stmt, 1) ?? "-")|\(RawReads.text(stmt, 2) ?? "-")"
            default: throw KaifangError.runtime("catalog read failed: \(String(cString: sqlite3_errmsg(sqlite3_db_handle(stmt))))")
            }
        }
    }

    /// The published version of a dataset, or nil when unpublished.
    public func publishedVersion(_ id: String) throws -> (DatasetRecord, VersionRecord)? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM datasets WHERE id = ?", arguments: [id]) else { return nil }
            let d = try Self.datasetRecord(row)
            guard let n = d.publishedVersion,
                  let v = try Row.fetchOne(db, sql: "SELECT * FROM versions WHERE dataset_id = ? AND number = ?", arguments: [id, n]) else { return nil }
            return (d, try Self.versionRecord(v))
        }
    }

    /// Makes a version visible: moves the finished temporary file to `versions/<id>/<n>.sqlite`
    /// and records the dataset (metadata from `manifest`) and the version in one transaction.
    /// A crash before the commit leaves at most an orphan file that no catalog row names.
    /// - Throws: `KaifangError.runtime`.
    public func commitVersion(manifest: DatasetManifest, temporaryFile: String, rowCount: Int, sha256: String,
                              source: String, actor: String, rejected: Int, upload: UploadKey?) throws -> VersionRecord {
        let at = Self.now()
        return try write { db in
            if let upload, let made = try Int.fetchOne(db, sql: "SELECT version FROM uploads WHERE key_id = ? AND idempotency_key = ?",
                                                       arguments: [upload.keyID, upload.idempotencyKey]) {
                throw CatalogRules.uploadKeyUsed(upload, version: made)
            }
            try Self.saveManifest(db, manifest, at: at)
            let number = (try Int.fetchOne(db, sql: "SELECT max(number) FROM versions WHERE dataset_id = ?", arguments: [manifest.id]) ?? 0) + 1
            let relative = DataDirectory.versionRelativePath(dataset: manifest.id, number: number)
            let target = directory.absolute(relative)
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard rename(temporaryFile, target) == 0 else {
                throw KaifangError.runtime("cannot move the new version into place at \(target): \(String(cString: strerror(errno)))")
            }
            let json = try Self.manifestJSON(manifest)
            try db.execute(sql: "INSERT INTO versions (dataset_id, number, row_count, sha256, source, file, manifest_json, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [manifest.id, number, rowCount, sha256, source, relative, json, at, actor])
            var detail: [String: JSONValue] = [
                "version": .int(Int64(number)), "rows": .int(Int64(rowCount)), "sha256": .string(sha256),
                "source": .string(source), "rejected": .int(Int64(rejected)),
            ]
            if let upload {
                try db.execute(sql: "INSERT INTO uploads (key_id, idempotency_key, dataset_id, version, created_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [upload.keyID, upload.idempotencyKey, manifest.id, number, at])
                detail["idempotency_key"] = .string(upload.idempotencyKey)
            }
            try Self.appendAudit(db, actor: actor, action: "dataset.import", dataset: manifest.id, detail: detail)
            return VersionRecord(dataset: manifest.id, number: number, rowCount: rowCount, sha256: sha256, source: source,
                                 file: relative, manifest: manifest, createdAt: at, createdBy: actor)
        }
    }

    public func uploadedVersion(_ upload: UploadKey) throws -> VersionRecord? {
        try read { db in
            try Row.fetchOne(db, sql: """
                SELECT v.* FROM uploads u JOIN versions v ON v.dataset_id = u.dataset_id AND v.number = u.version
                WHERE u.key_id = ? AND u.idempotency_key = ?
                """, arguments: [upload.keyID, upload.idempotencyKey]).map(Self.versionRecord)
        }
    }

    /// Publishes a dataset at a tier, pointing readers at `version` (default: the newest), atomically.
    /// - Throws: `KaifangError.notFound` (no dataset or version), `.conflict` (no version yet).
    @discardableResult
    public func publish(dataset id: String, version: Int? = nil, tier: Tier, actor: String, reason: String? = nil,
                        detail extra: [String: JSONValue] = [:]) throws -> DatasetRecord {
        try write { db in try Self.publish(db, dataset: id, version: version, tier: tier, actor: actor, reason: reason, detail: extra) }
    }

    /// `version` when the dataset has it, else (nil) its newest.
    /// - Throws: `KaifangError.notFound` (no such version), `.conflict` (no version at all).
    static func versionToPublish(_ db: Database, dataset id: String, _ version: Int?) throws -> Int {
        if let version {
            guard try Int.fetchOne(db, sql: "SELECT number FROM versions WHERE dataset_id = ? AND number = ?", arguments: [id, version]) != nil else {
                throw CatalogRules.noVersion(id, version)
            }
            return version
        }
        guard let n = try Int.fetchOne(db, sql: "SELECT max(number) FROM versions WHERE dataset_id = ?", arguments: [id]) else {
            throw CatalogRules.nothingToPublish(id)
        }
        return n
    }

    /// Publishes inside the caller's transaction (with its audit event and feed entry).
    static func publish(_ db: Database, dataset id: String, version: Int?, tier: Tier, actor: String, reason: String?,
                        detail extra: [String: JSONValue]) throws -> DatasetRecord {
        guard try Row.fetchOne(db, sql: "SELECT id FROM datasets WHERE id = ?", arguments: [id]) != nil else {
            throw KaifangError.notFound("no dataset '\(id)' in the catalog: `kaifang dataset list` shows the ids")
        }
        let number = try versionToPublish(db, dataset: id, version)
        let previous = try Row.fetchOne(db, sql: "SELECT tier, published_version FROM datasets WHERE id = ?", arguments: [id])
        try db.execute(sql: "UPDATE datasets SET tier = ?, published_version = ?, updated_at = ? WHERE id = ?",
                       arguments: [tier.rawValue, number, Self.now(), id])
        var detail: [String: JSONValue] = ["version": .int(Int64(number)), "tier": .string(tier.rawValue)]
        if let pt: String = previous?["tier"] { detail["previous_tier"] = .string(pt) }
        if let pv: Int64 = previous?["published_version"] { detail["previous_version"] = .int(pv) }
        if let reason { detail["reason"] = .string(reason) }
        detail.merge(extra) { a, _ in a }
        try Self.appendAudit(db, actor: actor, action: "dataset.publish", dataset: id, detail: detail)
        try db.execute(sql: "INSERT INTO dataset_events (dataset_id, kind, version, tier, at) VALUES (?, 'published', ?, ?, ?)",
                       arguments: [id, number, tier.rawValue, Self.now()])
        try Self.enqueueDeliveries(db, seq: db.lastInsertedRowID, dataset: id)
        return try Self.datasetRecord(try Row.fetchOne(db, sql: "SELECT * FROM datasets WHERE id = ?", arguments: [id])!)
    }

    /// Replaces a dataset's current manifest (metadata, field levels, semantic types, actions),
    /// as `dataset classify --apply` and `dataset field` do. Versions keep the schema they were
    /// imported with; serving applies the current field policy.
    /// - Throws: `KaifangError.notFound`, `.badInput` (a field that no version has).
    public func updateManifest(_ manifest: DatasetManifest, actor: String, action: String, detail: [String: JSONValue]) throws {
        try manifest.validate()
        try write { db in try Self.updateManifest(db, manifest, actor: actor, action: action, detail: detail) }
    }

    public func registerDataset(_ manifest: DatasetManifest, actor: String) throws -> DatasetRecord {
        try manifest.validate()
        return try write { db in
            guard try Row.fetchOne(db, sql: "SELECT id FROM datasets WHERE id = ?", arguments: [manifest.id]) == nil else {
                throw CatalogRules.datasetExists(manifest.id)
            }
            try Self.saveManifest(db, manifest, at: Self.now())
            _ = try Self.appendAudit(db, actor: actor, action: "dataset.register", dataset: manifest.id, detail: ["department": .string(manifest.department)])
            return try Self.datasetRecord(try Row.fetchOne(db, sql: "SELECT * FROM datasets WHERE id = ?", arguments: [manifest.id])!)
        }
    }

    /// Replaces a dataset's manifest inside the caller's transaction, with its audit event.
    static func updateManifest(_ db: Database, _ manifest: DatasetManifest, actor: String, action: String, detail: [String: JSONValue]) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT manifest_json FROM datasets WHERE id = ?", arguments: [manifest.id]) else {
            throw KaifangError.notFound("no dataset '\(manifest.id)' in the catalog: `kaifang dataset list` shows the ids")
        }
        try CatalogRules.checkSameFields(current: try Self.decodeManifest(row["manifest_json"]), new: manifest)
        try Self.saveManifest(db, manifest, at: Self.now())
        try Self.appendAudit(db, actor: actor, action: action, dataset: manifest.id, detail: detail)
    }

    /// Unpublishes a dataset: only stewards see it afterwards; versions stay.
    /// - Throws: `KaifangError.notFound`.
    public func withdraw(dataset id: String, actor: String) throws {
        try write { db in
            guard try Row.fetchOne(db, sql: "SELECT id FROM datasets WHERE id = ?", arguments: [id]) != nil else {
                throw KaifangError.notFound("no dataset '\(id)' in the catalog: `kaifang dataset list` shows the ids")
            }
            try db.execute(sql: "UPDATE datasets SET tier = NULL, published_version = NULL, updated_at = ? WHERE id = ?", arguments: [Self.now(), id])
            try Self.appendAudit(db, actor: actor, action: "dataset.withdraw", dataset: id, detail: [:])
            try db.execute(sql: "INSERT INTO dataset_events (dataset_id, kind, at) VALUES (?, 'withdrawn', ?)", arguments: [id, Self.now()])
            try Self.enqueueDeliveries(db, seq: db.lastInsertedRowID, dataset: id)
        }
    }

    /// Number of datasets (for health checks).
    public func datasetCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM datasets") ?? 0 }
    }

    /// Searches the catalog with facets and an opaque cursor.
    /// - Throws: `KaifangError.badInput` for a cursor that this server did not make.
    public func search(_ query: DatasetQuery) throws -> DatasetPage {
        let offset = try CatalogRules.searchOffset(query.cursor)
        let limit = CatalogRules.pageSize(query.limit)
        return try read { db in
            var base: [String] = []
            var args: [DatabaseValueConvertible?] = []
            if !query.includeUnpublished { base.append("d.tier IS NOT NULL AND d.published_version IS NOT NULL") }
            do {
                for word in CatalogRules.searchWords(query.q) {
                    if word.count >= 3 {
                        // FTS5 trigram index; the word is one quoted phrase (no FTS syntax from callers).
                        base.append("d.id IN (SELECT id FROM dataset_fts WHERE dataset_fts MATCH ?)")
                        args.append("\"" + word.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
                        continue
                    }
                    let like = "%" + String(word).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
                    base.append("(d.id LIKE ? ESCAPE '\\' OR d.title LIKE ? ESCAPE '\\' OR d.description LIKE ? ESCAPE '\\' OR d.department LIKE ? ESCAPE '\\' OR d.topic LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM fields f WHERE f.dataset_id = d.id AND (f.title LIKE ? ESCAPE '\\' OR f.name LIKE ? ESCAPE '\\')))")
                    args.append(contentsOf: Array(repeating: like, count: 7))
                }
            }
            func whereClause(_ extra: [String]) -> String {
                let all = base + extra
                return all.isEmpty ? "" : " WHERE " + all.joined(separator: " AND ")
            }
            let filters = CatalogRules.searchFilters(query)
            func conditions(excluding facet: String?) -> (sql: [String], args: [DatabaseValueConvertible?]) {
                let kept = filters.filter { $0.facet != facet }
                return (kept.map(\.condition), kept.map(\.value))
            }
            let from = " FROM datasets d" + CatalogRules.publishedVersionJoin
            let (conds, condArgs) = conditions(excluding: nil)
            let all = StatementArguments(args + condArgs)
            let total = try Int.fetchOne(db, sql: "SELECT count(*)" + from + whereClause(conds), arguments: all) ?? 0
            let rows = try Row.fetchAll(db, sql: """
                SELECT d.*, v.row_count AS v_rows, v.created_at AS v_at FROM datasets d
                LEFT JOIN versions v ON v.dataset_id = d.id AND v.number = d.published_version
                \(whereClause(conds)) ORDER BY d.title, d.id LIMIT ? OFFSET ?
                """, arguments: all + [limit + 1, offset])
            // Facets: counts over the query with every filter except the facet's own.
            var facets: [String: [FacetCount]] = [:]
            for name in CatalogRules.facets {
                let (value, join) = CatalogRules.facetSQL(name, now: query.now)
                let (fs, fa) = conditions(excluding: name)
                let sql = "SELECT \(value) AS value, count(DISTINCT d.id) AS n" + from + join
                    + whereClause(fs + ["\(value) IS NOT NULL AND \(value) <> ''"]) + " GROUP BY 1 ORDER BY n DESC, value"
                facets[name] = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args + fa)).map { FacetCount(value: $0["value"], count: $0["n"]) }
            }
            var items: [(record: DatasetRecord, rowCount: Int, updatedAt: String?)] = []
            for row in rows.prefix(limit) {
                items.append((try Self.datasetRecord(row), row["v_rows"] ?? 0, row["v_at"]))
            }
            return DatasetPage(datasets: items, total: total, facets: facets,
                               nextCursor: rows.count > limit ? CatalogRules.searchCursor(offset: offset + limit) : nil)
        }
    }

    // MARK: - Scorecards

    public func recordScorecards(month: String, figures: [(department: String, json: String)], actor: String) throws -> Int {
        guard !figures.isEmpty else { return 0 }
        let at = Self.now()
        return try write { db in
            guard try Int.fetchOne(db, sql: "SELECT count(*) FROM scorecards WHERE month = ?", arguments: [month]) == 0 else { return 0 }
            for f in figures {
                try db.execute(sql: "INSERT INTO scorecards (month, department, figures_json, taken_at) VALUES (?, ?, ?, ?)",
                               arguments: [month, f.department, f.json, at])
            }
            _ = try Self.appendAudit(db, actor: actor, action: "scorecards.snapshot", dataset: nil,
                                     detail: ["month": .string(month), "departments": .int(Int64(figures.count))])
            return figures.count
        }
    }

    public func scorecards(month: String?) throws -> [ScorecardSnapshot] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM scorecards WHERE ? IS NULL OR month = ? ORDER BY month, department", arguments: [month, month]).map {
                ScorecardSnapshot(month: $0["month"], department: $0["department"], figuresJSON: $0["figures_json"], takenAt: $0["taken_at"])
            }
        }
    }

    // MARK: - Keys

    /// Creates an API key, for `account` when given. The secret is returned once and only its
    /// SHA-256 is stored.
    /// - Returns: the record and the full key `kf_<id>_<secret>`.
    /// - Throws: `KaifangError.badInput` for an empty name; for an account, `.notFound` or
    ///   `.conflict` (suspended, or holding its tier's number of keys).
    public func createKey(role: Role, name: String, account: String?, department: String?, actor: String) throws -> (APIKeyRecord, String) {
        let trimmed = try CatalogRules.keyName(name)
        try CatalogRules.checkKeyDepartment(role: role, department: department)
        return try write { db in
            if let department, try Bool.fetchOne(db, sql: "SELECT 1 FROM departments WHERE name = ?", arguments: [department]) != true {
                throw CatalogRules.unknownDepartment(department)
            }
            return try Self.insertKey(db, role: role, name: trimmed, account: account, department: department, actor: actor)
        }
    }

    /// Inserts a key and its audit event inside the caller's transaction.
    static func insertKey(_ db: Database, role: Role, name: String, account: String?, department: String? = nil, actor: String) throws -> (APIKeyRecord, String) {
        if let account {
            guard let row = try Row.fetchOne(db, sql: """
                SELECT a.suspended_at, t.max_keys, (SELECT count(*) FROM api_keys k WHERE k.account_id = a.id AND k.revoked_at IS NULL) AS active
                FROM accounts a JOIN account_tiers t ON t.name = a.tier WHERE a.id = ?
                """, arguments: [account]) else {
                throw CatalogRules.unknownAccount(account)
            }
            try CatalogRules.checkRoomForKey(suspended: (row["suspended_at"] as String?) != nil, active: row["active"], max: row["max_keys"])
        }
        let (id, key) = CatalogRules.newKey()
        let at = Self.now()
        try db.execute(sql: "INSERT INTO api_keys (id, name, role, key_hash, created_at, account_id, department) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [id, name, role.rawValue, Self.hashKey(key), at, account, department])
        var detail: [String: JSONValue] = ["key_id": .string(id), "role": .string(role.rawValue), "name": .string(name)]
        if let account { detail["account"] = .string(account) }
        if let department { detail["department"] = .string(department) }
        _ = try Self.appendAudit(db, actor: actor, action: "key.create", dataset: nil, detail: detail)
        guard let row = try Row.fetchOne(db, sql: CatalogRules.keySelect + " WHERE k.id = ?", arguments: [id]) else {
            throw KaifangError.runtime("the key just made is missing")
        }
        return (keyRecord(row), key)
    }

    static func hashKey(_ key: String) -> String { CatalogRules.hashKey(key) }

    /// The unrevoked key matching a presented secret, or nil (unknown, malformed or revoked).
    public func authenticate(_ presented: String) throws -> APIKeyRecord? {
        guard let id = CatalogRules.keyID(presented) else { return nil }
        let found = try keyRows.value(id, mark: changes.mark()) {
            try readOne { db -> (hash: String, record: APIKeyRecord)? in
                guard let row = try Row.fetchOne(db.cachedStatement(sql: CatalogRules.keySelect + " WHERE k.id = ?"), arguments: [id]) else { return nil }
                return (row["key_hash"], Self.keyRecord(row))
            }
        }
        guard let (stored, record) = found, CatalogRules.matches(presented, storedHash: stored) else { return nil }
        return record.isActive ? record : nil
    }

    /// A key from a row of `CatalogRules.keySelect`.
    static func keyRecord(_ row: Row) -> APIKeyRecord {
        let rate: Double? = row["tier_rate"]
        return APIKeyRecord(id: row["id"], name: row["name"], role: Role(rawValue: row["role"]) ?? .developer,
                            createdAt: row["created_at"], revokedAt: row["revoked_at"], accountID: row["account_id"],
                            suspension: (row["account_suspended_at"] as String?).map { _ in row["account_suspended_reason"] ?? "" },
                            limits: rate.map { KeyLimits(rate: $0, burst: row["tier_burst"], exportsPerDay: row["tier_exports"]) },
                            department: row["department"])
    }

    // MARK: - Departments

    public func createDepartment(name: String, parent: String?, actor: String) throws -> DepartmentRecord {
        let name = try CatalogRules.departmentName(name)
        let parent = try parent.map { try CatalogRules.departmentName($0, what: "--parent") }
        return try write { db in
            if let parent, try Bool.fetchOne(db, sql: "SELECT 1 FROM departments WHERE name = ?", arguments: [parent]) != true {
                throw CatalogRules.unknownDepartment(parent)
            }
            let at = Self.now()
            try db.execute(sql: "INSERT INTO departments (name, parent, created_at, created_by) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                           arguments: [name, parent, at, actor])
            guard db.changesCount == 1 else { throw CatalogRules.duplicateDepartment(name) }
            var detail: [String: JSONValue] = ["department": .string(name)]
            if let parent { detail["parent"] = .string(parent) }
            _ = try Self.appendAudit(db, actor: actor, action: "department.create", dataset: nil, detail: detail)
            return DepartmentRecord(name: name, parent: parent, createdAt: at, createdBy: actor)
        }
    }

    public func departments() throws -> [DepartmentRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM departments ORDER BY name").map {
                DepartmentRecord(name: $0["name"], parent: $0["parent"], createdAt: $0["created_at"], createdBy: $0["created_by"])
            }
        }
    }

    /// Keys, newest first: all, or one account's.
    public func keys(account: String?) throws -> [APIKeyRecord] {
        try read { db in
            if let account {
                return try Row.fetchAll(db, sql: CatalogRules.keySelect + " WHERE k.account_id = ? ORDER BY k.created_at DESC, k.id", arguments: [account]).map(Self.keyRecord)
            }
            return try Row.fetchAll(db, sql: CatalogRules.keySelect + " ORDER BY k.created_at DESC, k.id").map(Self.keyRecord)
        }
    }

    /// Revokes a key; it fails authentication from the next request on.
    /// - Throws: `KaifangError.notFound`.
    public func revokeKey(_ id: String, actor: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [Self.now(), id])
            guard db.changesCount == 1 else {
                throw KaifangError.notFound("no active key '\(id)': `kaifang key list` shows the key ids")
            }
            try Self.appendAudit(db, actor: actor, action: "key.revoke", dataset: nil, detail: ["key_id": .string(id)])
        }
    }
}

extension CatalogDatabase {
    /// How many events of `action` by `actor` happened since `since` (an ISO prefix such as a day).
    public func countEvents(actor: String, action: String, since: String) throws -> Int {
        try read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_events WHERE actor = ? AND action = ? AND at >= ?", arguments: [actor, action, since]) ?? 0
        }
    }
}

/// Catalog KPIs (docs/api-guide.md `GET /v1/stats`).
public struct CatalogStats: Sendable {
    public var datasets: Int
    public var published: Int
    public var byTier: [FacetCount]
    public var byDepartment: [FacetCount]
    /// Datasets marked should_open, and how many of them are published open or conditional.
    public var shouldOpen: Int
    public var opened: Int
    /// opened / shouldOpen (应开放公共数据开放率); 1 when none should open.
    public var openRate: Double
    /// Row and export reads per dataset since the given day.
    public var reads: [FacetCount]

    package init(datasets: Int, published: Int, byTier: [FacetCount], byDepartment: [FacetCount], shouldOpen: Int, opened: Int,
                 openRate: Double, reads: [FacetCount]) {
        self.datasets = datasets; self.published = published; self.byTier = byTier; self.byDepartment = byDepartment
        self.shouldOpen = shouldOpen; self.opened = opened; self.openRate = openRate; self.reads = reads
    }
}

extension CatalogDatabase {
    /// The KPIs, with reads counted since `since` (an ISO day).
    public func stats(since: String) throws -> CatalogStats {
        try read { db in
            let datasets = try Int.fetchOne(db, sql: "SELECT count(*) FROM datasets") ?? 0
            let published = try Int.fetchOne(db, sql: "SELECT count(*) FROM datasets WHERE tier IS NOT NULL AND published_version IS NOT NULL") ?? 0
            func facets(_ sql: String, _ args: StatementArguments = []) throws -> [FacetCount] {
                try Row.fetchAll(db, sql: sql, arguments: args).map { FacetCount(value: $0["v"], count: $0["n"]) }
            }
            let byTier = try facets("SELECT tier AS v, count(*) AS n FROM datasets WHERE tier IS NOT NULL GROUP BY tier ORDER BY n DESC, v")
            let byDepartment = try facets("SELECT department AS v, count(*) AS n FROM datasets WHERE tier IS NOT NULL AND department <> '' GROUP BY department ORDER BY n DESC, v")
            let shouldOpen = try Int.fetchOne(db, sql: "SELECT count(*) FROM datasets WHERE should_open = 1") ?? 0
            let opened = try Int.fetchOne(db, sql: "SELECT count(*) FROM datasets WHERE should_open = 1 AND tier IN ('open', 'conditional') AND published_version IS NOT NULL") ?? 0
            let reads = try facets("SELECT dataset_id AS v, SUM(n) AS n FROM read_counts WHERE day >= ? GROUP BY dataset_id ORDER BY n DESC, v", [String(since.prefix(10))])
            return CatalogStats(datasets: datasets, published: published, byTier: byTier, byDepartment: byDepartment, shouldOpen: shouldOpen,
                                opened: opened, openRate: shouldOpen == 0 ? 1 : Double(opened) / Double(shouldOpen), reads: reads)
        }
    }
}

extension CatalogDatabase {
    public typealias PendingEvent = PendingAuditEvent

    /// Appends several events to the chain in one transaction (group commit of concurrent reads).
    /// Every batch of a busy server comes here, so its statements — BEGIN and COMMIT too — are
    /// prepared once and reused, and the head it appended is anchored without asking again.
    @discardableResult
    public func audit(batch: [PendingEvent]) throws -> Int64 {
        guard !batch.isEmpty else { return 0 }
        let head: (seq: Int64, hash: String)
        do {
            head = try writer.writeWithoutTransaction { db in
                try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
                do {
                    var head = try Self.chainHead(db)
                    var reads = ReadCounts()
                    for e in batch { _ = try Self.appendAudit(db, after: &head, reads: &reads, actor: e.actor, action: e.action, dataset: e.dataset, canonicalDetail: e.canonicalDetail) }
                    try reads.store(db)
                    try db.cachedStatement(sql: "COMMIT").execute()
                    return head
                } catch {
                    if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
                    throw error
                }
            }
        } catch let e as KaifangError { throw e } catch {
            throw KaifangError.runtime("catalog write failed", cause: error)
        }
        updateAuditAnchor(head)
        return 0
    }
}

/// A monotonic high-water mark of anchored audit seqs, shared by copies of a `CatalogDatabase`,
/// and the open `audit.head` it writes to (every batch of read events moves it: an `open` and a
/// `close` per batch cost more than the write).
final class AnchorMark: @unchecked Sendable {
    private let lock = NSLock()
    private var seq: Int64 = 0
    private var fd: Int32 = -1
    /// The data directory's `audit.head`.
    let path: String

    init(path: String) { self.path = path }

    deinit { if fd >= 0 { close(fd) } }

    /// Writes `head` to the file unless this process already anchored it or a later event, or
    /// the file (another process writes it too) records a later one. A file removed or
    /// replaced since it was opened is opened again, so the anchor reappears at its path.
    func write(_ head: (seq: Int64, hash: String)) {
        lock.lock(); defer { lock.unlock() }
        guard head.seq > seq else { return }
        seq = head.seq
        var st = stat()
        if fd >= 0, fstat(fd, &st) != 0 || st.st_nlink == 0 {
            close(fd)
            fd = -1
        }
        if fd < 0 {
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0, fstat(fd, &st) == 0 else { return }
        }
        if let current = CatalogDatabase.parseAnchor(fd), current.seq >= head.seq { return }
        var line = Array("\(head.seq) \(head.hash)\n".utf8)
        if line.count < 96 { line.insert(contentsOf: repeatElement(UInt8(ascii: " "), count: 96 - line.count), at: line.count - 1) }
        _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        if st.st_size > line.count { _ = ftruncate(fd, off_t(line.count)) }
    }
}
