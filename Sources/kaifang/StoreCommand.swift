import ArgumentParser
import Foundation
import KaifangCore
import PostgresStore
import Storage

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Move a catalog between stores.", subcommands: [Copy.self])

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy",
            abstract: "Copy the embedded data directory (--data-dir) into an empty shared store.",
            discussion: "Copies datasets, versions (their files under their SHA-256), keys, applications, licenses, jobs with their results, ε spent, harvest sources, read counts, the platform secret (pseudonyms stay the same) and the audit chain event for event, then verifies the copied chain against the source's head. The target must be empty: create it with `kaifang init --store URL` first. Stop the server on the data directory while copying.")
        @OptionGroup var global: GlobalOptions
        @Option(help: ArgumentHelp("The target store: postgres://user:password@host:port/database[?schema=NAME].", valueName: "url")) var to: String

        func run() throws {
            guard global.resolvedStore == nil else {
                throw ValidationError("the source is the embedded data directory (--data-dir); name the target with --to, not --store")
            }
            let dir = DataDirectory(path: global.resolvedDataDir)
            guard dir.isInitialized else { throw KaifangCoreError.notInitialized(dir.root.path) }
            let source = try CatalogDatabase(directory: dir)
            var options = global
            options.store = to
            options.dataDir = dir.tmpDir.appendingPathComponent("store-copy-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: options.resolvedDataDir) }
            guard let target = try openCatalog(options, create: true) as? PostgresCatalog else {
                throw ValidationError("--to must name a PostgreSQL store")
            }
            defer { target.close() }
            let r = try StoreCopy.copy(from: source, to: target)
            if global.json {
                try printJSON(["datasets": r.datasets, "versions": r.versions, "keys": r.keys, "applications": r.applications,
                               "licenses": r.licenses, "jobs": r.jobs, "audit_events": r.events])
                return
            }
            print("Copied \(dir.root.path) into \(target.url.redacted): \(r.datasets) datasets, \(r.versions) versions, \(r.accounts) accounts, \(r.keys) keys, \(r.applications) applications, \(r.licenses) licenses, \(r.jobs) jobs, \(r.events) audit events (chain verified, head \(r.head.prefix(16))…).")
        }
    }
}
