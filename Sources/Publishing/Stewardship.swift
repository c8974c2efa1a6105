import Audit
import Foundation
import KaifangCore
import Masking
import Storage
import VersionFormat

/// The steward's operations that combine the catalog with the masking policy: publishing with
/// the k-anonymity gate, classification, field overrides, masking plans.
public struct Stewardship: Sendable {
    public let catalog: any CatalogStore
    /// The smallest k an `open` dataset's public view may have without `--force`.
    public static let defaultMinimumK = 5

    public init(catalog: any CatalogStore) { self.catalog = catalog }

    /// The platform's pseudonym keys.
    /// - Throws: `KaifangError.runtime` when `secret.key` is missing.
    public func keys() throws -> PseudonymKeys {
        PseudonymKeys(secret: try catalog.pseudonymSecret())
    }

    /// The masking plan of a dataset's current field policy, every policy field, for an audience.
    public func plan(for dataset: DatasetRecord, audience: Audience) throws -> MaskingPlan {
        ServingPlan.build(policy: dataset.manifest, storedFields: nil, audience: audience, keys: try keys())
    }

    /// The k-anonymity of the `public` view of a version over its quasi-identifiers.
    /// - Throws: `KaifangError.notFound` for an unknown dataset or version.
    public func kAnonymity(dataset id: String, version: Int? = nil, threshold: Int = Stewardship.defaultMinimumK) throws -> KAnonymityReport {
        let d = try catalog.requireDataset(id)
        let newest = try catalog.versions(id).last?.number
        guard let number = version ?? newest, let v = try catalog.version(id, number) else {
            throw KaifangError.notFound("dataset '\(id)' has no version \(version.map(String.init) ?? ""): `kaifang dataset versions \(id)` lists them")
        }
        let plan = try self.plan(for: d, audience: .publicView)
        var counter = KAnonymityCounter(plan: plan)
        let reader = try VersionReader(path: try catalog.localFile(v))
        let stored = Set(v.manifest.fields.map(\.name))
        let columns = d.manifest.fields.map(\.name)
        // A field the version does not have counts as null.
        let present = columns.map { stored.contains($0) }
        try reader.forEachRow(columns: columns.enumerated().filter { present[$0.offset] }.map(\.element)) { _, cells in
            var full: [Cell] = []
            full.reserveCapacity(columns.count)
            var j = 0
            for p in present { if p { full.append(cells[j]); j += 1 } else { full.append(.null) } }
            counter.add(full)
        }
        return counter.report(threshold: threshold)
    }

    /// Publishes, refusing `open` when the public view's k-anonymity is below `minimumK`
    /// unless forced with a reason (both audited).
    /// - Throws: `KaifangError.conflict` (k too small), `.badInput` (force without reason), and
    ///   the catalog's errors.
    @discardableResult
    public func publish(dataset id: String, version: Int? = nil, tier: Tier, force: Bool = false, reason: String? = nil,
                        minimumK: Int = Stewardship.defaultMinimumK, actor: String) throws -> (DatasetRecord, KAnonymityReport?) {
        if force && (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw KaifangError.badInput("--force needs --reason \"…\": say why publishing below the k-anonymity threshold is acceptable (it is audited)")
        }
        let (detail, report) = try gate(dataset: id, version: version, tier: tier, minimumK: minimumK, overridden: force,
                                        remedy: "Generalize or suppress a quasi-identifier (`kaifang dataset field \(id) FIELD --action generalize|suppress`), publish as conditional, or force it with --force --reason \"…\" (audited)")
        let d = try catalog.publish(dataset: id, version: version, tier: tier, actor: actor, reason: force ? reason : nil, detail: detail)
        return (d, report)
    }

    /// The k-anonymity gate of a publication: for `open`, the public view's k over the
    /// quasi-identifiers as audit detail (with `forced` when below the threshold and
    /// `overridden`); nothing for other tiers.
    /// - Throws: `KaifangError.conflict` with the figures and `remedy` when below the threshold
    ///   and not overridden.
    public func gate(dataset id: String, version: Int?, tier: Tier, minimumK: Int = Stewardship.defaultMinimumK, overridden: Bool,
                     remedy: String) throws -> (detail: [String: JSONValue], report: KAnonymityReport?) {
        guard tier == .open else { return ([:], nil) }
        let r = try kAnonymity(dataset: id, version: version, threshold: minimumK)
        var detail: [String: JSONValue] = [:]
        if let k = r.k {
            detail["k"] = .int(Int64(k))
            detail["k_threshold"] = .int(Int64(minimumK))
            detail["quasi_identifiers"] = .array(r.quasiIdentifiers.map(JSONValue.string))
        }
        if !r.passes {
            guard overridden else {
                throw KaifangError.conflict("the public view of '\(id)' is only \(r.k ?? 0)-anonymous over \(r.quasiIdentifiers.joined(separator: ", ")): \(r.rowsBelow) of \(r.rows) rows are in groups smaller than \(minimumK). \(remedy)")
            }
            detail["forced"] = .bool(true)
        }
        return (detail, r)
    }

