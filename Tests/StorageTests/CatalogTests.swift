import Audit
import Crypto
import Foundation
import GRDB
import KaifangCore
@testable import Storage
import Testing
import VersionFormat

/// A temporary data directory, removed when the test ends.
final class TempDir {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-test-\(UUID().uuidString)").path
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct CatalogTests {
    let tmp = TempDir()
    let catalog: CatalogDatabase

    init() throws {
        catalog = try CatalogDatabase(directory: DataDirectory(path: tmp.path))
    }

    static func manifest(_ id: String, department: String = "省民政厅", topic: String = "social", title: String? = nil) -> DatasetManifest {
        DatasetManifest(id: id, title: title ?? "\(id) 数据", description: "测试", department: department, topic: topic, tier: .open, fields: [
            FieldSpec(name: "name", title: "姓名", type: .string, semantic: .person_name, level: .L3),
            FieldSpec(name: "age", type: .integer, level: .L2),
            FieldSpec(name: "score", type: .number, level: .L1),
        ])
    }

    /// Writes a version with `n` rows and commits it.
    @discardableResult
    func importVersion(_ m: DatasetManifest, rows n: Int) throws -> VersionRecord {
        let path = catalog.directory.temporaryFile(suffix: ".sqlite")
        let w = try VersionWriter(path: path, manifest: m)
        for i in 0..<n { try w.append([.text("张\(i)"), .integer(Int64(i)), i % 3 == 0 ? .null : .real(Double(i) / 2)]) }
        let sha = try w.finish()
        return try catalog.commitVersion(manifest: m, temporaryFile: path, rowCount: w.rowCount, sha256: sha, source: "test.csv", actor: "cli:test")
    }

    @Test func aDataDirectoryHasItsLayoutAndASecretOnlyTheOwnerReads() throws {
        let fm = FileManager.default
        for p in ["catalog.sqlite", "secret.key", "versions", "jobs", "rejects"] {
            #expect(fm.fileExists(atPath: "\(tmp.path)/\(p)"), "\(p)")
        }
        let attrs = try fm.attributesOfItem(atPath: "\(tmp.path)/secret.key")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        #expect((attrs[.size] as? Int) == 32)
        let mode = try catalog.writer.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    /// The content SHA-256 is over the documented serialization (per cell a type byte 0 null /
    /// 1 integer / 2 real / 3 text, the value little-endian or UTF-8, 0x1F; 0x1E per row), so
    /// versions imported by any build of Kaifang compare equal. Computed here from that rule.
    @Test func theContentHashIsOverTheCanonicalSerialization() throws {
        let rows: [[Cell]] = [[.text("张三"), .integer(-7), .real(2.5)], [.null, .integer(0), .null], [.text(""), .integer(.max), .real(-0.0)]]
        let path = catalog.directory.temporaryFile(suffix: ".sqlite")
        let w = try VersionWriter(path: path, manifest: Self.manifest("h"))
        for r in rows { try w.append(r) }
        let sha = try w.finish()
        var bytes: [UInt8] = []
        for r in rows {
            for c in r {
                switch c {
                case .null: bytes.append(0)
                case .integer(let v): bytes.append(1); for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: v) >> (8 * k))) }
                case .real(let v): bytes.append(2); for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v.bitPattern >> (8 * k))) }
                case .text(let s): bytes.append(3); bytes.append(contentsOf: s.utf8)
                }
                bytes.append(0x1F)
            }
            bytes.append(0x1E)
        }
        let expected = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        #expect(sha == expected)
        let back = try VersionReader(path: path).query("SELECT name, age, score FROM rows ORDER BY _row")
        #expect(back == rows)
        unlink(path)
    }

    @Test func aCommittedVersionIsAReadOnlyFileWithTypedRows() throws {
        let v = try importVersion(Self.manifest("people"), rows: 5)
        #expect(v.number == 1 && v.rowCount == 5 && v.sha256.count == 64)
        let path = catalog.directory.absolute(v.file)
        #expect(path.hasSuffix("versions/people/1.sqlite"))
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attrs[.posixPermissions] as? Int) == 0o444)
        let r = try VersionReader(path: path)
        #expect(try r.rowCount() == 5)
        #expect(try r.query("SELECT name, age, score FROM rows WHERE _row = 2") == [[.text("张1"), .integer(1), .real(0.5)]])
        #expect(try r.query("SELECT typeof(score) FROM rows WHERE _row = 1") == [[.text("null")]])
        // Read-only: a write fails.
        #expect(throws: KaifangError.self) { try r.query("DELETE FROM rows") }
    }

    @Test func aCommittedVersionOpensImmutableUnderAnAwkwardPath() throws {
        // The server's pool opens committed files with a file: URI (immutable=1): every byte
        // of the path that a URI would read differently must be encoded.
        let odd = TempDir()
        let dir = odd.path + "/数据 50%?a#b"
        let c = try CatalogDatabase(directory: DataDirectory(path: dir))
        let path = c.directory.temporaryFile(suffix: ".sqlite")
        let w = try VersionWriter(path: path, manifest: Self.manifest("odd"))
        for i in 0..<7 { try w.append([.text("李\(i)"), .integer(Int64(i)), .real(1)]) }
        let sha = try w.finish()
        let v = try c.commitVersion(manifest: Self.manifest("odd"), temporaryFile: path, rowCount: w.rowCount, sha256: sha, source: "t.csv", actor: "cli:test")
        let r = try VersionReader(path: c.directory.absolute(v.file), immutable: true)
        #expect(try r.rowCount() == 7)
        #expect(try r.query("SELECT name FROM rows WHERE _row = 3") == [[.text("李2")]])
        #expect(throws: KaifangError.self) { try VersionReader(path: dir + "/versions/odd/9.sqlite", immutable: true).rowCount() }
    }

    @Test func theContentHashDependsOnTheContentOnly() throws {
        let a = try importVersion(Self.manifest("a"), rows: 10)
        let b = try importVersion(Self.manifest("a"), rows: 10)
        let c = try importVersion(Self.manifest("a"), rows: 11)
        #expect(a.sha256 == b.sha256)
        #expect(a.sha256 != c.sha256)
        #expect([a.number, b.number, c.number] as [Int] == [1, 2, 3] as [Int])
    }

    @Test func publishingMovesThePointerAndEveryVersionStaysReadable() throws {
        let m = Self.manifest("people")
        try importVersion(m, rows: 3)
        try importVersion(m, rows: 4)
        #expect(try catalog.dataset("people")?.isPublished == false)
        try catalog.publish(dataset: "people", version: 1, tier: .conditional, actor: "cli:test")
        var (d, v) = try #require(try catalog.publishedVersion("people"))
        #expect(d.tier == .conditional && v.number == 1 && v.rowCount == 3)
        try catalog.publish(dataset: "people", tier: .open, actor: "cli:test")
        (d, v) = try #require(try catalog.publishedVersion("people"))
        #expect(d.tier == .open && v.number == 2)
        #expect(try VersionReader(path: catalog.directory.absolute(try #require(try catalog.version("people", 1)).file)).rowCount() == 3)
        try catalog.withdraw(dataset: "people", actor: "cli:test")
        #expect(try catalog.publishedVersion("people") == nil)
        #expect(try catalog.versions("people").count == 2)
    }

    /// The publication stamp is cached between catalog changes, and a change made through
    /// another catalog (another process: its own connections, cache and signal) shows on the very
    /// next lookup; read events do not count as changes.
    @Test func cachedStampsSeeEveryChangeFromAnotherProcessAtOnce() throws {
        let m = Self.manifest("people")
        try importVersion(m, rows: 3)
        try importVersion(m, rows: 4)
        let other = try CatalogDatabase(directory: catalog.directory)
        #expect(try catalog.publicationStamp("people")?.hasSuffix("|-|-") == true)
        try other.publish(dataset: "people", version: 1, tier: .conditional, actor: "cli:test")
        #expect(try catalog.publicationStamp("people")?.hasSuffix("|conditional|1") == true)
        try other.publish(dataset: "people", version: 2, tier: .open, actor: "cli:test")
        #expect(try catalog.publicationStamp("people")?.hasSuffix("|open|2") == true)
        #expect(try catalog.publicationStamp("ghost") == nil)
        // Read events leave the signal as it was; other writes move it.
        let before = try #require(catalog.changes.mark())
        try catalog.audit(batch: [.init(actor: "anonymous", action: "rows.read", dataset: "people", detail: [:])])
        #expect(catalog.changes.mark() == before)
        try other.withdraw(dataset: "people", actor: "cli:test")
        #expect(catalog.changes.mark() != before)
        #expect(try catalog.publicationStamp("people")?.hasSuffix("|-|-") == true)
        // The stamp matches a fresh read whatever the order of events.
        #expect(try catalog.publicationStamp("people") == (try other.readPublicationStamp("people")))
        // Without the signal file nothing is cached: a change still shows.
        unlink(catalog.changes.path)
        #expect(catalog.changes.mark() == nil)
        try other.publish(dataset: "people", version: 1, tier: .open, actor: "cli:test")
        #expect(try catalog.publicationStamp("people")?.hasSuffix("|open|1") == true)
    }

    /// Keys and licenses are cached the same way: a revocation made through another catalog
    /// (another process) refuses the very next lookup, and an expired license is not served.
    @Test func cachedKeysAndLicensesSeeRevocationsAtOnce() throws {
        try importVersion(Self.manifest("people"), rows: 3)
        try catalog.publish(dataset: "people", tier: .conditional, actor: "cli:test")
        let other = try CatalogDatabase(directory: catalog.directory)
        let (key, secret) = try catalog.createKey(role: .partner, name: "伙伴", actor: "cli:test")
        #expect(try catalog.authenticate(secret)?.id == key.id)
        #expect(try catalog.authenticate(secret)?.id == key.id)
        #expect(try catalog.authenticate(String(secret.dropLast()) + (secret.hasSuffix("0") ? "1" : "0")) == nil)
        #expect(try catalog.activeLicense(keyID: key.id, dataset: "people", use: .rows) == nil)
        let app = try catalog.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况的统计分析", fields: [], use: .rows, durationDays: 30)
        let license = try other.approve(application: app.id, actor: "cli:steward")
        #expect(try catalog.activeLicense(keyID: key.id, dataset: "people", use: .rows)?.id == license.id)
        try other.revokeLicense(license.id, actor: "cli:steward")
        #expect(try catalog.activeLicense(keyID: key.id, dataset: "people", use: .rows) == nil)
        // A license that expires while cached.
        let app2 = try catalog.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况的统计分析", fields: [], use: .rows, durationDays: 30)
        _ = try other.approve(application: app2.id, expires: Date().addingTimeInterval(1.2), actor: "cli:steward")
        #expect(try catalog.activeLicense(keyID: key.id, dataset: "people", use: .rows) != nil)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try catalog.activeLicense(keyID: key.id, dataset: "people", use: .rows) == nil)
        try other.revokeKey(key.id, actor: "cli:steward")
        #expect(try catalog.authenticate(secret) == nil)
    }

    @Test func publishingSomethingThatDoesNotExistSaysWhatToDo() throws {
        #expect { try catalog.publish(dataset: "nope", tier: .open, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        try importVersion(Self.manifest("p"), rows: 1)
        #expect { try catalog.publish(dataset: "p", version: 7, tier: .open, actor: "t") } throws: {
            ($0 as? KaifangError)?.message.contains("has no version 7") == true
        }
    }

    @Test func searchFindsWordsFacetsAndPagesWithACursor() throws {
        for i in 0..<7 {
            let m = Self.manifest("d\(i)", department: i < 4 ? "省民政厅" : "省生态环境厅", topic: i % 2 == 0 ? "social" : "environment",
                                  title: i == 5 ? "空气质量小时数据" : nil)
            try importVersion(m, rows: 1)
            if i != 6 { try catalog.publish(dataset: m.id, tier: i < 3 ? .open : .conditional, actor: "t") }
        }
        let all = try catalog.search(DatasetQuery(limit: 100))
        #expect(all.total == 6) // d6 is unpublished
        #expect(all.departments == [FacetCount(value: "省民政厅", count: 4), FacetCount(value: "省生态环境厅", count: 2)])
        #expect(try catalog.search(DatasetQuery(limit: 100, includeUnpublished: true)).total == 7)
        #expect(try catalog.search(DatasetQuery(q: "空气")).datasets.map(\.record.id) == ["d5"])
        #expect(try catalog.search(DatasetQuery(q: "姓名")).total == 6) // field titles are searched
        let filtered = try catalog.search(DatasetQuery(department: "省民政厅", tier: .open))
        #expect(filtered.total == 3)
        #expect(filtered.tiers.first { $0.value == "conditional" }?.count == 1) // the tier facet ignores the tier filter
        var seen: [String] = []
        var cursor: String?
        repeat {
            let page = try catalog.search(DatasetQuery(limit: 4, cursor: cursor))
            seen += page.datasets.map(\.record.id)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(seen.sorted() == ["d0", "d1", "d2", "d3", "d4", "d5"])
        #expect { try catalog.search(DatasetQuery(cursor: "garbage!")) } throws: { ($0 as? KaifangError)?.kind == .badInput }
        // Control characters separate words (a NUL inside a full-text phrase was a syntax error).
        #expect(try catalog.search(DatasetQuery(q: "空气质\u{0}")).datasets.map(\.record.id) == ["d5"])
        #expect(try catalog.search(DatasetQuery(q: "ab\u{0}\u{1}|")).total == 0)
    }

    @Test func theCheckpointerMovesTheLogOffTheWritersPath() throws {
        let c = Checkpointer(catalog: catalog, periodSeconds: 0.02)
        try c.start()
        func autoCheckpoint() throws -> Int { try catalog.writer.write { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") ?? -1 } }
        #expect(try autoCheckpoint() == 0)
        for i in 0..<400 { try catalog.audit(actor: "cli:test", action: "test.event", dataset: nil, detail: ["i": .int(Int64(i))]) }
        let deadline = Date(timeIntervalSinceNow: 10)
        while c.progress.frames == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        c.stop()
        #expect(c.progress.runs > 0 && c.progress.frames > 0)
        #expect(try autoCheckpoint() == 1000)
        // Nothing is lost: a second catalog on the same directory reads every event.
        let again = try CatalogDatabase(directory: DataDirectory(path: tmp.path))
        #expect(try again.auditEvents(limit: 1000).filter { $0.event.action == "test.event" }.count == 400)
    }

    @Test func keysAreShownOnceStoredHashedAndRevocable() throws {
        let (record, key) = try catalog.createKey(role: .partner, name: "某大学", actor: "cli:test")
        #expect(key.hasPrefix("kf_\(record.id)_") && key.count == 3 + 8 + 1 + 64)
        #expect(try catalog.authenticate(key)?.role == .partner)
        let stored = try catalog.writer.read { try String.fetchAll($0, sql: "SELECT key_hash FROM api_keys") }
        #expect(stored.count == 1 && !stored[0].contains(String(key.suffix(64))))
        var tampered = Array(key)
        tampered[tampered.count - 1] = tampered.last == "0" ? "1" : "0"
        #expect(try catalog.authenticate(String(tampered)) == nil)
        #expect(try catalog.authenticate("kf_nothex_x") == nil)
        try catalog.revokeKey(record.id, actor: "cli:test")
        #expect(try catalog.authenticate(key) == nil)
        #expect { try catalog.revokeKey(record.id, actor: "cli:test") } throws: { ($0 as? KaifangError)?.kind == .notFound }
    }

    @Test func everyChangeIsAnAuditEventAndTheChainVerifies() throws {
        try importVersion(Self.manifest("p"), rows: 2)
        try catalog.publish(dataset: "p", tier: .open, actor: "cli:test")
        _ = try catalog.createKey(role: .developer, name: "dev", actor: "cli:test")
        try catalog.withdraw(dataset: "p", actor: "cli:test")
        let actions = try catalog.auditEvents().map(\.event.action)
        #expect(actions == ["dataset.import", "dataset.publish", "key.create", "dataset.withdraw"])
        guard case .intact(count: 4, _) = try catalog.verifyAudit() else { Issue.record("chain broken"); return }
        try catalog.writer.write { try $0.execute(sql: "UPDATE audit_events SET detail_json = '{\"version\":9}' WHERE seq = 2") }
        #expect(try catalog.verifyAudit() == .broken(seq: 2, reason: "event 2 was altered: its content no longer matches its hash"))
    }

    /// Deleting the newest events keeps the chain's links intact: the anchor catches it.
    @Test func deletingTheLastEventsIsCaughtByTheAnchor() throws {
        for i in 0..<4 { _ = try catalog.createKey(role: .developer, name: "k\(i)", actor: "cli:test") }
        let head = try #require(try catalog.auditHead())
        #expect(head.seq == 4)
        #expect(catalog.auditAnchor()?.seq == 4 && catalog.auditAnchor()?.hash == head.hash)
        guard case .intact(count: 4, _) = try catalog.verifyAudit() else { Issue.record("chain broken"); return }
        try catalog.writer.write { try $0.execute(sql: "DELETE FROM audit_events WHERE seq >= 3") }
        #expect(try catalog.verifyAudit() == .broken(seq: 3, reason: "events after 2 were deleted: audit.head records event 4"))
        // A steward who also rewrites audit.head is caught by a head kept elsewhere.
        try FileManager.default.removeItem(atPath: catalog.auditAnchorPath)
        guard case .intact = try catalog.verifyAudit() else { Issue.record("expected intact without anchors"); return }
        #expect(try catalog.verifyAudit(anchors: [(seq: 4, hash: head.hash)]) == .broken(seq: 3, reason: "events after 2 were deleted: the given anchor records event 4"))
        // An anchor whose hash differs at its event names that event.
        #expect(try catalog.verifyAudit(anchors: [(seq: 2, hash: String(repeating: "0", count: 64))]) ==
            .broken(seq: 2, reason: "event 2's hash differs from the given anchor: the chain was rewritten at or before it"))
    }

    /// The server keeps `audit.head` open between writes; a file removed or replaced meanwhile
    /// is written again at its path by the next write, and never moved backwards.
    @Test func theAnchorReappearsAfterItsFileIsRemovedOrReplaced() throws {
        _ = try catalog.createKey(role: .developer, name: "a", actor: "cli:test")
        #expect(catalog.auditAnchor()?.seq == 1)
        try FileManager.default.removeItem(atPath: catalog.auditAnchorPath)
        try catalog.audit(batch: [.init(actor: "anonymous:127.0.0.1", action: "rows.read", dataset: "x", detail: ["rows": .int(1)])])
        #expect(catalog.auditAnchor()?.seq == 2)
        // Replaced by rename (as a restore would) with an older record: rewritten by the next write.
        let other = catalog.directory.temporaryFile(suffix: ".head")
        try Data("1 \(AuditChain.genesis)\n".utf8).write(to: URL(fileURLWithPath: other))
        #expect(rename(other, catalog.auditAnchorPath) == 0)
        try catalog.audit(batch: [.init(actor: "anonymous:127.0.0.1", action: "rows.read", dataset: "x", detail: ["rows": .int(2)])])
        let head = try #require(try catalog.auditHead())
        #expect(head.seq == 3)
        #expect(catalog.auditAnchor()?.seq == 3 && catalog.auditAnchor()?.hash == head.hash)
        // A file that records a later event (another process wrote it) is left as it is.
        try Data("99 \(head.hash)\n".utf8).write(to: URL(fileURLWithPath: catalog.auditAnchorPath))
        try catalog.audit(batch: [.init(actor: "anonymous:127.0.0.1", action: "rows.read", dataset: "x", detail: ["rows": .int(3)])])
        #expect(catalog.auditAnchor()?.seq == 99)
        // (and verification then reports the deletion that such an anchor means).
        #expect(try catalog.verifyAudit() == .broken(seq: 5, reason: "events after 4 were deleted: audit.head records event 99"))
    }

    /// Read events committed in batches count their reads by day and dataset for `/v1/stats`.
    @Test func batchedReadEventsAreCountedPerDataset() throws {
        var events: [CatalogDatabase.PendingEvent] = []
        for i in 0..<7 {
            let action = i == 6 ? "export.read" : "rows.read"
            let dataset = i % 2 == 0 ? "a" : "b"
            events.append(.init(actor: "anonymous:127.0.0.1", action: action, dataset: dataset, detail: ["rows": .int(Int64(i))]))
        }
        events.append(.init(actor: "cli:test", action: "key.create", dataset: "a", detail: [:]))
        try catalog.audit(batch: events)
        try catalog.audit(batch: [events[0]])
        let stats = try catalog.stats(since: "2000-01-01")
        #expect(stats.reads.map(\.value) == ["a", "b"])
        #expect(stats.reads.map(\.count) == [5, 3])
        guard case .intact(count: 9, _) = try catalog.verifyAudit() else { Issue.record("chain broken"); return }
    }

    @Test func anUnfinishedWriterLeavesNoFileAndNoCatalogRow() throws {
        let path = catalog.directory.temporaryFile(suffix: ".sqlite")
        do {
            let w = try VersionWriter(path: path, manifest: Self.manifest("x"))
            try w.append([.text("a"), .integer(1), .null])
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try catalog.dataset("x") == nil)
    }

    @Test func reopeningSweepsTemporaryFilesOfEndedProcessesOnly() throws {
        // An import interrupted in a process that has ended (its pid names its files).
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let stray = catalog.directory.tmpDir.appendingPathComponent("\(ended.processIdentifier)-interrupted.sqlite").path
        FileManager.default.createFile(atPath: stray, contents: Data("partial".utf8))
        // One of a running process (this one: an import or a job in progress) and an unnamed one.
        let live = catalog.directory.temporaryFile(suffix: ".sqlite")
        FileManager.default.createFile(atPath: live, contents: Data("in progress".utf8))
        let unnamed = catalog.directory.tmpDir.appendingPathComponent("old.sqlite").path
        FileManager.default.createFile(atPath: unnamed, contents: Data("old".utf8))
        _ = try CatalogDatabase(directory: DataDirectory(path: tmp.path))
        #expect(!FileManager.default.fileExists(atPath: stray))
        #expect(!FileManager.default.fileExists(atPath: unnamed))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
