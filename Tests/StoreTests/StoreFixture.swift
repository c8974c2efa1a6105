import Foundation
import KaifangCore
import KaifangTestSupport
@testable import PostgresStore
import Storage
import Testing
import VersionFormat

/// The stores the conformance tests run against: the embedded store always, the shared store
/// when `KAIFANG_TEST_POSTGRES` names a PostgreSQL server (scripts/with-postgres.sh starts one).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case embedded, postgres

    var testDescription: String { rawValue }

    static var adminURL: String? { TestPostgres.adminURL }

    static var available: [StoreKind] { adminURL == nil ? [.embedded] : [.embedded, .postgres] }
}

/// A fresh store of one kind over a temporary working directory (and, for PostgreSQL, a schema
/// of its own), removed when the test ends. `another()` opens a second store on the same
/// data — another process, or another replica.
final class StoreFixture: @unchecked Sendable {
    let kind: StoreKind
    let dir: URL
    let store: any CatalogStore
    /// The shared store's URL (with its schema); nil for the embedded store.
    let url: StoreURL?
    private var others: [PostgresCatalog] = []

    init(_ kind: StoreKind) throws {
        self.kind = kind
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-store-\(UUID().uuidString)")
        switch kind {
        case .embedded:
            url = nil
            store = try CatalogDatabase(directory: DataDirectory(path: dir.path))
        case .postgres:
            let u = try TestPostgres.freshURL()
            url = u
            store = try PostgresCatalog(url: u, directory: DataDirectory(path: dir.path))
        }
    }

    /// A second store on the same data, with caches of its own (another process or replica).
    func another() throws -> any CatalogStore {
        switch kind {
        case .embedded:
            return try CatalogDatabase(directory: store.directory)
        case .postgres:
            let other = try PostgresCatalog(url: try #require(url), directory: DataDirectory(path: dir.appendingPathComponent("replica-\(others.count)").path))
            others.append(other)
            return other
        }
    }

    deinit {
        (store as? PostgresCatalog)?.close()
        for o in others { o.close() }
        try? FileManager.default.removeItem(at: dir)
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
    func importVersion(_ m: DatasetManifest, rows n: Int, into target: (any CatalogStore)? = nil) throws -> VersionRecord {
        let s = target ?? store
        let path = s.directory.temporaryFile(suffix: ".sqlite")
        let w = try VersionWriter(path: path, manifest: m)
        for i in 0..<n { try w.append([.text("张\(i)"), .integer(Int64(i)), i % 3 == 0 ? .null : .real(Double(i) / 2)]) }
        let sha = try w.finish()
        return try s.commitVersion(manifest: m, temporaryFile: path, rowCount: w.rowCount, sha256: sha, source: "test.csv", actor: "cli:test")
    }
}
