import Foundation
import KaifangCore

/// A dataset as the catalog holds it.
public struct DatasetRecord: Sendable, Equatable {
    /// The current manifest (metadata and schema, with the steward's field overrides).
    public var manifest: DatasetManifest
    /// The tier it is published at; nil when unpublished.
    public var tier: Tier?
    /// The version readers are served; nil when unpublished.
    public var publishedVersion: Int?
    public var createdAt: String
    public var updatedAt: String

    package init(manifest: DatasetManifest, tier: Tier?, publishedVersion: Int?, createdAt: String, updatedAt: String) {
        self.manifest = manifest; self.tier = tier; self.publishedVersion = publishedVersion; self.createdAt = createdAt; self.updatedAt = updatedAt
    }

    public var id: String { manifest.id }
    /// Whether readers other than stewards can see it.
    public var isPublished: Bool { tier != nil && publishedVersion != nil }
}

/// One immutable version of a dataset.
public struct VersionRecord: Sendable, Equatable {
    public var dataset: String
    public var number: Int
    public var rowCount: Int
    /// SHA-256 of the canonical content.
    public var sha256: String
    /// Where it came from (a file name or URL).
    public var source: String
    /// The file, relative to the data directory.
    public var file: String
    /// The schema the version was imported with.
    public var manifest: DatasetManifest
    public var createdAt: String
    public var createdBy: String

    package init(dataset: String, number: Int, rowCount: Int, sha256: String, source: String, file: String, manifest: DatasetManifest,
                 createdAt: String, createdBy: String) {
        self.dataset = dataset; self.number = number; self.rowCount = rowCount; self.sha256 = sha256; self.source = source
        self.file = file; self.manifest = manifest; self.createdAt = createdAt; self.createdBy = createdBy
    }
}

/// An API key (without its secret, which is never stored).
public struct APIKeyRecord: Sendable, Equatable {
    /// The public part of the key (`kf_<id>_…`), shown in logs and audit events.
    public var id: String
    public var name: String
    public var role: Role
    public var createdAt: String
    public var revokedAt: String?
    /// The account holding the key (nil: a key a steward made for no account).
    public var accountID: String?
    /// Why its account is suspended, when it is: the key is refused until a steward reinstates it.
    public var suspension: String?
    public var accountSuspended: Bool { suspension != nil }
    /// Its limits from the account's tier (nil: the server's defaults).
    public var limits: KeyLimits?
    /// The department a publisher's or reviewer's key belongs to (nil for every other role).
    public var department: String?
    public var isActive: Bool { revokedAt == nil }

    package init(id: String, name: String, role: Role, createdAt: String, revokedAt: String?, accountID: String? = nil,
                 suspension: String? = nil, limits: KeyLimits? = nil, department: String? = nil) {
        self.id = id; self.name = name; self.role = role; self.createdAt = createdAt; self.revokedAt = revokedAt
        self.accountID = accountID; self.suspension = suspension; self.limits = limits; self.department = department
    }
}

/// A catalog search.
public struct DatasetQuery: Sendable {
    /// Words to find in title, description, department, topic and field titles.
    public var q: String?
    public var department: String?
    public var tier: Tier?
    public var topic: String?
    /// Page size.
    public var limit: Int = 20
    /// The opaque cursor of the previous page.
    public var cursor: String?
    /// Stewards also see unpublished datasets.
    public var includeUnpublished = false
    /// Only datasets in this state of freshness at `now`.
    public var freshness: Freshness?
    /// The time freshness is judged at.
    public var now = Date()
    /// Only datasets covering a place in this city (GB/T 2260 code): the city or one of its counties.
    public var city: String?
    /// Only datasets declaring this county (GB/T 2260 code).
    public var county: String?

    public init(q: String? = nil, department: String? = nil, tier: Tier? = nil, topic: String? = nil,
                limit: Int = 20, cursor: String? = nil, includeUnpublished: Bool = false, freshness: Freshness? = nil, now: Date = Date(),
                city: String? = nil, county: String? = nil) {
        self.q = q; self.department = department; self.tier = tier; self.topic = topic
        self.limit = limit; self.cursor = cursor; self.includeUnpublished = includeUnpublished
        self.freshness = freshness; self.now = now; self.city = city; self.county = county
    }
}

/// One facet value and how many datasets have it.
public struct FacetCount: Sendable, Equatable {
    public var value: String
    public var count: Int
    public init(value: String, count: Int) { self.value = value; self.count = count }
}

/// One page of catalog results.
public struct DatasetPage: Sendable {
    public var datasets: [(record: DatasetRecord, rowCount: Int, updatedAt: String?)]
    /// Matches over all pages.
    public var total: Int
    /// Counts by facet (`CatalogRules.facets`: department, tier, topic, freshness, city,
    /// county), each over the query with every filter but its own.
    public var facets: [String: [FacetCount]]
    /// The cursor of the next page; nil on the last.
    public var nextCursor: String?

    public var departments: [FacetCount] { facets["department"] ?? [] }
    public var tiers: [FacetCount] { facets["tier"] ?? [] }
    public var topics: [FacetCount] { facets["topic"] ?? [] }
    /// Published datasets by freshness at the query's `now`.
    public var freshness: [FacetCount] { facets["freshness"] ?? [] }
    /// Datasets by the cities (GB/T 2260) they declare a place in.
    public var cities: [FacetCount] { facets["city"] ?? [] }
    /// Datasets by the counties they declare.
    public var counties: [FacetCount] { facets["county"] ?? [] }

    package init(datasets: [(record: DatasetRecord, rowCount: Int, updatedAt: String?)], total: Int,
                 facets: [String: [FacetCount]], nextCursor: String?) {
        self.datasets = datasets; self.total = total; self.facets = facets; self.nextCursor = nextCursor
    }
}

/// What an import produced.
public struct ImportOutcome: Sendable {
    public var version: VersionRecord
    /// Rows refused and written to the rejects file (with `--on-error skip`).
    public var rejected: Int
    /// The rejects file, when rows were refused.
    public var rejectsFile: String?

    public init(version: VersionRecord, rejected: Int, rejectsFile: String?) {
        self.version = version; self.rejected = rejected; self.rejectsFile = rejectsFile
    }
}

/// A dataset published (at a version and tier) or withdrawn, in the order it happened: what
/// the Atom feeds list and webhooks announce.
public struct DatasetEvent: Sendable, Equatable {
    public var seq: Int64
    public var dataset: String
    /// `published` or `withdrawn`.
    public var kind: String
    public var version: Int?
    public var tier: Tier?
    public var at: String

    package init(seq: Int64, dataset: String, kind: String, version: Int?, tier: Tier?, at: String) {
        self.seq = seq; self.dataset = dataset; self.kind = kind; self.version = version; self.tier = tier; self.at = at
    }
}

/// A report kept with a version, derived from its immutable file.
public enum VersionReportKind: String, Sendable, CaseIterable {
    /// The changes from the version before, by primary key.
    case changes
    /// Completeness, distinct values, rejected values and repeated keys.
    case quality

    /// The `versions` column that holds it.
    package var column: String { rawValue + "_json" }
}
