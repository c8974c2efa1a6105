import Audit
import Foundation
import KaifangAPI
import KaifangCore
import Masking
import OpenAPIRuntime
import Publishing
import Sandbox
import Storage

/// The open API: implements the protocol generated from `openapi/openapi.yaml`.
struct APIHandler: APIProtocol {
    let catalog: any CatalogStore
    let metrics: ServerMetrics
    let version: String
    let configuration: AppConfiguration
    let stewardship: Stewardship
    let pool: VersionPool
    let limiter: RateLimiter
    let auditBatcher: AuditBatcher
    let plans: PlanCache
    let scorecards = ScorecardCache()
    let jobs: JobService
    let jobWake: JobWake
    let children: ChildRegistry
    let usage: UsageMeter
    let sinceCache = SinceCache()

    init(catalog: any CatalogStore, metrics: ServerMetrics, version: String, configuration: AppConfiguration,
         jobs: JobService, jobWake: JobWake, children: ChildRegistry, usage: UsageMeter) {
        self.jobs = jobs; self.jobWake = jobWake; self.children = children; self.usage = usage
        self.catalog = catalog
        self.metrics = metrics
        self.version = version
        self.configuration = configuration
        self.stewardship = Stewardship(catalog: catalog)
        self.pool = VersionPool()
        self.auditBatcher = AuditBatcher(catalog: catalog)
        self.plans = PlanCache()
        self.limiter = RateLimiter(store: catalog, keyRate: configuration.keyRate, keyBurst: configuration.keyBurst,
                                   anonymousRate: configuration.anonymousRate, anonymousBurst: configuration.anonymousBurst)
    }

