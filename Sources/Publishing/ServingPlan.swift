import Audit
import Foundation
import KaifangCore
import Masking
import Storage

/// Who receives a dataset's values, as far as masking is concerned.
public enum Audience: Sendable, Hashable {
    /// A steward: every field as stored.
    case steward
    /// Anyone without a license for the dataset: the `public` view.
    case publicView
    /// The holder of a license: the `licensed` view, the granted fields only (nil: every field),
    /// pseudonyms keyed for this license alone.
    case licensee(licenseID: String, fields: Set<String>?)

    /// The audience of a license: its id and its granted fields (an empty grant is every field).
    public init(license: LicenseRecord) {
        self = .licensee(licenseID: license.id, fields: license.fields.isEmpty ? nil : Set(license.fields))
    }

    /// The view the audience reads through.
    public var view: View {
        switch self {
        case .steward: .steward
        case .publicView: .public
        case .licensee: .licensed
        }
    }

    /// The license, for the licensed view.
    public var licenseID: String? {
        if case .licensee(let id, _) = self { return id }
        return nil
    }
}

/// The one place that decides what an audience receives of a dataset: the rows API, exports
/// (API and CLI), the CLI masker, the portal's preview and the synthetic rows all compile their
/// masking plan here, so one caller gets the same columns and bytes on every path.
public enum ServingPlan {
    /// Compiles the plan of a dataset's current field policy for an audience.
    /// - Parameters:
    ///   - policy: the dataset's current manifest (levels, semantic types, action overrides).
    ///   - storedFields: the fields the data actually has (a version's schema); policy fields
    ///     it lacks are not served. Nil: the data has every policy field, in policy order.
    ///   - keys: the platform's pseudonym keys; without them keyed operations fail closed (null).
    public static func build(policy: DatasetManifest, storedFields: [String]?, audience: Audience, keys: PseudonymKeys?) -> MaskingPlan {
        var manifest = policy
        if let storedFields {
            let stored = Set(storedFields)
            manifest.fields = policy.fields.filter { stored.contains($0.name) }
        }
        let grant: LicenseGrant?
        switch audience {
        case .licensee(let id, let fields): grant = LicenseGrant(licenseID: id, fields: fields)
        case .steward, .publicView: grant = nil
        }
        return MaskingPlan(manifest: manifest, view: audience.view, grant: grant, keys: keys)
    }

    /// The plan for a version of a catalog dataset: the dataset's current policy over the
    /// version's fields.
    public static func build(dataset: DatasetRecord, version: VersionRecord, audience: Audience, keys: PseudonymKeys?) -> MaskingPlan {
        build(policy: dataset.manifest, storedFields: version.manifest.fields.map(\.name), audience: audience, keys: keys)
    }

    /// The audience a steward names on the command line (`dataset export`, `mask`): a view, and
    /// for the licensed view the license, which must exist, be in force and be for `dataset`.
    /// - Throws: `KaifangError.badInput` naming what to pass instead.
    public static func audience(view: View, licenseID: String?, dataset: String, catalog: (any CatalogStore)?) throws -> Audience {
        switch view {
        case .steward, .public:
            guard licenseID == nil else {
                throw KaifangError.badInput("--license goes with --view licensed: the \(view.rawValue) view is the same for everyone")
            }
            return view == .steward ? .steward : .publicView
        case .licensed:
            guard let licenseID else {
                throw KaifangError.badInput("--view licensed needs --license L: the licensed view is a license's granted fields and pseudonyms (`kaifang license list` shows the ids)")
            }
            guard let catalog else {
                throw KaifangError.badInput("--license needs the --data-dir of an initialized data directory (or KAIFANG_DATA_DIR): licenses and the platform secret live there")
            }
            guard let license = try catalog.license(licenseID) else {
                throw KaifangError.badInput("no license '\(licenseID)' in this data directory: `kaifang license list` shows the ids")
            }
            guard license.dataset == dataset else {
                throw KaifangError.badInput("license '\(licenseID)' is for dataset '\(license.dataset)', not '\(dataset)'")
            }
            guard license.use == .rows else {
                throw KaifangError.badInput("license '\(licenseID)' is for sandbox jobs only: its holder receives aggregates, never rows")
            }
            guard license.isActive(at: AuditChain.timestamp()) else {
                throw KaifangError.badInput("license '\(licenseID)' is \(license.revokedAt != nil ? "revoked" : "expired"): nothing is served through it")
            }
            return Audience(license: license)
        }
    }
}
