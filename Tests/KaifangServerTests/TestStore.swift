import Foundation
import KaifangTestSupport
import PostgresStore
import Storage

/// The store the end-to-end tests run on: the embedded store, or — with
/// `KAIFANG_TEST_STORE=postgres` and a server in `KAIFANG_TEST_POSTGRES` (scripts/with-postgres.sh)
/// — the shared store, each test in a schema of its own.
enum TestStore {
    static var usesPostgres: Bool {
        ProcessInfo.processInfo.environment["KAIFANG_TEST_STORE"] == "postgres" && ProcessInfo.processInfo.environment["KAIFANG_TEST_POSTGRES"] != nil
    }

    /// A new store over `dataDir`: embedded, or the shared store in a fresh schema.
    static func make(dataDir: String) throws -> any CatalogStore {
        if usesPostgres {
            return try PostgresCatalog(url: try TestPostgres.freshURL(prefix: "e"), directory: DataDirectory(path: dataDir))
        }
        return try CatalogDatabase(directory: DataDirectory(path: dataDir))
    }

    /// The `--store` arguments that point a `kaifang` child process at `store`.
    static func arguments(for store: any CatalogStore) -> [String] {
        guard let pg = store as? PostgresCatalog else { return [] }
        return ["--store", pg.url.unredacted]
    }

    /// Another process's catalog over the same shared store (a second replica), working in
    /// `dataDir`.
    static func reopen(_ store: any CatalogStore, dataDir: String) throws -> any CatalogStore {
        guard let pg = store as? PostgresCatalog else { return store }
        return try PostgresCatalog(url: pg.url, directory: DataDirectory(path: dataDir))
    }

    static func close(_ store: any CatalogStore) { (store as? PostgresCatalog)?.close() }
}

import Testing

@Suite struct TestStoreTests {
    /// The pass asked for runs on the store asked for: no silent fallback to the embedded store.
    @Test func theServerRunsOnTheStoreTheTestRunAskedFor() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-kind-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TestStore.make(dataDir: dir)
        defer { TestStore.close(store) }
        let asked = ProcessInfo.processInfo.environment["KAIFANG_TEST_STORE"] ?? "embedded"
        #expect(store.kind == asked)
        if asked == "postgres" { #expect(store.isShared) }
    }
}
