import Foundation
import Testing

/// Runs the built `kaifang` binary as a child process.
enum CLI {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `kaifang` executable next to the test bundle (what `swift build` made).
    static var binary: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [beside, beside.deletingLastPathComponent(), repo.appendingPathComponent(".build/debug")] {
            let candidate = dir.appendingPathComponent("kaifang")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return repo.appendingPathComponent(".build/debug/kaifang")
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `kaifang args…` to completion.
    @discardableResult
    static func run(_ args: [String], env: [String: String] = [:], cwd: URL? = nil) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment["KAIFANG_DATA_DIR"] = nil
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        p.currentDirectoryURL = cwd ?? repo
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Starts `kaifang args…` without waiting.
    static func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.currentDirectoryURL = repo
        try p.run()
        return p
    }
}

/// A temporary folder, removed when the test ends.
final class Scratch {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("kaifang-cli-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    var dataDir: String { url.appendingPathComponent("data").path }

    func write(_ name: String, _ text: String) -> String {
        let path = url.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }
}
