import ArgumentParser
import Foundation
import KaifangCore
import PostgresStore
import Storage

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a data directory (catalog, platform secret, folders), or the catalog of a shared store (--store).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        if let url = global.resolvedStore {
            let store = try openCatalog(global, create: true)
            let count = try store.datasetCount()
            if global.json {
                try printJSON(["store": try StoreURL(url).redacted, "data_dir": store.directory.root.path, "datasets": String(count)])
            } else {
                print("The store \(try StoreURL(url).redacted) holds a Kaifang catalog (\(count) datasets); this process works in \(store.directory.root.path).")
            }
            return
        }
        let dir = DataDirectory(path: global.resolvedDataDir)
        let existed = dir.isInitialized
        _ = try CatalogDatabase(directory: dir)
        if global.json {
            try printJSON(["data_dir": dir.root.path, "created": existed ? "false" : "true"])
        } else {
            print(existed ? "\(dir.root.path) is already a Kaifang data directory; nothing changed." : "Created the Kaifang data directory \(dir.root.path) (catalog.sqlite, secret.key 0600, versions/, jobs/, rejects/).")
        }
    }
}

/// Opens the store the options name: the shared store (`--store`, `KAIFANG_STORE`), else the
/// embedded store of an initialized data directory.
/// - Throws: `KaifangError.badInput` when `init` has not run there; `.runtime` when the shared
///   store cannot be reached (one line, at once).
func openCatalog(_ global: GlobalOptions, create: Bool = false) throws -> any CatalogStore {
    let dir = DataDirectory(path: global.resolvedDataDir)
    if let text = global.resolvedStore {
        let url = try StoreURL(text)
        guard global.cacheSize > 0 else { throw KaifangError.badInput("--cache-size must be more than 0 GiB") }
        let blobs = global.blobs ?? GlobalOptions.environment("KAIFANG_BLOBS")
        if let blobs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: blobs, isDirectory: &isDir), isDir.boolValue else {
                throw KaifangError.badInput("--blobs \(blobs) is not a folder: create it (shared by every replica) first")
            }
        }
        return try PostgresCatalog(url: url, directory: dir, blobsDirectory: blobs, cacheBytes: Int64(global.cacheSize * Double(1 << 30)), create: create)
    }
    guard dir.isInitialized || create else {
        throw KaifangCoreError.notInitialized(dir.root.path)
    }
    return try CatalogDatabase(directory: dir)
}

enum KaifangCoreError {
    static func notInitialized(_ path: String) -> KaifangError {
        .badInput("\(path) is not a Kaifang data directory: run `kaifang init --data-dir \(path)` first, or pass --data-dir / set KAIFANG_DATA_DIR")
    }
}