    /// Samples each column of the newest version and proposes a classification.
    /// - Throws: `KaifangError.notFound` when the dataset has no version.
    public func classify(dataset id: String, sampleSize: Int = 1000) throws -> [ClassificationProposal] {
        let d = try catalog.requireDataset(id)
        guard let v = try catalog.versions(id).last else {
            throw KaifangError.notFound("dataset '\(id)' has no version to sample: import a file first")
        }
        let reader = try VersionReader(path: try catalog.localFile(v))
        let every = max(1, v.rowCount / max(sampleSize, 1))
        let fields = v.manifest.fields
        var samples = Array(repeating: [String](), count: fields.count)
        try reader.forEachRow(columns: fields.map(\.name), every: every, limit: sampleSize) { _, cells in
            for (i, c) in cells.enumerated() where c != .null { samples[i].append(c.text) }
        }
        return fields.enumerated().map { i, f in
            var current = d.manifest.field(named: f.name) ?? f
            current.type = f.type
            return ColumnClassifier.propose(field: current, samples: samples[i])
        }
    }

    /// Writes accepted proposals (confidence ≥ `minimumConfidence`) into the current manifest.
    /// A proposal never lowers a field's level and never clears a quasi-identifier flag.
    /// - Returns: the fields that changed.
    public func applyClassification(dataset id: String, proposals: [ClassificationProposal], minimumConfidence: Double, actor: String) throws -> [String] {
        var m = try catalog.requireDataset(id).manifest
        var changed: [String] = []
        for p in proposals where p.confidence >= minimumConfidence {
            guard let i = m.fields.firstIndex(where: { $0.name == p.field }) else { continue }
            var f = m.fields[i]
            let before = f
            if let s = p.semantic { f.semantic = s }
            f.level = max(f.level, p.level)
            f.qi = f.qi || p.qi
            if f != before { m.fields[i] = f; changed.append(f.name) }
        }
        if !changed.isEmpty {
            try catalog.updateManifest(m, actor: actor, action: "dataset.classify", detail: [
                "fields": .array(changed.map(JSONValue.string)), "min_confidence": .string(String(minimumConfidence)),
            ])
        }
        return changed
    }

    /// Sets a field's level, semantic type, quasi-identifier flag, action override or
    /// fingerprint tolerance.
    /// - Throws: `KaifangError.notFound` (dataset or field), `.badInput` (a fingerprint the
    ///   field cannot take).
    public func setField(dataset id: String, field name: String, level: Level?, semantic: SemanticType?, qi: Bool?,
                         action: ActionName?, clearAction: Bool, fingerprint: Double? = nil, clearFingerprint: Bool = false,
                         actor: String) throws -> FieldSpec {
        var m = try catalog.requireDataset(id).manifest
        guard let i = m.fields.firstIndex(where: { $0.name == name }) else {
            throw KaifangError.notFound("dataset '\(id)' has no field '\(name)': its fields are \(m.fields.map(\.name).joined(separator: ", "))")
        }
        var f = m.fields[i]
        var detail: [String: JSONValue] = ["field": .string(name)]
        if let level { detail["level"] = .string(level.rawValue); detail["previous_level"] = .string(f.level.rawValue); f.level = level }
        if let semantic { detail["semantic"] = .string(semantic.rawValue); f.semantic = semantic }
        if let qi { detail["qi"] = .bool(qi); f.qi = qi }
        if let action { detail["action"] = .string(action.rawValue); f.action = action }
        if clearAction { detail["action"] = .null; f.action = nil }
        if let fingerprint { detail["fingerprint_tolerance"] = .string(Cell.format(fingerprint)); f.fingerprint = FingerprintSpec(tolerance: fingerprint) }
        if clearFingerprint { detail["fingerprint_tolerance"] = .null; f.fingerprint = nil }
        m.fields[i] = f
        try catalog.updateManifest(m, actor: actor, action: "dataset.field", detail: detail)
        return f
    }
}
