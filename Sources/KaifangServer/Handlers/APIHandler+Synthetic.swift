import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Publishing
import Sandbox
import Storage
import VersionFormat

extension APIHandler {
    func getSynthetic(_ input: Operations.GetSynthetic.Input) async throws -> Operations.GetSynthetic.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let id = input.path.id
        guard let (d, v) = try catalog.publishedVersion(id) else {
            throw Problem(status: .notFound, detail: "no published dataset '\(id)': GET /v1/datasets lists them")
        }
        let n = input.query.rows ?? 100
        guard (1...1000).contains(n) else { throw Problem(status: .badRequest, detail: "rows must be 1–1000") }
        // The caller's fields, as the one plan builder decides them: a steward (or the owning department) every field, a
        // key holding a license (rows or sandbox) its granted fields, anyone else the public view's.
        let audience: Audience
        if caller.actsFor(d) {
            audience = .steward
        } else if let key = caller.key,
                  let license = try catalog.activeLicense(keyID: key.id, dataset: id, use: .rows) ?? catalog.activeLicense(keyID: key.id, dataset: id, use: .sandbox) {
            audience = Audience(license: license)
        } else {
            audience = .publicView
        }
        let plan = ServingPlan.build(dataset: d, version: v, audience: audience, keys: try stewardship.keys())
        var manifest = d.manifest
        manifest.fields = plan.columns.filter(\.included).map(\.field)
        // Real values only of L1 category fields the caller is served unchanged, so that
        // synthetic queries can group by them; every other value is made up.
        var categories: [String: [String]] = [:]
        let reader = try VersionReader(path: try catalog.localFile(v))
        for c in plan.columns where c.included && c.operation == .keep && c.field.semantic == .category && c.field.level == .L1 {
            let f = c.field
            let values = try reader.query("SELECT DISTINCT \(quoteIdentifier(f.name)) FROM rows WHERE \(quoteIdentifier(f.name)) IS NOT NULL LIMIT 200")
            categories[f.name] = values.compactMap { $0.first?.text }
        }
        if let s = input.query.seed, s < 0 { throw Problem(status: .badRequest, detail: "seed must be 0 or more") }
        let seed = input.query.seed.map { UInt64($0) } ?? id.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
        var generator = SyntheticGenerator(manifest: manifest, categories: categories, seed: seed)
        let names = manifest.fields.map(\.name)
        var rows: [[String: (any Sendable)?]] = []
        for _ in 0..<n {
            var object: [String: (any Sendable)?] = [:]
            for (name, cell) in zip(names, generator.row()) {
                switch cell {
                case .null: object[name] = nil as String?
                case .integer(let i): object[name] = Int(i)
                case .real(let r): object[name] = r
                case .text(let s): object[name] = s
                }
            }
            rows.append(object)
        }
        return .ok(.init(body: .json(.init(dataset: id, synthetic: true, fields: names,
                                           rows: try rows.map { .init(additionalProperties: try OpenAPIObjectContainer(unvalidatedValue: $0)) }))))
    }
}
