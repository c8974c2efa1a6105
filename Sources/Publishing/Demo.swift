import Foundation
import KaifangCore
import Storage

/// Loads the sample datasets (`datasets/<id>/dataset.json` plus one CSV), with the departments
/// their manifests name, and publishes each at its manifest's tier.
public enum Demo {
    /// Imports every dataset folder under `datasetsFolder`.
    /// - Returns: one human line per dataset.
    /// - Throws: `KaifangError.notFound` when the folder has no datasets; import errors as they are.
    public static func load(datasetsFolder: String, into catalog: any CatalogStore, actor: String) throws -> [String] {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: datasetsFolder) else {
            throw KaifangError.notFound("\(datasetsFolder): no such folder: run the demo from the repository root or pass --datasets DIR")
        }
        let publisher = Publisher(catalog: catalog)
        var lines: [String] = []
        for name in entries.sorted() {
            let folder = (datasetsFolder as NSString).appendingPathComponent(name)
            let manifestPath = (folder as NSString).appendingPathComponent("dataset.json")
            guard fm.fileExists(atPath: manifestPath) else { continue }
            let manifest = try DatasetManifest.load(path: manifestPath)
            if !manifest.department.isEmpty, try !catalog.departments().contains(where: { $0.name == manifest.department }) {
                _ = try catalog.createDepartment(name: manifest.department, parent: nil, actor: actor)
            }
            let csvs = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".csv") }.sorted()
            guard let csv = csvs.first(where: { $0 == "\(manifest.id).csv" }) ?? csvs.first else {
                throw KaifangError.notFound("\(folder): no CSV file next to dataset.json")
            }
            let outcome = try publisher.importCSV(path: (folder as NSString).appendingPathComponent(csv), datasetID: manifest.id,
                                                  manifest: manifest, actor: actor)
            var line = "imported \(manifest.id): \(outcome.version.rowCount) rows"
            if let tier = manifest.tier {
                try Stewardship(catalog: catalog).publish(dataset: manifest.id, tier: tier, actor: actor)
                line += ", published \(tier.rawValue) (\(tier.chinese))"
            }
            lines.append(line)
        }
        guard !lines.isEmpty else {
            throw KaifangError.notFound("\(datasetsFolder) holds no dataset folders (each needs a dataset.json and a CSV)")
        }
        return lines
    }
}
