import Foundation
import PackagePlugin

/// Embeds every file under the target's `Embedded/` folder (symlinks followed) into the target
/// as base64 strings, so the binary is self-contained: no resource bundle to lose.
@main
struct EmbedResources: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let folder = target.directoryURL.appendingPathComponent("Embedded")
        var inputs: [URL] = []
        if let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) {
            for case let url as URL in walker {
                let resolved = url.resolvingSymlinksInPath()
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: resolved.path, isDirectory: &isDir), !isDir.boolValue {
                    inputs.append(url)
                }
            }
        }
        inputs.sort { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("EmbeddedFiles.swift")
        return [.buildCommand(
            displayName: "Embedding \(inputs.count) files into \(target.name)",
            executable: try context.tool(named: "embed-tool").url,
            arguments: [folder.path, output.path] + inputs.map(\.path),
            inputFiles: inputs.map { $0.resolvingSymlinksInPath() } + inputs,
            outputFiles: [output]
        )]
    }
}
