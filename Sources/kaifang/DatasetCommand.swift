import ArgumentParser
import Foundation
import KaifangCore
import Ingest
import KaifangServer
import Masking
import Publishing
import Storage

struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset", abstract: "Import, publish and inspect datasets.",
        subcommands: [Import.self, Publish.self, Withdraw.self, List.self, Show.self, Versions.self, Changes.self, Quality.self, Classify.self, Field.self, Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a version through a view: CSV, JSON Lines, or a bundle that `dataset import` reads back.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String
        @Option(help: "public, licensed or steward (raw values); --license alone means licensed.") var view: String?
        @Option(help: "The license whose view to export (licensed view): its granted fields, its pseudonyms.") var license: String?
        @Option(help: "csv, jsonl or bundle (datapackage.json + CSV; -o FILE.zip or FILE.tar.gz).") var format: String = "csv"
        @Option(help: "The version (default: the published one, else the newest).") var version: Int?
        @Option(name: .shortAndLong, help: "The output file (default: standard output).") var output: String?

        func validate() throws {
            guard view.map({ View(rawValue: $0) != nil }) ?? true else { throw ValidationError("--view must be public, licensed or steward") }
            guard Exporter.Format(rawValue: format) != nil else { throw ValidationError("--format must be csv, jsonl or bundle") }
        }

        func run() throws {
            let catalog = try openCatalog(global)
            let chosen = view.flatMap(View.init(rawValue:)) ?? (license == nil ? .public : .licensed)
            let audience = try ServingPlan.audience(view: chosen, licenseID: license, dataset: id, catalog: catalog)
            let rows = try Exporter(catalog: catalog).export(
                dataset: id, version: version, audience: audience, format: Exporter.Format(rawValue: format)!, output: output, actor: cliActor)
            if let output { FileHandle.standardError.write(Data("Exported \(rows) rows of \(id) (\(chosen.rawValue) view) to \(output).\n".utf8)) }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "import", abstract: "Import a CSV file as a new immutable version of a dataset.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The file: CSV (RFC 4180, a header naming the fields by name or title; UTF-8 or GBK) or JSON Lines (.jsonl/.ndjson, UTF-8).")
        var file: String
        @Option(help: "The dataset id (lower-case letters, digits, '-' and '_'); default: the manifest's id.")
        var id: String?
        @Option(help: "The manifest (dataset.json) describing the fields. Without one, a new dataset's schema is inferred from the file (review it with `dataset show`).")
        var manifest: String?
        @Option(help: "The file's encoding: auto (UTF-8 unless the bytes say GBK), utf-8, gb18030 (gbk).")
        var encoding: String = "auto"
        @Option(name: .customLong("on-error"), help: "reject: refuse the file if any row is bad (default); skip: import the good rows and write the bad ones to rejects/.")
        var onError: String = "reject"
        @Option(help: "The field delimiter, one ASCII character.")
        var delimiter: String = ","

        func validate() throws {
            guard id != nil || manifest != nil else {
                throw ValidationError("name the dataset: --id ID, or --manifest dataset.json (its id is used)")
            }
            guard OnError(rawValue: onError) != nil else { throw ValidationError("--on-error must be reject or skip") }
            do { _ = try TextEncoding.parse(encoding) } catch let e as KaifangError { throw ValidationError(e.message) }
            guard delimiter.utf8.count == 1, let b = delimiter.utf8.first, b < 0x80, b != 0x22, b != 0x0A, b != 0x0D else {
                throw ValidationError("--delimiter must be one ASCII character other than a quote or a newline")
            }
        }

        func run() throws {
            let catalog = try openCatalog(global)
            let m = try manifest.map { try DatasetManifest.load(path: $0) }
            guard let id = id ?? m?.id else { throw KaifangError.badInput("name the dataset: --id ID, or --manifest dataset.json") }
            let publisher = Publisher(catalog: catalog)
            let progress = ProgressReporter(enabled: !global.json)
            let existed = try catalog.dataset(id) != nil
            let lower = file.lowercased()
            let outcome = Bundle.isBundle(lower)
                ? try publisher.importBundle(path: file, datasetID: id, manifest: m, onError: OnError(rawValue: onError)!, actor: cliActor, progress: progress.update)
                : lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson")
                ? try publisher.importJSONLines(path: file, datasetID: id, manifest: m, onError: OnError(rawValue: onError)!, actor: cliActor, progress: progress.update)
                : try publisher.importCSV(path: file, datasetID: id, manifest: m, onError: OnError(rawValue: onError)!,
                                                  delimiter: delimiter.utf8.first!, encoding: try TextEncoding.parse(encoding), inferIfNew: true,
                                                  actor: cliActor, progress: progress.update)
            progress.finish()
            let v = outcome.version
            if global.json {
                try printJSON(ImportJSON(dataset: v.dataset, version: v.number, rows: v.rowCount, sha256: v.sha256, rejected: outcome.rejected, rejects_file: outcome.rejectsFile))
            } else {
                print("Imported \(v.rowCount) rows into \(v.dataset) version \(v.number) (sha256 \(v.sha256.prefix(12))…).")
                if m == nil && !existed {
                    print("No manifest: the schema was inferred (types from the values, levels from the classifier, unknown columns L2):")
                    for f in v.manifest.fields { print("  \(f.name)\(f.title.map { " (\($0))" } ?? ""): \(f.type.rawValue), \(f.semantic?.rawValue ?? "-"), \(f.level.rawValue)\(f.qi ? ", qi" : "")") }
                    print("Review it with `kaifang dataset show \(v.dataset)`; change a field with `kaifang dataset field \(v.dataset) FIELD --level L`.")
                }
                if outcome.rejected > 0, let f = outcome.rejectsFile { print("\(outcome.rejected) rows refused; they and the reasons are in \(f).") }
                if let json = try catalog.versionChanges(v.dataset, v.number), let diff = try? JSONDecoder().decode(VersionDiff.self, from: Data(json.utf8)) {
                    print("Changes \(diff.summary) — compared in \(diff.seconds) s.")
                }
                if let d = try catalog.dataset(v.dataset), d.publishedVersion != nil, d.publishedVersion != v.number {
                    print("Readers still see version \(d.publishedVersion!); publish the new one with: kaifang dataset publish \(v.dataset) --version \(v.number) --tier \(d.tier!.rawValue)")
                } else if try catalog.dataset(v.dataset)?.publishedVersion == nil {
                    print("Not published yet: kaifang dataset publish \(v.dataset) --tier open|conditional|restricted")
                }
            }
        }
    }

    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "publish", abstract: "Publish a dataset at a tier (moves the published pointer atomically).",
                                                        discussion: "Publishing `open` checks the k-anonymity of the public view over the quasi-identifiers and refuses below --min-k unless --force --reason is given (audited).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String
        @Option(help: "open (无条件开放), conditional (有条件开放) or restricted (不予开放).") var tier: String
        @Option(help: "The version to publish (default: the newest).") var version: Int?
        @Option(name: .customLong("min-k"), help: "The smallest k-anonymity an open dataset's public view may have.") var minK: Int = Stewardship.defaultMinimumK
        @Flag(help: "Publish open even below --min-k (needs --reason; audited).") var force = false
        @Option(help: "Why forcing is acceptable (recorded in the audit log).") var reason: String?

        func validate() throws {
            guard Tier(rawValue: tier) != nil else { throw ValidationError("--tier must be open, conditional or restricted") }
            guard minK >= 1 else { throw ValidationError("--min-k must be at least 1") }
        }

        func run() throws {
            let catalog = try openCatalog(global)
            let (d, report) = try Stewardship(catalog: catalog).publish(dataset: id, version: version, tier: Tier(rawValue: tier)!, force: force,
                                                                        reason: reason, minimumK: minK, actor: cliActor)
            if global.json {
                var out = ["dataset": d.id, "tier": tier, "version": String(d.publishedVersion ?? 0)]
                if let k = report?.k { out["k"] = String(k) }
                try printJSON(out)
            } else {
                print("Published \(d.id) version \(d.publishedVersion ?? 0) as \(tier) (\(Tier(rawValue: tier)!.chinese)).")
                if let r = report, let k = r.k {
                    print("k-anonymity of the public view: \(k) over \(r.quasiIdentifiers.joined(separator: ", ")) (\(r.classes) groups\(r.passes ? "" : "; FORCED below \(r.threshold)"))")
                }
            }
        }
    }

    struct Classify: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "classify", abstract: "Propose each field's semantic type, level and quasi-identifier flag from a sample.",
                                                        discussion: "Header hints (Chinese and English) and value validators with check digits. --apply writes the proposals with enough confidence; it never lowers a level.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String
        @Flag(help: "Write the accepted proposals into the dataset's field policy (audited).") var apply = false
        @Option(name: .customLong("min-confidence"), help: "Accept proposals at or above this confidence (0–1).") var minConfidence: Double = 0.8
        @Option(help: "How many rows to sample.") var sample: Int = 1000

        func run() throws {
            let catalog = try openCatalog(global)
            let s = Stewardship(catalog: catalog)
            let proposals = try s.classify(dataset: id, sampleSize: max(1, sample))
            let current = try catalog.requireDataset(id).manifest
            var changed: [String] = []
            if apply { changed = try s.applyClassification(dataset: id, proposals: proposals, minimumConfidence: minConfidence, actor: cliActor) }
            if global.json {
                try printJSON(proposals.map { ProposalJSON(field: $0.field, semantic: $0.semantic?.rawValue, level: $0.level.rawValue, qi: $0.qi,
                                                           confidence: $0.confidence, reason: $0.reason, accepted: $0.confidence >= minConfidence,
                                                           applied: changed.contains($0.field)) })
                return
            }
            printTable(["field", "now", "proposed", "qi", "confidence", "why"], proposals.map { p in
                let f = current.field(named: p.field)
                let now = "\(f?.semantic?.rawValue ?? "-") \(f?.level.rawValue ?? "")"
                return [p.field, now, "\(p.semantic?.rawValue ?? "-") \(p.level.rawValue)", p.qi ? "yes" : "", String(format: "%.2f%@", p.confidence, p.confidence >= minConfidence ? "" : " (low)"), p.reason]
            })
            if apply {
                print(changed.isEmpty ? "\nNothing changed." : "\nApplied to: \(changed.joined(separator: ", ")) (levels are never lowered).")
            } else {
                print("\nRun again with --apply to write the proposals with confidence ≥ \(minConfidence).")
            }
        }
    }

    struct Field: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "field", abstract: "Set a field's level, semantic type, quasi-identifier flag or masking action.",
                                                        discussion: "--type names the semantic type (resident_id, phone, …); the storage type of imported versions cannot change.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String
        @Argument(help: "The field name.") var field: String
        @Option(help: "L1, L2, L3 or L4.") var level: String?
        @Option(help: "The semantic type (resident_id, phone, person_name, address, category, …).") var type: String?
        @Option(help: "true or false: whether the field is a quasi-identifier.") var qi: Bool?
        @Option(help: "Override the default action: keep, suppress, mask, pseudonymize, generalize, noise, hash.") var action: String?
        @Flag(name: .customLong("clear-action"), help: "Remove the override; the default matrix applies again.") var clearAction = false
        @Option(help: "Mark licensees' copies of this number with their license's fingerprint, each value within this tolerance (docs/provenance.md).") var fingerprint: Double?
        @Flag(name: .customLong("clear-fingerprint"), help: "Serve licensees this number unmarked again.") var clearFingerprint = false

        func validate() throws {
            if let level, Level(rawValue: level) == nil { throw ValidationError("--level must be L1, L2, L3 or L4") }
            if let type, SemanticType(rawValue: type) == nil {
                throw ValidationError("--type must be one of \(SemanticType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let action, ActionName(rawValue: action) == nil {
                throw ValidationError("--action must be one of \(ActionName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if level == nil && type == nil && qi == nil && action == nil && !clearAction && fingerprint == nil && !clearFingerprint {
                throw ValidationError("give at least one of --level, --type, --qi, --action, --clear-action, --fingerprint, --clear-fingerprint")
            }
            if fingerprint != nil && clearFingerprint { throw ValidationError("--fingerprint and --clear-fingerprint contradict each other: give one") }
        }

        func run() throws {
            let f = try Stewardship(catalog: try openCatalog(global)).setField(
                dataset: id, field: field, level: level.flatMap(Level.init(rawValue:)), semantic: type.flatMap(SemanticType.init(rawValue:)),
                qi: qi, action: action.flatMap(ActionName.init(rawValue:)), clearAction: clearAction,
                fingerprint: fingerprint, clearFingerprint: clearFingerprint, actor: cliActor)
            if global.json { try printJSON(f); return }
            print("\(id).\(f.name): level \(f.level.rawValue), semantic \(f.semantic?.rawValue ?? "-"), qi \(f.qi ? "yes" : "no"), action \(f.action?.rawValue ?? "default") — public: \(DefaultPolicy.action(for: f, view: .public).rawValue), licensed: \(DefaultPolicy.action(for: f, view: .licensed).rawValue)\(f.fingerprint.map { ", licensed copies fingerprinted within ±\(Cell.format($0.tolerance))" } ?? "")")
        }
    }

    struct Withdraw: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "withdraw", abstract: "Unpublish a dataset; its versions stay for stewards.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String

        func run() throws {
            let catalog = try openCatalog(global)
            try catalog.withdraw(dataset: id, actor: cliActor)
            if global.json { try printJSON(["dataset": id, "published": "false"]) } else { print("Withdrew \(id); only stewards see it now.") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List every dataset in the catalog, published or not.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let catalog = try openCatalog(global)
            var all: [DatasetJSON] = []
            var cursor: String?
            repeat {
                let page = try catalog.search(DatasetQuery(limit: 100, cursor: cursor, includeUnpublished: true))
                all += page.datasets.map { DatasetJSON($0.record, rows: $0.rowCount) }
                cursor = page.nextCursor
            } while cursor != nil
            if global.json { try printJSON(all); return }
            if all.isEmpty { print("No datasets yet: kaifang dataset import FILE --id ID --manifest dataset.json"); return }
            let rows = all.map { [$0.id, $0.tier ?? "unpublished", $0.published_version.map(String.init) ?? "-", String($0.rows), $0.title] }
            printTable(["id", "tier", "version", "rows", "title"], rows)
        }
    }

    struct Changes: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "changes", abstract: "What changed in a version from the one before it, by the dataset's primary_key.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var which: VersionOptions

        func run() throws {
            let catalog = try openCatalog(global)
            let (id, n) = try which.resolve(catalog)
            guard let diff = try VersionDiff.of(id, n, catalog: catalog) else {
                throw KaifangError.notFound("version \(n) of '\(id)' is its first: it has no earlier version to change from")
            }
            if global.json { try printJSON(diff); return }
            print("\(id) version \(n): \(diff.rowsBefore) → \(diff.rowsAfter) rows; changes \(diff.summary).")
        }
    }

    struct Quality: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "quality", abstract: "A version's quality report: per field completeness, distinct values and refusals; refused rows; repeated keys.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var which: VersionOptions

        func run() throws {
            let catalog = try openCatalog(global)
            let (id, n) = try which.resolve(catalog)
            let r = try QualityReport.of(id, n, catalog: catalog)
            if global.json { try printJSON(r); return }
            let rejected = r.stats.rejectedRows.map { "\($0) refused at import" } ?? "refusals not recorded"
            print("\(id) version \(n): \(r.stats.rows) rows, \(rejected); \(r.valid ? "valid" : "not valid")")
            printTable(["field", "type", "present", "complete", "distinct", "refused"], r.fields.map {
                [$0.name, $0.type, String($0.present), String(format: "%.1f %%", $0.completeness * 100),
                 ($0.distinctExact ? "" : "≈") + String($0.distinct), $0.refused.map(String.init) ?? "—"]
            })
            if let k = r.primaryKey {
                print("primary key (\(k.fields.joined(separator: ", "))): \(k.duplicateKeys) repeated keys, \(k.duplicateRows) extra rows")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a dataset's metadata, fields (with the action per view) and versions.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String
        @Option(help: "Explain the actions of this view: public, licensed or steward.") var view: String = "public"
        @Option(help: "Explain the licensed view of this license (its granted fields); without it, a license granting every field.") var license: String?

        func validate() throws {
            guard View(rawValue: view) != nil else { throw ValidationError("--view must be public, licensed or steward") }
        }

        func run() throws {
            let catalog = try openCatalog(global)
            let d = try catalog.requireDataset(id)
            let versions = try catalog.versions(id)
            let v = View(rawValue: view)!
            let audience: Audience = v == .licensed && license == nil
                ? .licensee(licenseID: "any", fields: nil)
                : try ServingPlan.audience(view: v, licenseID: license, dataset: id, catalog: catalog)
            let explained = try Stewardship(catalog: catalog).plan(for: d, audience: audience).explain()
            if global.json {
                try printJSON(ShowJSON(dataset: DatasetJSON(d, rows: versions.first { $0.number == d.publishedVersion }?.rowCount ?? 0),
                                       manifest: d.manifest, view: view,
                                       actions: Dictionary(uniqueKeysWithValues: explained.map { ($0.field, $0.action.rawValue) }),
                                       versions: versions.map(VersionJSON.init)))
                return
            }
            let m = d.manifest
            print("\(m.id): \(m.title)")
            if !m.description.isEmpty { print(m.description) }
            print("department: \(m.department)   topic: \(m.topic)   updated: \(m.updateFrequency)")
            print("tier: \(d.tier.map { "\($0.rawValue) (\($0.chinese))" } ?? "unpublished")   published version: \(d.publishedVersion.map(String.init) ?? "-")   privacy unit: \(m.entity ?? "one row")")
            print("")
            printTable(["field", "title", "type", "semantic", "level", "qi", "\(view) action", "example"], zip(m.fields, explained).map { f, e in
                [f.name, f.title ?? "", f.type.rawValue, f.semantic?.rawValue ?? "", f.level.rawValue, f.qi ? "yes" : "", e.action.rawValue, e.example ?? ""]
            })
            print("")
            printVersions(versions, published: d.publishedVersion, fullHash: false)
        }
    }

    struct Versions: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "versions", abstract: "List a dataset's versions (* marks the published one).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The dataset id.") var id: String

        func run() throws {
            let catalog = try openCatalog(global)
            let d = try catalog.requireDataset(id)
            let versions = try catalog.versions(id)
            if global.json { try printJSON(versions.map(VersionJSON.init)); return }
            printVersions(versions, published: d.publishedVersion, fullHash: true)
        }
    }
}

