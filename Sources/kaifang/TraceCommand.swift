import ArgumentParser
import Foundation
import KaifangCore
import Publishing

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Name the license a leaked file was served to (数据溯源).",
        discussion: """
            Reads a CSV (with its header) or JSON Lines file — any subset of the rows and columns \
            of a licensed export or rows response, in any order — and weighs every rows license \
            (revoked and expired ones too) of each dataset whose fingerprinted fields the file \
            has. A license is named only when the chance that a file nobody served it agrees as \
            well, times the licenses tried, is at most 1e-9. The trace is recorded in the audit \
            log (the file's SHA-256, rows, licenses named); no value of the file is printed. \
            docs/provenance.md explains the scheme and what it cannot do.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The file: CSV with a header line, or JSON Lines.") var file: String
    @Option(help: "Only this dataset's licenses.") var dataset: String?

    func run() throws {
        let catalog = try openCatalog(global)
        let report = try Tracer.trace(file: file, dataset: dataset, catalog: catalog, actor: "cli:steward")
        if global.json {
            func candidate(_ c: Tracer.Candidate) -> [String: Any] {
                ["license": c.license, "key": c.keyID, "values": c.values, "agreeing": c.agreeing,
                 "false_accusation_probability": min(1, pow(10, c.log10P) * Double(report.tried)), "log10_p": c.log10P]
            }
            let object: [String: Any] = [
                "file": report.file, "sha256": report.sha256, "rows": report.rows, "licenses_tried": report.tried,
                "named": report.named,
                "datasets": report.datasets.map { d in
                    ["dataset": d.dataset, "fields": d.fields, "values": d.values,
                     "named": d.named.map(candidate), "closest": d.closest.map(candidate)] as [String: Any]
                },
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(report.file): \(report.rows) rows, SHA-256 \(report.sha256); \(report.tried) license(s) tried")
        for d in report.datasets {
            print("dataset \(d.dataset): fingerprinted fields \(d.fields.joined(separator: ", ")); \(d.values) distinct values")
            for c in d.named {
                print("  NAMED \(c.license) (key \(c.keyID)): \(c.agreeing) of \(c.values) values on its marks; false-accusation probability ≤ \(Self.probability(c.log10P, tried: report.tried))")
            }
            if d.named.isEmpty {
                print("  no license's fingerprint found (nothing reaches 1e-9)")
                for c in d.closest {
                    print("  closest: \(c.license): \(c.agreeing) of \(c.values) on its marks, chance \(Self.probability(c.log10P, tried: report.tried)) — not enough to name it")
                }
            }
        }
    }

    /// 10^log10P × tried, written as `3.2e-41`.
    static func probability(_ log10P: Double, tried: Int) -> String {
        let l = log10P + log10(Double(max(tried, 1)))
        if l >= 0 { return "1" }
        let exponent = floor(l)
        return String(format: "%.1fe%d", pow(10, l - exponent), Int(exponent))
    }
}

struct ProvenanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provenance",
        abstract: "Every export of a dataset as W3C PROV-O / DCAT JSON-LD: version, view, license, receiver, time, SHA-256.",
        discussion: "Read from the audit chain: API exports are recorded once their last byte was handed over (`export.provenance`), CLI exports as they are written (`export.cli`). A leaked file's SHA-256 found here names its export exactly; a changed or partial file is traced with `kaifang trace`.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The dataset.") var dataset: String
    @Option(help: "Only the exports served under this license.") var license: String?
    @Option(help: "Only the export whose SHA-256 is this (hex).") var sha256: String?

    func run() throws {
        let catalog = try openCatalog(global)
        _ = try catalog.requireDataset(dataset)
        var exports = try Provenance.exports(catalog: catalog, dataset: dataset, license: license)
        if let sha256 { exports = exports.filter { $0.sha256 == sha256.lowercased() } }
        let data = try JSONSerialization.data(withJSONObject: Provenance.document(exports), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }
}