    static func date(_ s: String?) -> Date? {
        s.flatMap(AuditChain.date)
    }

    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        do {
            let n = try catalog.datasetCount()
            return .ok(.init(body: .json(.init(status: .ok, version: version, datasets: n))))
        } catch {
            return .serviceUnavailable(.init(body: .applicationProblemJson(.init(
                _type: "https://kaifang.example/problems/unavailable", title: "Service Unavailable", status: 503,
                detail: "the catalog database does not answer", instance: "/healthz"))))
        }
    }

    func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        .ok(.init(body: .plainText(HTTPBody(metrics.registry.emitToBuffer()))))
    }

    func getOpenAPISpec(_ input: Operations.GetOpenAPISpec.Input) async throws -> Operations.GetOpenAPISpec.Output {
        .ok(.init(body: .yaml(HTTPBody(EmbeddedFiles.data("openapi.yaml") ?? Data()))))
    }

    func listDatasets(_ input: Operations.ListDatasets.Input) async throws -> Operations.ListDatasets.Output {
        let q = input.query
        let caller = Caller.current
        try limiter.admit(caller)
        let now = Date()
        let page: DatasetPage
        do {
            let query = DatasetQuery(q: q.q, department: q.department, tier: q.tier.flatMap { Tier(rawValue: $0.rawValue) },
                                     topic: q.topic, limit: q.limit ?? 20, cursor: q.cursor, includeUnpublished: caller.isSteward,
                                     freshness: q.freshness.flatMap { Freshness(rawValue: $0.rawValue) }, now: now,
                                     city: try q.city.map { try Divisions.require($0, level: .city, parameter: "city") },
                                     county: try q.county.map { try Divisions.require($0, level: .county, parameter: "county") })
            page = try catalog.search(query)
        } catch let e as KaifangError where e.kind == .badInput {
            return .badRequest(.init(body: .applicationProblemJson(Self.problem(Problem(e, instance: "/v1/datasets")))))
        }
        let items = page.datasets.map { item in
            Components.Schemas.DatasetSummary(
                id: item.record.id, title: item.record.manifest.title, description: item.record.manifest.description,
                department: item.record.manifest.department, topic: item.record.manifest.topic,
                tier: item.record.tier.flatMap { .init(rawValue: $0.rawValue) }, publishedVersion: item.record.publishedVersion,
                rowCount: item.rowCount, updateFrequency: item.record.manifest.updateFrequency,
                updatedAt: Self.date(item.updatedAt), freshness: Self.freshness(item.record, updatedAt: item.updatedAt, now: now),
                nextUpdateDue: Self.nextDue(item.record, updatedAt: item.updatedAt), url: "/v1/datasets/\(item.record.id)")
        }
        func facets(_ f: [FacetCount]) -> [Components.Schemas.Facet] { f.map { .init(value: $0.value, count: $0.count) } }
        func places(_ f: [FacetCount]) -> [Components.Schemas.Facet] { f.map { .init(value: $0.value, count: $0.count, label: Divisions.named($0.value)?.name) } }
        let list = Components.Schemas.DatasetList(datasets: items, total: page.total,
                                                  facets: .init(city: places(page.cities), county: places(page.counties),
                                                                freshness: facets(page.freshness), department: facets(page.departments),
                                                                tier: facets(page.tiers), topic: facets(page.topics)),
                                                  nextCursor: page.nextCursor)
        let tag = try EntityTag.ofContent("list", list)
        let cacheControl = EntityTag.cacheControl(private: caller.isSteward)
        if EntityTag.matches(input.headers.ifNoneMatch, tag) { return .notModified(.init(headers: .init(eTag: tag, cacheControl: cacheControl))) }
        return .ok(.init(headers: .init(eTag: tag, cacheControl: cacheControl), body: .json(list)))
    }

    /// A division as the API shows it.
    static func division(_ d: Division) -> Components.Schemas.Division {
        .init(code: d.code, name: d.name, level: .init(rawValue: d.level.rawValue) ?? .county, city: d.level == .county ? d.cityCode : nil)
    }

    /// A published dataset's freshness at `now`, from when its published version was made.
    static func freshness(_ record: DatasetRecord, updatedAt: String?, now: Date) -> Components.Schemas.Freshness? {
        guard record.isPublished, let at = date(updatedAt) else { return nil }
        return .init(rawValue: Freshness.of(frequency: record.manifest.updateFrequency, updatedAt: at, now: now).rawValue)
    }

    static func metadataScore(_ record: DatasetRecord) -> Components.Schemas.MetadataScore {
        let s = MetadataScore.of(record)
        return .init(points: s.points, max: s.max, rating: .init(rawValue: s.rating) ?? .bad,
                     indicators: s.indicators.map { .init(dimension: .init(rawValue: $0.dimension) ?? .findability, name: $0.name, points: $0.points, max: $0.max) })
    }

    static func nextDue(_ record: DatasetRecord, updatedAt: String?) -> Date? {
        guard record.isPublished, let at = date(updatedAt) else { return nil }
        return Freshness.nextDue(frequency: record.manifest.updateFrequency, updatedAt: at)
    }

    func getDataset(_ input: Operations.GetDataset.Input) async throws -> Operations.GetDataset.Output {
        let id = input.path.id
        let caller = Caller.current
        try limiter.admit(caller)
        guard let record = try catalog.dataset(id), record.isPublished || caller.actsFor(record) else {
            return .notFound(.init(body: .applicationProblemJson(Self.problem(Problem(
                status: .notFound, detail: "no published dataset '\(id)': GET /v1/datasets lists them", instance: "/v1/datasets/\(id)")))))
        }
        // The caller's view is the one the rows endpoint would serve (none when it would refuse).
        let access = try? Access.resolve(id, caller: caller, catalog: catalog, stewardship: stewardship, plans: plans)
        let view = access?.view
        let fields = record.manifest.fields.map { f in
            let column = access?.plan.columns.first { $0.field.name == f.name }
            let action = column.map { $0.included ? $0.action.rawValue : "not granted" } ?? "none"
            var marked = false
            if let column, column.included, case .fingerprint = column.operation { marked = true }
            return Components.Schemas.Field(name: f.name, title: f.title, _type: .init(rawValue: f.type.rawValue) ?? .string,
                                            semantic: f.semantic?.rawValue, level: .init(rawValue: f.level.rawValue) ?? .l4, qi: f.qi,
                                            action: action, fingerprintTolerance: f.fingerprint?.tolerance, fingerprinted: marked ? true : nil)
        }
        let versions = try catalog.versions(id)
        let owner = caller.actsFor(record)
        let visibleVersions = owner ? versions : versions.filter { $0.number == record.publishedVersion }
        let published = versions.first { $0.number == record.publishedVersion }
        let body = Components.Schemas.Dataset(
            id: record.id, title: record.manifest.title, description: record.manifest.description,
            department: record.manifest.department, topic: record.manifest.topic, updateFrequency: record.manifest.updateFrequency,
            metadataScore: Self.metadataScore(record),
            freshness: Self.freshness(record, updatedAt: published?.createdAt, now: Date()),
            nextUpdateDue: Self.nextDue(record, updatedAt: published?.createdAt),
            license: record.manifest.license, tier: record.tier.flatMap { .init(rawValue: $0.rawValue) },
            shouldOpen: record.manifest.shouldOpen, entity: record.manifest.entity, publishedVersion: record.publishedVersion,
            rowCount: published?.rowCount, view: view.map { .init(rawValue: $0.rawValue) ?? .none } ?? .none,
            spatial: record.manifest.spatial.map { $0.compactMap(Divisions.named).map(Self.division) },
            temporal: record.manifest.temporal.map { .init(start: $0.start, end: $0.end) }, fields: fields,
            versions: visibleVersions.map { v in
                .init(number: v.number, rowCount: v.rowCount, sha256: v.sha256, source: owner ? v.source : nil,
                      createdAt: Self.date(v.createdAt) ?? Date(timeIntervalSince1970: 0), published: v.number == record.publishedVersion)
            })
        // Stewards and the owning department see unpublished datasets and every version's
        // source: theirs is private.
        let tag = try EntityTag.ofContent("dataset", body)
        let cacheControl = EntityTag.cacheControl(private: owner || view == .licensed)
        if EntityTag.matches(input.headers.ifNoneMatch, tag) { return .notModified(.init(headers: .init(eTag: tag, cacheControl: cacheControl))) }
        return .ok(.init(headers: .init(eTag: tag, cacheControl: cacheControl), body: .json(body)))
    }

    static func problem(_ p: Problem) -> Components.Schemas.Problem {
        .init(_type: p.type, title: p.title, status: p.status, detail: p.detail, instance: p.instance)
    }
}
