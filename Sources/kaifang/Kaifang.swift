import ArgumentParser
import Foundation
import KaifangCore
import KaifangServer
import Logging
import Publishing
import VersionFormat

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The data directory (default: $KAIFANG_DATA_DIR, else ./kaifang-data).", valueName: "dir"))
    var dataDir: String?

    @Flag(name: .customLong("json"), help: "Print machine-readable JSON instead of text.")
    var json = false

    @Option(name: .customLong("store"), help: ArgumentHelp("The shared store: postgres://user:password@host:port/database[?schema=NAME] (default: $KAIFANG_STORE; without either, the embedded store in the data directory). With it, the data directory is this process's working directory.", valueName: "url"))
    var store: String?

    @Option(name: .customLong("blobs"), help: ArgumentHelp("With --store: keep version files in this folder, shared by every replica, instead of in the database (default: $KAIFANG_BLOBS).", valueName: "dir"))
    var blobs: String?

    @Flag(name: .customLong("sqlite-only"), help: "Write and read version files through SQLite alone, without Kaifang's page writer, page reader and row sets (slower; the same files and responses). Also $KAIFANG_SQLITE_ONLY=1.")
    var sqliteOnly = false

    @Option(name: .customLong("cache-size"), help: ArgumentHelp("With --store: GiB of version files each replica keeps locally (least recently used go first).", valueName: "GiB"))
    var cacheSize: Double = 8

    /// The data directory to use, from the flag, the environment or the default.
    var resolvedDataDir: String {
        dataDir ?? Self.environment("KAIFANG_DATA_DIR") ?? "./kaifang-data"
    }

    /// The shared store's URL, from the flag or the environment; nil for the embedded store.
    var resolvedStore: String? { store ?? Self.environment("KAIFANG_STORE") }

    static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}

@main
struct Kaifang: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kaifang",
        abstract: "Kaifang 开放: a public-data open platform with an authorized-development sandbox.",
        discussion: "Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.",
        version: kaifangVersion,
        subcommands: [InitCommand.self, StoreCommand.self, DatasetCommand.self, KeyCommand.self, DepartmentCommand.self, DutyCommand.self, RequestCommand.self, ReportCommand.self, ShowcaseCommand.self, ProposalCommand.self, AccountCommand.self, UsageCommand.self, WebhookCommand.self, ApplicationCommand.self, LicenseCommand.self, SourceCommand.self, JobCommand.self, StatsCommand.self, ScorecardCommand.self, DivisionsCommand.self, TraceCommand.self, ProvenanceCommand.self, ServeCommand.self, DemoCommand.self, PIICommand.self, MaskCommand.self, AuditCommand.self]
    )

    /// Parses, runs, and maps every failure to exit code 1 (runtime) or 2 (usage, input).
    static func main() async {
        useDefaultEventLoops()
        LoggingSystem.bootstrap { label in
            var h = LineLogHandler.standardError(label: label)
            h.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return h
        }
        do {
            let arguments = hoistGlobalOptions(Array(CommandLine.arguments.dropFirst()))
            // Chosen before any command runs: every version file this process writes or reads.
            if arguments.prefix(while: { $0 != "--" }).contains("--sqlite-only") || GlobalOptions.environment("KAIFANG_SQLITE_ONLY") == "1" {
                VersionEngine.current = .sqlite
            }
            var command = try parseAsRoot(arguments)
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch let e as KaifangError {
            FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
            Foundation.exit(e.kind == .runtime ? 1 : 2)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Foundation.exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            // Usage errors (ArgumentParser's 64) are exit 2 in Kaifang.
            Foundation.exit(code == .validationFailure ? 2 : (code.rawValue == 0 ? 0 : code.rawValue == 64 ? 2 : 1))
        }
    }
}

/// `kaifang [--data-dir D] [--json] <command>`: global options given before the command are moved
/// after it, where each command's `GlobalOptions` parses them.
func hoistGlobalOptions(_ args: [String]) -> [String] {
    var leading: [String] = []
    var i = 0
    while i < args.count {
        let a = args[i]
        if a == "--json" || a == "--sqlite-only" { leading.append(a); i += 1; continue }
        if ["--data-dir", "--store", "--blobs", "--cache-size"].contains(a), i + 1 < args.count { leading += [a, args[i + 1]]; i += 2; continue }
        if ["--data-dir=", "--store=", "--blobs=", "--cache-size="].contains(where: { a.hasPrefix($0) }) { leading.append(a); i += 1; continue }
        break
    }
    return Array(args[i...]) + leading
}

/// Prints a value as pretty JSON.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}

/// Who the CLI acts as, for the audit log.
var cliActor: String {
    let env = ProcessInfo.processInfo.environment
    if let user = env["USER"] ?? env["LOGNAME"], !user.isEmpty { return "cli:" + user }
    if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return "cli:" + String(cString: name) }
    return "cli:uid\(getuid())"
}
