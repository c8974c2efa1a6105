import Audit
import Foundation
import Ingest
import KaifangCore
import Masking
import Storage

/// Exports a dataset version through a view, to a file or standard output (`kaifang dataset
/// export`), as CSV, JSON Lines, or a bundle (`datapackage.json` + CSV, `.zip` or `.tar.gz`)
/// that `dataset import` reads back.
public struct Exporter: Sendable {
    public enum Format: String, Sendable, CaseIterable { case csv, jsonl, bundle }

    public let catalog: any CatalogStore
    public init(catalog: any CatalogStore) { self.catalog = catalog }

    /// Writes the export; `output` nil means standard output (not for bundles).
    /// - Returns: rows written.
    /// - Throws: `KaifangError.notFound` (dataset, version), `.badInput` (a bundle to stdout).
    @discardableResult
    public func export(dataset id: String, version: Int?, audience: Audience, format: Format, output: String?, actor: String) throws -> Int {
        let d = try catalog.requireDataset(id)
        let versions = try catalog.versions(id)
        guard let number = version ?? d.publishedVersion ?? versions.last?.number, let v = versions.first(where: { $0.number == number }) else {
            throw KaifangError.notFound("dataset '\(id)' has no version \(version.map(String.init) ?? "yet"): `kaifang dataset versions \(id)` lists them")
        }
        let plan = ServingPlan.build(dataset: d, version: v, audience: audience, keys: PseudonymKeys(secret: try catalog.pseudonymSecret()))
        let view = audience.view
        let columns = plan.columns.indices.filter { plan.columns[$0].included }
        let pool = VersionPool(perFile: 1)
        var served: (sha256: String, bytes: Int)?
        func stream(jsonl: Bool, to fd: Int32) throws -> Int {
            let producer = try ExportProducer(pool: pool, path: try catalog.localFile(v), plan: plan, columns: columns, jsonl: jsonl)
            let sink = ByteSink(fileDescriptor: fd)
            while let chunk = try producer.next() {
                sink.append(contentsOf: chunk)
                try sink.flush()
            }
            let summary = producer.summary ?? ("", 0, 0)
            served = (summary.sha256, summary.bytes)
            return summary.rows
        }
        func open(_ path: String) throws -> Int32 {
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw KaifangError.runtime("cannot write \(path): \(String(cString: strerror(errno)))") }
            return fd
        }
        let rows: Int
        switch format {
        case .csv, .jsonl:
            if let output {
                let fd = try open(output)
                defer { close(fd) }
                rows = try stream(jsonl: format == .jsonl, to: fd)
            } else {
                rows = try stream(jsonl: format == .jsonl, to: 1)
            }
        case .bundle:
            guard let output, Bundle.isBundle(output) else {
                throw KaifangError.badInput("a bundle needs -o FILE ending in .zip or .tar.gz")
            }
            let tmp = catalog.directory.temporaryFile(suffix: ".csv")
            defer { unlink(tmp) }
            let fd = try open(tmp)
            rows = try stream(jsonl: false, to: fd)
            close(fd)
            var exported = d.manifest
            exported.fields = columns.map { i in
                var f = plan.columns[i].field
                if !plan.columns[i].operation.keepsType { f.type = .string; f.min = nil; f.max = nil }
                return f
            }
            let manifestObject = try JSONSerialization.jsonObject(with: try exported.jsonData())
            let fields: [[String: Any]] = exported.fields.map { f in
                var o: [String: Any] = ["name": f.name, "type": f.type == .datetime ? "datetime" : f.type.rawValue, "kaifang:level": f.level.rawValue]
                if let t = f.title { o["title"] = t }
                return o
            }
            let descriptor: [String: Any] = [
                "profile": "tabular-data-package", "name": id, "title": d.manifest.title, "version": String(v.number),
                "kaifang:view": view.rawValue, "kaifang:sha256": v.sha256, "kaifang:manifest": manifestObject,
                "resources": [["name": id, "path": "\(id).csv", "profile": "tabular-data-resource", "format": "csv", "encoding": "utf-8",
                               "schema": ["fields": fields]]],
            ]
            let data = try JSONSerialization.data(withJSONObject: descriptor, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try Bundle.write(path: output, members: [("\(id).csv", tmp)], descriptor: data)
            let digest = try FileDigest.sha256(output)
            served = (digest.hex, digest.bytes)
        }
        var detail: [String: JSONValue] = [
            "version": .int(Int64(v.number)), "view": .string(view.rawValue), "format": .string(format.rawValue), "rows": .int(Int64(rows)),
            "fields": .object(Dictionary(uniqueKeysWithValues: columns.map { (plan.columns[$0].field.name, .string(plan.columns[$0].action.rawValue)) })),
        ]
        if let license = audience.licenseID { detail["license"] = .string(license) }
        if let served {
            detail["sha256"] = .string(served.sha256)
            detail["bytes"] = .int(Int64(served.bytes))
        }
        detail["version_sha256"] = .string(v.sha256)
        detail["fingerprinted"] = .array(plan.fingerprintedFields.map { .string($0) })
        try catalog.audit(actor: actor, action: "export.cli", dataset: id, detail: detail)
        return rows
    }
}
