import Foundation
import KaifangAPI
import KaifangCore
import Masking
import OpenAPIRuntime
import Publishing
import Storage

extension APIHandler {
    /// Table Schema type of a field as the caller's view serves it (masked values are strings).
    static func tableSchemaType(_ f: FieldSpec, _ op: Masking.Operation?) -> String {
        if let op, op != .keep { return "string" }
        switch f.type {
        case .string: return "string"
        case .integer: return "integer"
        case .number: return "number"
        case .boolean: return "boolean"
        case .date: return "date"
        case .datetime: return "datetime"
        }
    }

    func getDataPackage(_ input: Operations.GetDataPackage.Input) async throws -> Operations.GetDataPackage.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let id = input.path.id
        guard let record = try catalog.dataset(id), record.isPublished || caller.actsFor(record) else {
            throw Problem(status: .notFound, detail: "no published dataset '\(id)': GET /v1/datasets lists them")
        }
        let access = try? Access.resolve(id, caller: caller, catalog: catalog, stewardship: stewardship, plans: plans)
        // The descriptor depends on the dataset, the caller's view (or none) and the links' base.
        let tag = EntityTag.of("package", parts: (access.map(EntityTag.parts) ?? EntityTag.parts(record) + ["none"])
                                                 + [caller.actsFor(record) ? "owner" : "", caller.baseURL])
        let headers = Operations.GetDataPackage.Output.Ok.Headers(eTag: tag, cacheControl: EntityTag.cacheControl(access?.view ?? .public))
        if EntityTag.matches(input.headers.ifNoneMatch, tag) {
            return .notModified(.init(headers: .init(eTag: tag, cacheControl: headers.cacheControl)))
        }
        var fields: [[String: (any Sendable)?]] = []
        for f in record.manifest.fields {
            let column = access?.plan.columns.first { $0.field.name == f.name }
            if let column, !column.included { continue }
            var d: [String: (any Sendable)?] = ["name": f.name, "type": Self.tableSchemaType(f, column?.operation),
                                              "kaifang:level": f.level.rawValue, "kaifang:action": column?.action.rawValue ?? "none"]
            if let t = f.title { d["title"] = t }
            if let s = f.semantic { d["kaifang:semantic"] = s.rawValue }
            if column?.operation == .keep || column == nil {
                var constraints: [String: (any Sendable)?] = [:]
                if let lo = f.min { constraints["minimum"] = lo }
                if let hi = f.max { constraints["maximum"] = hi }
                if !constraints.isEmpty { d["constraints"] = constraints }
            }
            fields.append(d)
        }
        let version = try catalog.versions(id).first { $0.number == record.publishedVersion }
        var resource: [String: (any Sendable)?] = [
            "name": id, "path": "\(caller.baseURL)/v1/datasets/\(id)/export?format=csv", "format": "csv", "mediatype": "text/csv",
            "encoding": "utf-8", "profile": "tabular-data-resource", "schema": ["fields": fields] as [String: (any Sendable)?],
        ]
        if let key = record.manifest.primaryKey {
            resource["schema"] = ["fields": fields, "primaryKey": key as [(any Sendable)?]] as [String: (any Sendable)?]
        }
        if let v = version { resource["kaifang:rows"] = v.rowCount }
        var package: [String: (any Sendable)?] = [
            "profile": "tabular-data-package", "name": id, "title": record.manifest.title, "id": "\(caller.baseURL)/v1/datasets/\(id)",
            "description": record.manifest.description, "version": String(record.publishedVersion ?? 0),
            "licenses": [["name": record.manifest.license.isEmpty ? "unspecified" : record.manifest.license]] as [(any Sendable)?],
            "contributors": [["title": record.manifest.department, "role": "publisher"]] as [(any Sendable)?],
            "keywords": [record.manifest.topic] as [(any Sendable)?],
            "resources": [resource] as [(any Sendable)?],
            "kaifang:tier": record.tier?.rawValue, "kaifang:view": access?.view.rawValue ?? "none",
        ]
        if let v = version { package["created"] = v.createdAt; package["kaifang:sha256"] = v.sha256 }
        return .ok(.init(headers: headers, body: .json(.init(additionalProperties: try OpenAPIObjectContainer(unvalidatedValue: package)))))
    }

    func getCatalogJSONLD(_ input: Operations.GetCatalogJSONLD.Input) async throws -> Operations.GetCatalogJSONLD.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let base = caller.baseURL
        var entries: [(any Sendable)?] = []
        var cursor: String?
        repeat {
            let page = try catalog.search(DatasetQuery(limit: 100, cursor: cursor, includeUnpublished: false))
            for item in page.datasets {
                let d = item.record
                let m = d.manifest
                let iri = "\(base)/v1/datasets/\(d.id)"
                let versions = try catalog.versions(d.id)
                var versionIRIs: [(any Sendable)?] = []
                var previous: String?
                for v in versions {
                    let viri = "\(iri)/versions/\(v.number)"
                    var ve: [String: (any Sendable)?] = [
                        "@id": viri, "@type": "dcat:Dataset", "dct:identifier": "\(d.id)@\(v.number)", "dcat:version": String(v.number),
                        "dct:issued": ["@value": v.createdAt, "@type": "xsd:dateTime"] as [String: (any Sendable)?],
                        "dct:isVersionOf": ["@id": iri] as [String: (any Sendable)?],
                        "spdx:checksum": ["spdx:algorithm": "spdx:checksumAlgorithm_sha256", "spdx:checksumValue": v.sha256] as [String: (any Sendable)?],
                    ]
                    if let previous { ve["dcat:previousVersion"] = ["@id": previous] as [String: (any Sendable)?] }
                    previous = viri
                    entries.append(ve)
                    versionIRIs.append(["@id": viri] as [String: (any Sendable)?])
                }
                var entry: [String: (any Sendable)?] = [
                    "@id": iri, "@type": "dcat:Dataset", "dct:identifier": d.id, "dct:title": m.title, "dct:description": m.description,
                    "dct:publisher": ["@type": "foaf:Agent", "foaf:name": m.department] as [String: (any Sendable)?],
                    "dcat:keyword": [m.topic] as [(any Sendable)?], "dct:accrualPeriodicity": m.updateFrequency,
                    "dct:license": m.license, "dcat:version": String(d.publishedVersion ?? 0), "dcat:hasVersion": versionIRIs,
                    "kaifang:tier": d.tier?.rawValue,
                    "dcat:landingPage": ["@id": iri] as [String: (any Sendable)?],
                    "dcat:distribution": [
                        ["@type": "dcat:Distribution", "dcat:downloadURL": ["@id": "\(iri)/export?format=csv"] as [String: (any Sendable)?], "dcat:mediaType": "text/csv"] as [String: (any Sendable)?],
                        ["@type": "dcat:Distribution", "dcat:downloadURL": ["@id": "\(iri)/export?format=jsonl"] as [String: (any Sendable)?], "dcat:mediaType": "application/x-ndjson"] as [String: (any Sendable)?],
                        ["@type": "dcat:Distribution", "dcat:accessURL": ["@id": "\(iri)/datapackage.json"] as [String: (any Sendable)?], "dcat:mediaType": "application/json", "dct:conformsTo": ["@id": "https://specs.frictionlessdata.io/data-package/"] as [String: (any Sendable)?]] as [String: (any Sendable)?],
                    ] as [(any Sendable)?],
                ]
                if let spatial = m.spatial {
                    // GB/T 2260 divisions have no published IRIs: each is a dct:Location named by its code.
                    entry["dct:spatial"] = spatial.compactMap(Divisions.named).map { g in
                        ["@type": "dct:Location", "dct:identifier": g.code, "skos:prefLabel": ["@value": g.name, "@language": "zh"] as [String: (any Sendable)?],
                         "skos:inScheme": "GB/T 2260"] as [String: (any Sendable)?]
                    } as [(any Sendable)?]
                }
                if let t = m.temporal {
                    var period: [String: (any Sendable)?] = ["@type": "dct:PeriodOfTime", "dcat:startDate": ["@value": t.start, "@type": "xsd:date"] as [String: (any Sendable)?]]
                    if let end = t.end { period["dcat:endDate"] = ["@value": end, "@type": "xsd:date"] as [String: (any Sendable)?] }
                    entry["dct:temporal"] = period
                }
                if let v = versions.first(where: { $0.number == d.publishedVersion }) {
                    entry["dct:modified"] = ["@value": v.createdAt, "@type": "xsd:dateTime"] as [String: (any Sendable)?]
                }
                entries.append(entry)
            }
            cursor = page.nextCursor
        } while cursor != nil
        let catalogDoc: [String: (any Sendable)?] = [
            "@context": [
                "dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/", "foaf": "http://xmlns.com/foaf/0.1/",
                "skos": "http://www.w3.org/2004/02/skos/core#", "xsd": "http://www.w3.org/2001/XMLSchema#", "spdx": "http://spdx.org/rdf/terms#", "kaifang": "\(base)/ns#",
            ] as [String: (any Sendable)?],
            "@id": "\(base)/v1/catalog.jsonld", "@type": "dcat:Catalog", "dct:title": "Kaifang 开放 — public data catalog",
            "dcat:dataset": entries,
        ]
        let document = try OpenAPIObjectContainer(unvalidatedValue: catalogDoc)
        let tag = try EntityTag.ofContent("catalog", document)
        if EntityTag.matches(input.headers.ifNoneMatch, tag) {
            return .notModified(.init(headers: .init(eTag: tag, cacheControl: EntityTag.cacheControl(private: false))))
        }
        return .ok(.init(headers: .init(eTag: tag, cacheControl: EntityTag.cacheControl(private: false)), body: .applicationLdJson(.init(additionalProperties: document))))
    }

    func getStats(_ input: Operations.GetStats.Input) async throws -> Operations.GetStats.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let catalog = self.catalog
        let (s, f) = try await StoreThreads.run {
            (try catalog.stats(since: String(AuditTime.now(daysAgo: 30).prefix(10))), try Figures.of(catalog: catalog, today: Self.today))
        }
        func facets(_ f: [FacetCount]) -> [Components.Schemas.Facet] { f.map { .init(value: $0.value, count: $0.count) } }
        return .ok(.init(body: .json(.init(datasets: s.datasets, published: s.published, byTier: facets(s.byTier), byDepartment: facets(s.byDepartment),
                                           shouldOpen: s.shouldOpen, opened: s.opened, openRate: s.openRate,
                                           openItems: f.openItems.map {
                                               .init(department: $0.department, shouldOpen: $0.shouldOpen, items: $0.items, itemsOpened: $0.itemsOpened, openRate: $0.openRate)
                                           },
                                           reads30d: facets(s.reads),
                                           demand: f.demand.map(Self.demand), feedback: f.feedback.map(Self.feedback),
                                           showcases: f.showcases.map { .init(department: $0.department, approved: $0.approved, pending: $0.pending) }))))
    }
}
