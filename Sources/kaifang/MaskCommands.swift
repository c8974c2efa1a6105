import ArgumentParser
import Foundation
import Ingest
import KaifangCore
import Masking
import Publishing
import Storage

struct PIICommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pii", abstract: "Detect personal-information formats.", subcommands: [Scan.self])

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "scan", 
            abstract: "Read one value per line; print one JSON object per line: {\"type\": …, \"valid\": …}.",
            discussion: "type is the best format the value claims to be (resident_id, uscc, bank_card, phone, landline, email, ip, license_plate, passport) or null; valid says whether it passes that format's checks. The value is not echoed unless --echo.")
        @Argument(help: "The file to read (default: standard input).") var file: String?
        @Flag(help: "Include the value itself in each output line (do not use on real data you are not allowed to copy).") var echo = false

        func run() throws {
            let source: any ByteSource = try file.map { try FileByteSource(path: $0) } ?? FileByteSource(fileDescriptor: 0)
            let sink = ByteSink(fileDescriptor: 1)
            var folded = ByteBuilder(), compacted = ByteBuilder()
            try LineReader.forEachLine(source) { line in
                let d = Detector.detect(line, folded: &folded, compacted: &compacted)
                sink.append(contentsOf: Array("{\"type\":".utf8))
                if let t = d.type { sink.append(contentsOf: Array("\"\(t.rawValue)\"".utf8)) } else { sink.append(contentsOf: Array("null".utf8)) }
                sink.append(contentsOf: Array(",\"valid\":\(d.valid)".utf8))
                if echo {
                    sink.append(contentsOf: Array(",\"value\":".utf8))
                    sink.append(contentsOf: Array(jsonString(String(decoding: line, as: UTF8.self)).utf8))
                }
                sink.append(contentsOf: Array("}\n".utf8))
                try sink.flushIfFull()
            }
            try sink.flush()
        }
    }
}

/// A JSON string literal.
func jsonString(_ s: String) -> String {
    let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
    return String(decoding: data, as: UTF8.self)
}

/// Splits a byte stream into lines (LF or CRLF), constant memory.
enum LineReader {
    static func forEachLine(_ source: any ByteSource, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var pending: [UInt8] = []
        while true {
            let n = try buf.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            var start = 0
            for i in 0..<n where buf[i] == 0x0A {
                pending.append(contentsOf: buf[start..<i])
                if pending.last == 0x0D { pending.removeLast() }
                try pending.withUnsafeBufferPointer(body)
                pending.removeAll(keepingCapacity: true)
                start = i + 1
            }
            pending.append(contentsOf: buf[start..<n])
        }
        if !pending.isEmpty {
            if pending.last == 0x0D { pending.removeLast() }
            try pending.withUnsafeBufferPointer(body)
        }
    }
}

struct MaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mask",
        abstract: "Stream a CSV through a view's masking policy to standard output.",
        discussion: "Constant memory, UTF-8 bytes in and out. The licensed view is a license's view: --license names it, and the license's granted fields and pseudonyms (keyed from the data directory's secret.key) are what comes out, as the API and `dataset export --license` serve them; it needs the initialized --data-dir that holds the license.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The CSV file (header naming the manifest's fields).") var file: String
    @Option(help: "The manifest (dataset.json) with the fields' levels and types.") var manifest: String
    @Option(help: "public or licensed (--license alone means licensed).") var view: String?
    @Option(help: "The license whose view to produce (licensed view): its granted fields, its pseudonyms.") var license: String?
    @Option(help: "The field delimiter, one ASCII character.") var delimiter: String = ","

    func validate() throws {
        if let view { guard let v = View(rawValue: view), v != .steward else { throw ValidationError("--view must be public or licensed") } }
        if view == nil && license == nil { throw ValidationError("--view public, or --license L for a license's view") }
        guard delimiter.utf8.count == 1 else { throw ValidationError("--delimiter must be one ASCII character") }
    }

    func run() throws {
        let m = try DatasetManifest.load(path: manifest)
        let v = view.flatMap(View.init(rawValue:)) ?? .licensed
        let dir = DataDirectory(path: global.resolvedDataDir)
        var keys: PseudonymKeys?
        var catalog: (any CatalogStore)?
        if dir.isInitialized || global.resolvedStore != nil {
            let opened = try openCatalog(global)
            catalog = opened
            keys = PseudonymKeys(secret: try opened.pseudonymSecret())
        }
        if keys == nil, m.fields.contains(where: { [.pseudonymize, .hash, .noise].contains(DefaultPolicy.action(for: $0, view: v)) }) {
            throw KaifangError.badInput("the \(v.rawValue) view pseudonymizes or hashes some fields with the platform secret: pass the --data-dir of an initialized data directory (or set KAIFANG_DATA_DIR)")
        }
        let audience = try ServingPlan.audience(view: v, licenseID: license, dataset: m.id, catalog: catalog)
        let plan = ServingPlan.build(policy: m, storedFields: nil, audience: audience, keys: keys)
        let src = try FileByteSource(path: file)
        let reader = CSVReader(source: src, fileName: (file as NSString).lastPathComponent, delimiter: delimiter.utf8.first!)
        try CSVMasker.run(reader: reader, plan: plan, manifest: m, sink: ByteSink(fileDescriptor: 1))
    }
}
