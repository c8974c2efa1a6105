import ArgumentParser
import Foundation
import Storage

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create a data directory: catalog, platform secret, folders.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
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

/// Opens the catalog of an initialized data directory.
/// - Throws: `KaifangError.badInput` when `init` has not run there.
func openCatalog(_ global: GlobalOptions) throws -> any CatalogStore {
    let dir = DataDirectory(path: global.resolvedDataDir)
    guard dir.isInitialized else {
        throw KaifangCoreError.notInitialized(dir.root.path)
    }
    return try CatalogDatabase(directory: dir)
}

import KaifangCore
enum KaifangCoreError {
    static func notInitialized(_ path: String) -> KaifangError {
        .badInput("\(path) is not a Kaifang data directory: run `kaifang init --data-dir \(path)` first, or pass --data-dir / set KAIFANG_DATA_DIR")
    }
}