struct ProposalJSON: Encodable {
    var field: String
    var semantic: String?
    var level: String
    var qi: Bool
    var confidence: Double
    var reason: String
    var accepted: Bool
    var applied: Bool
}

struct ImportJSON: Encodable {
    var dataset: String
    var version: Int
    var rows: Int
    var sha256: String
    var rejected: Int
    var rejects_file: String?
}

struct DatasetJSON: Encodable {
    var id: String
    var title: String
    var department: String
    var topic: String
    var tier: String?
    var published_version: Int?
    var rows: Int

    init(_ d: DatasetRecord, rows: Int) {
        id = d.id; title = d.manifest.title; department = d.manifest.department; topic = d.manifest.topic
        tier = d.tier?.rawValue; published_version = d.publishedVersion; self.rows = rows
    }
}

struct VersionJSON: Encodable {
    var number: Int
    var rows: Int
    var sha256: String
    var source: String
    var created_at: String
    var created_by: String

    init(_ v: VersionRecord) {
        number = v.number; rows = v.rowCount; sha256 = v.sha256; source = v.source; created_at = v.createdAt; created_by = v.createdBy
    }
}

struct ShowJSON: Encodable {
    var dataset: DatasetJSON
    var manifest: DatasetManifest
    var view: String
    var actions: [String: String]
    var versions: [VersionJSON]
}

