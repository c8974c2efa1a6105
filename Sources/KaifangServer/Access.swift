import Foundation
import KaifangCore
import Masking
import Publishing
import Storage

/// Who may read a dataset's rows, through which view: the one place the tier rules of docs/policy.md
/// are enforced for reads.
struct Access {
    let dataset: DatasetRecord
    let version: VersionRecord
    let view: View
    let license: LicenseRecord?
    let plan: MaskingPlan

    /// Resolves the caller's access to the rows of `id`'s published version.
    /// - Throws: `Problem` 404 (unknown or unpublished), 401 (anonymous on licensed data),
    ///   403 (no license, restricted).
    static func resolve(_ id: String, caller: Caller, catalog: any CatalogStore, stewardship: Stewardship, plans: PlanCache? = nil) throws -> Access {
        func make(_ d: DatasetRecord, _ v: VersionRecord, _ view: View, _ license: LicenseRecord?, _ s: Stewardship) throws -> Access {
            try Access.make(d, v, view, license, s, plans: plans)
        }
        let published: (DatasetRecord, VersionRecord)?
        if let plans, let stamp = try catalog.publicationStamp(id) {
            if let hit = plans.records(id, stamp: stamp) {
                published = hit
            } else {
                published = try catalog.publishedVersion(id)
                if let p = published { plans.putRecords(id, stamp: stamp, p) }
            }
        } else {
            published = try catalog.publishedVersion(id)
        }
        guard let (d, v) = published else {
            if caller.key != nil, let d = try catalog.dataset(id), caller.actsFor(d), let v = try catalog.versions(id).last {
                return try make(d, v, .steward, nil, stewardship)
            }
            throw Problem(status: .notFound, detail: "no published dataset '\(id)': GET /v1/datasets lists them")
        }
        // The owning department's people (and stewards) see its data as it is.
        if caller.actsFor(d) { return try make(d, v, .steward, nil, stewardship) }
        let license = try caller.key.flatMap { try catalog.activeLicense(keyID: $0.id, dataset: id, use: .rows) }
        switch d.tier {
        case .open?:
            return try make(d, v, license == nil ? .public : .licensed, license, stewardship)
        case .conditional?:
            guard caller.key != nil else {
                throw Problem(status: .unauthorized, detail: "'\(id)' is conditional (有条件开放): call with 'Authorization: Bearer <key>' of a key that holds a license for it; apply with POST /v1/applications")
            }
            guard let license else {
                throw Problem(status: .forbidden, detail: "your key holds no active license to read '\(id)' (有条件开放): apply with POST /v1/applications, or check GET /v1/licenses for an expired or revoked one")
            }
            return try make(d, v, .licensed, license, stewardship)
        case .restricted?, nil:
            throw Problem(status: caller.key == nil ? .unauthorized : .forbidden,
                          detail: "'\(id)' is restricted (不予开放): its rows never leave the platform; licensed partners compute over it in the sandbox")
        }
    }

    static func make(_ d: DatasetRecord, _ v: VersionRecord, _ view: View, _ license: LicenseRecord?, _ s: Stewardship, plans: PlanCache?) throws -> Access {
        // A plan depends on the dataset's policy (its updated_at changes with it), the version,
        // the view and the license; it is compiled once per combination.
        let cacheKey = PlanCache.Key(dataset: d.id, policy: d.updatedAt, version: v.number, view: view, license: license?.id)
        if let plan = plans?.get(cacheKey) {
            return Access(dataset: d, version: v, view: view, license: license, plan: plan)
        }
        let audience: Audience = switch view {
        case .steward: .steward
        case .public: .publicView
        case .licensed: license.map(Audience.init(license:)) ?? .publicView
        }
        let plan = ServingPlan.build(dataset: d, version: v, audience: audience, keys: try s.keys())
        plans?.put(cacheKey, plan)
        return Access(dataset: d, version: v, view: view, license: license, plan: plan)
    }
}

/// Compiled masking plans by (dataset policy, version, view, license), and the decoded catalog
/// records of published datasets by their publication stamp; bounded.
final class PlanCache: @unchecked Sendable {
    private let lock = NSLock()
    private var plans: [Key: MaskingPlan] = [:]

    /// What a compiled plan depends on (a struct: no key string formatted per request).
    struct Key: Hashable {
        let dataset: String, policy: String, version: Int, view: View, license: String?
    }
    private var published: [String: (stamp: String, records: (DatasetRecord, VersionRecord))] = [:]

    func records(_ id: String, stamp: String) -> (DatasetRecord, VersionRecord)? {
        lock.lock(); defer { lock.unlock() }
        guard let e = published[id], e.stamp == stamp else { return nil }
        return e.records
    }

    func putRecords(_ id: String, stamp: String, _ records: (DatasetRecord, VersionRecord)) {
        lock.lock(); defer { lock.unlock() }
        if published.count >= 4096 { published.removeAll() }
        published[id] = (stamp, records)
    }

    func get(_ key: Key) -> MaskingPlan? {
        lock.lock(); defer { lock.unlock() }
        return plans[key]
    }

    func put(_ key: Key, _ plan: MaskingPlan) {
        lock.lock(); defer { lock.unlock() }
        if plans.count >= 1024 { plans.removeAll() }
        plans[key] = plan
    }
}