/// Prints a dataset's versions; `*` marks the published one.
func printVersions(_ versions: [VersionRecord], published: Int?, fullHash: Bool) {
    printTable(["version", "rows", "sha256", "created", "by", "source"], versions.map {
        ["\($0.number)\($0.number == published ? "*" : "")", String($0.rowCount), fullHash ? $0.sha256 : String($0.sha256.prefix(12)),
         $0.createdAt, $0.createdBy, $0.source]
    })
}

/// Prints rows as an aligned table (widths counted in display columns: CJK counts 2).
func printTable(_ header: [String], _ rows: [[String]]) {
    func width(_ s: String) -> Int {
        s.unicodeScalars.reduce(0) { $0 + (($1.value >= 0x1100 && ($1.value <= 0x115F || ($1.value >= 0x2E80 && $1.value <= 0xA4CF) || ($1.value >= 0xAC00 && $1.value <= 0xD7A3) || ($1.value >= 0xF900 && $1.value <= 0xFAFF) || ($1.value >= 0xFF00 && $1.value <= 0xFF60) || ($1.value >= 0x20000 && $1.value <= 0x3FFFD))) ? 2 : 1) }
    }
    let all = [header] + rows
    var widths = Array(repeating: 0, count: header.count)
    for r in all { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], width(c)) } }
    for (n, r) in all.enumerated() {
        let line = r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - width(c)) }.joined(separator: "  ")
        print(line)
        if n == 0 { print(widths.enumerated().map { i, w in String(repeating: "-", count: i == widths.count - 1 ? max(w, 1) : w) }.joined(separator: "  ")) }
    }
}

/// A progress line on a terminal (rows, MB/s); silent when stderr is not a terminal.
final class ProgressReporter {
    let enabled: Bool
    let start = Date()
    var shown = false

    init(enabled: Bool) { self.enabled = enabled && isatty(2) == 1 }

    func update(rows: Int, bytes: Int64) {
        guard enabled else { return }
        let secs = max(Date().timeIntervalSince(start), 0.001)
        let mb = Double(bytes) / 1_048_576
        FileHandle.standardError.write(Data(String(format: "\r  %d rows  %.1f MB  %.1f MB/s   ", rows, mb, mb / secs).utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// A dataset and one of its versions, the newest unless given.
struct VersionOptions: ParsableArguments {
    @Argument(help: "The dataset id.") var id: String
    @Option(help: "The version (default: the newest).") var version: Int?

    /// - Throws: `KaifangError.notFound` for an unknown dataset or one without versions.
    func resolve(_ catalog: any CatalogStore) throws -> (String, Int) {
        _ = try catalog.requireDataset(id)
        guard let n = try version ?? catalog.versions(id).last?.number else { throw KaifangError.notFound("'\(id)' has no version yet") }
        return (id, n)
    }
}
