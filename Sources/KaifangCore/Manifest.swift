import Foundation

/// One field of a dataset, as a steward declares it in `dataset.json` (docs/steward-guide.md).
public struct FieldSpec: Codable, Sendable, Equatable {
    /// The column name: ASCII letters, digits and `_`, starting with a letter or `_`.
    public var name: String
    /// A human title, often Chinese (身份证号); a CSV header may use it instead of the name.
    public var title: String?
    /// A longer description.
    public var description: String?
    /// The storage type, checked on import.
    public var type: FieldType
    /// The semantic type, which drives detection and masking.
    public var semantic: SemanticType?
    /// The level (分级).
    public var level: Level
    /// Whether the field is a quasi-identifier (counted for k-anonymity).
    public var qi: Bool
    /// Lower bound of numbers (values below are refused on import; used for clamping in DP).
    public var min: Double?
    /// Upper bound of numbers.
    public var max: Double?
    /// A steward's override of the default masking action.
    public var action: ActionName?
    /// How far a licensee's copy of this number may move to carry the license's fingerprint;
    /// nil: never altered.
    public var fingerprint: FingerprintSpec?

    /// Makes a field.
    public init(name: String, title: String? = nil, description: String? = nil, type: FieldType = .string,
                semantic: SemanticType? = nil, level: Level = .L1, qi: Bool = false,
                min: Double? = nil, max: Double? = nil, action: ActionName? = nil, fingerprint: FingerprintSpec? = nil) {
        self.name = name; self.title = title; self.description = description; self.type = type
        self.semantic = semantic; self.level = level; self.qi = qi; self.min = min; self.max = max
        self.action = action; self.fingerprint = fingerprint
    }

    static let keys: [String] = ["name", "title", "description", "type", "semantic", "level", "qi", "min", "max", "action", "fingerprint"]

    enum CodingKeys: String, CodingKey {
        case name, title, description, type, semantic, level, qi, min, max, action, fingerprint
    }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.refuseUnknown(in: decoder, allowed: Self.keys)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        title = try c.decodeIfPresent(String.self, forKey: .title)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        type = try StrictKeys.decodeEnum(FieldType.self, c, .type, what: "type") ?? .string
        semantic = try StrictKeys.decodeEnum(SemanticType.self, c, .semantic, what: "semantic")
        guard let level = try StrictKeys.decodeEnum(Level.self, c, .level, what: "level") else {
            throw StrictKeys.error(c.codingPath, "field '\(name)' has no 'level': add one of L1, L2, L3, L4")
        }
        self.level = level
        qi = try c.decodeIfPresent(Bool.self, forKey: .qi) ?? false
        min = try c.decodeIfPresent(Double.self, forKey: .min)
        max = try c.decodeIfPresent(Double.self, forKey: .max)
        action = try StrictKeys.decodeEnum(ActionName.self, c, .action, what: "action")
        fingerprint = try c.decodeIfPresent(FingerprintSpec.self, forKey: .fingerprint)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(title, forKey: .title)
        try c.encodeIfPresent(description, forKey: .description)
        try c.encode(type, forKey: .type)
        try c.encodeIfPresent(semantic, forKey: .semantic)
        try c.encode(level, forKey: .level)
        if qi { try c.encode(qi, forKey: .qi) }
        try c.encodeIfPresent(min, forKey: .min)
        try c.encodeIfPresent(max, forKey: .max)
        try c.encodeIfPresent(action, forKey: .action)
        try c.encodeIfPresent(fingerprint, forKey: .fingerprint)
    }

    /// Whether a CSV header cell names this field (by name, or by title).
    public func matches(header: String) -> Bool {
        let h = header.trimmingCharacters(in: .whitespaces)
        return h == name || (title != nil && h == title)
    }
}

/// The period a dataset's rows describe (DCAT `dct:temporal`): from `start` to `end`, both
/// `YYYY-MM-DD` and included; no `end` while the series goes on.
public struct TemporalCoverage: Codable, Sendable, Equatable {
    public var start: String
    public var end: String?

    public init(start: String, end: String? = nil) { self.start = start; self.end = end }

    static let keys = ["start", "end"]
    enum CodingKeys: String, CodingKey { case start, end }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.refuseUnknown(in: decoder, allowed: Self.keys)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        start = try c.decode(String.self, forKey: .start)
        end = try c.decodeIfPresent(String.self, forKey: .end)
    }
}

/// A dataset's manifest (`datasets/<id>/dataset.json`): the contract a steward writes by hand.
/// Unknown keys are refused with their name; omitted optional keys take their defaults.
public struct DatasetManifest: Codable, Sendable, Equatable {
    /// The dataset id: lower-case letters, digits, `-` and `_`.
    public var id: String
    /// The title, Chinese and/or English.
    public var title: String
    /// A longer description.
    public var description: String
    /// The publishing department (省民政厅).
    public var department: String
    /// The topic (social, economy, environment…).
    public var topic: String
    /// How often the data changes (hourly, daily, monthly, yearly, irregular).
    public var updateFrequency: String
    /// The license text or name under which rows are opened.
    public var license: String
    /// The tier the dataset is meant to be published at (`kaifang demo` publishes at it).
    public var tier: Tier?
    /// Whether policy says this dataset should be opened (counts in the open rate).
    public var shouldOpen: Bool
    /// The privacy unit's field; nil when one row is one unit.
    public var entity: String?
    /// The fields, in column order.
    public var fields: [FieldSpec]
    /// The fields whose values identify a row from one version to the next (what the changes
    /// between versions and `_since_version` match rows by); nil when none is declared.
    public var primaryKey: [String]?
    /// The places the rows describe, as GB/T 2260 codes of Jiangsu (`Divisions`): the province,
    /// cities or counties; nil when not declared.
    public var spatial: [String]?
    /// The period the rows describe; nil when not declared.
    public var temporal: TemporalCoverage?

    /// Makes a manifest.
    public init(id: String, title: String, description: String = "", department: String = "",
                topic: String = "", updateFrequency: String = "irregular", license: String = "",
                tier: Tier? = nil, shouldOpen: Bool = false, entity: String? = nil, fields: [FieldSpec], primaryKey: [String]? = nil,
                spatial: [String]? = nil, temporal: TemporalCoverage? = nil) {
        self.id = id; self.title = title; self.description = description; self.department = department
        self.topic = topic; self.updateFrequency = updateFrequency; self.license = license; self.tier = tier
        self.shouldOpen = shouldOpen; self.entity = entity; self.fields = fields; self.primaryKey = primaryKey
        self.spatial = spatial; self.temporal = temporal
    }

    enum CodingKeys: String, CodingKey {
        case id, title, description, department, topic
        case updateFrequency = "update_frequency"
        case license, tier
        case shouldOpen = "should_open"
        case entity, fields
        case primaryKey = "primary_key"
        case spatial, temporal
    }

    static let keys: [String] = ["id", "title", "description", "department", "topic", "update_frequency",
                                 "license", "tier", "should_open", "entity", "fields", "primary_key", "spatial", "temporal"]

    public init(from decoder: any Decoder) throws {
        try StrictKeys.refuseUnknown(in: decoder, allowed: Self.keys)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        title = try c.decode(String.self, forKey: .title)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        department = try c.decodeIfPresent(String.self, forKey: .department) ?? ""
        topic = try c.decodeIfPresent(String.self, forKey: .topic) ?? ""
        updateFrequency = try c.decodeIfPresent(String.self, forKey: .updateFrequency) ?? "irregular"
        license = try c.decodeIfPresent(String.self, forKey: .license) ?? ""
        tier = try StrictKeys.decodeEnum(Tier.self, c, .tier, what: "tier")
        shouldOpen = try c.decodeIfPresent(Bool.self, forKey: .shouldOpen) ?? false
        entity = try c.decodeIfPresent(String.self, forKey: .entity)
        fields = try c.decode([FieldSpec].self, forKey: .fields)
        primaryKey = try c.decodeIfPresent([String].self, forKey: .primaryKey)
        spatial = try c.decodeIfPresent([String].self, forKey: .spatial)
        temporal = try c.decodeIfPresent(TemporalCoverage.self, forKey: .temporal)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(title, forKey: .title)
        try c.encode(description, forKey: .description)
        try c.encode(department, forKey: .department)
        try c.encode(topic, forKey: .topic)
        try c.encode(updateFrequency, forKey: .updateFrequency)
        try c.encode(license, forKey: .license)
        try c.encodeIfPresent(tier, forKey: .tier)
        try c.encode(shouldOpen, forKey: .shouldOpen)
        try c.encodeIfPresent(entity, forKey: .entity)
        try c.encode(fields, forKey: .fields)
        try c.encodeIfPresent(primaryKey, forKey: .primaryKey)
        try c.encodeIfPresent(spatial, forKey: .spatial)
        try c.encodeIfPresent(temporal, forKey: .temporal)
    }

    /// The field named `name`, if any.
    public func field(named name: String) -> FieldSpec? { fields.first { $0.name == name } }

    /// Checks what Codable cannot: id and name shapes, duplicates, the entity, bounds.
    /// - Throws: `KaifangError.badInput` naming the first problem.
    public func validate() throws {
        guard Self.isValidID(id) else {
            throw KaifangError.badInput("id '\(id)' is not a valid dataset id: use 1–64 lower-case letters, digits, '-' or '_', starting with a letter or digit")
        }
        if title.trimmingCharacters(in: .whitespaces).isEmpty {
            throw KaifangError.badInput("title is empty: give the dataset a title")
        }
        if fields.isEmpty { throw KaifangError.badInput("fields is empty: declare at least one field") }
        guard UpdateFrequency(rawValue: updateFrequency) != nil else {
            throw KaifangError.badInput("update_frequency '\(updateFrequency)' is not one of \(UpdateFrequency.names): say how often the dataset is meant to be updated")
        }
        var seen = Set<String>()
        for (i, f) in fields.enumerated() {
            guard Self.isValidFieldName(f.name) else {
                throw KaifangError.badInput("fields[\(i)]: name '\(f.name)' is not a valid field name: use ASCII letters, digits and '_' (at most 63), starting with a letter or '_', and put the Chinese name in 'title'")
            }
            guard seen.insert(f.name.lowercased()).inserted else {
                throw KaifangError.badInput("fields[\(i)]: field '\(f.name)' is declared twice")
            }
            if let lo = f.min, let hi = f.max, lo > hi {
                throw KaifangError.badInput("fields[\(i)] '\(f.name)': min \(Cell.format(lo)) is greater than max \(Cell.format(hi))")
            }
            if (f.min != nil || f.max != nil) && !(f.type == .integer || f.type == .number) {
                throw KaifangError.badInput("fields[\(i)] '\(f.name)': min/max apply to integer or number fields, not \(f.type.rawValue)")
            }
            if let fp = f.fingerprint {
                let at = "fields[\(i)] '\(f.name)': fingerprint"
                guard f.type == .integer || f.type == .number else {
                    throw KaifangError.badInput("\(at) applies to integer or number fields, not \(f.type.rawValue): only numbers are marked")
                }
                guard let places = FingerprintSpec.decimals(of: fp.tolerance) else {
                    throw KaifangError.badInput("\(at) tolerance \(Cell.format(fp.tolerance)) must be a positive number with at most 6 decimals: the largest change a licensee's value may take, in the field's unit")
                }
                if f.type == .integer && places > 0 {
                    throw KaifangError.badInput("\(at) tolerance \(Cell.format(fp.tolerance)) must be a whole number for an integer field (1 or more)")
                }
                if let lo = f.min, let hi = f.max, hi - lo < 2 * fp.tolerance {
                    throw KaifangError.badInput("\(at) tolerance \(Cell.format(fp.tolerance)) is more than half the field's range \(Cell.format(lo))–\(Cell.format(hi)): choose a smaller one")
                }
                if primaryKey?.contains(f.name) == true {
                    throw KaifangError.badInput("\(at): '\(f.name)' is in primary_key, and a key is never altered; mark another field")
                }
            }
        }
        if let key = primaryKey {
            guard (1...4).contains(key.count) else {
                throw KaifangError.badInput("primary_key must name 1–4 fields (the values that identify a row from one version to the next), or be left out")
            }
            for (i, name) in key.enumerated() {
                guard let f = field(named: name) else {
                    throw KaifangError.badInput("primary_key[\(i)] '\(name)' is not one of the fields: name fields declared in 'fields'")
                }
                if f.type == .number {
                    throw KaifangError.badInput("primary_key[\(i)] '\(name)' is a number field: decimal values do not identify rows reliably; use an integer, string or date field")
                }
                if key.prefix(i).contains(name) { throw KaifangError.badInput("primary_key names '\(name)' twice") }
            }
        }
        if let spatial {
            if spatial.isEmpty {
                throw KaifangError.badInput("spatial is empty: list the GB/T 2260 codes of the places the rows describe (320000 for the whole province), or leave it out")
            }
            var divisions: [Division] = []
            for (i, code) in spatial.enumerated() {
                do { divisions.append(try Divisions.require(code)) } catch let e as KaifangError {
                    throw KaifangError.badInput("spatial[\(i)]: \(e.message)")
                }
            }
            for (i, d) in divisions.enumerated() {
                if divisions.prefix(i).contains(d) { throw KaifangError.badInput("spatial[\(i)]: '\(d.code)' (\(d.name)) is listed twice") }
                if let outer = divisions.first(where: { d.ancestors.contains($0.code) }) {
                    throw KaifangError.badInput("spatial[\(i)]: '\(d.code)' (\(d.name)) lies within '\(outer.code)' (\(outer.name)), also listed: keep one of them")
                }
            }
        }
        if let temporal {
            for (key, value) in [("start", temporal.start), ("end", temporal.end)] {
                guard let value else { continue }
                let ok = value.utf8.count == 10 && Array(value.utf8).withUnsafeBufferPointer { ValueParser.isISODate($0) }
                guard ok else {
                    throw KaifangError.badInput("temporal.\(key) '\(value)' is not a date: write it YYYY-MM-DD")
                }
            }
            if let end = temporal.end, end < temporal.start {
                throw KaifangError.badInput("temporal.end \(end) is before temporal.start \(temporal.start)")
            }
        }
        if let entity, field(named: entity) == nil {
            throw KaifangError.badInput("entity '\(entity)' is not one of the fields: name the field that identifies a person (e.g. the resident ID), or remove 'entity'")
        }
    }

    /// Whether `id` is a valid dataset id.
    public static func isValidID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        for (i, b) in bytes.enumerated() {
            let lowerOrDigit = (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
            if i == 0 { if !lowerOrDigit { return false } } else if !(lowerOrDigit || b == 0x2D || b == 0x5F) { return false }
        }
        return true
    }

    /// Whether `name` is a valid field name (safe as an SQL identifier and an API filter key).
    public static func isValidFieldName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        for (i, b) in bytes.enumerated() {
            let letter = (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F
            let digit = b >= 0x30 && b <= 0x39
            if i == 0 { if !letter { return false } } else if !(letter || digit) { return false }
        }
        if name.contains("__") { return false } // `__` separates a field from an operator in API filters
        if name.hasPrefix("_") && name.count > 1 && name.dropFirst().hasPrefix("_") { return false }
        return true
    }

    /// Decodes and validates a manifest from JSON bytes.
    /// - Parameter source: the file name used in error messages.
    /// - Throws: `KaifangError.badInput` naming the file, the JSON path and the problem.
    public static func decode(_ data: Data, source: String) throws -> DatasetManifest {
        let manifest: DatasetManifest
        do {
            manifest = try JSONDecoder().decode(DatasetManifest.self, from: data)
        } catch let e as KaifangError {
            throw KaifangError.badInput("\(source): \(e.message)")
        } catch let e as DecodingError {
            throw KaifangError.badInput("\(source): \(StrictKeys.describe(e))")
        } catch {
            throw KaifangError.badInput("\(source): not valid JSON: \(error)")
        }
        do { try manifest.validate() } catch let e as KaifangError {
            throw KaifangError.badInput("\(source): \(e.message)")
        }
        return manifest
    }

    /// Reads, decodes and validates a manifest file.
    /// - Throws: `KaifangError.badInput` (bad content) or `.notFound` (no such file).
    public static func load(path: String) throws -> DatasetManifest {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KaifangError.notFound("\(path): no such manifest file: check the path given to --manifest")
        }
        return try decode(data, source: path)
    }

    /// The manifest as pretty JSON with sorted keys.
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(self)
    }
}

/// Helpers that make Codable strict: unknown keys and unknown enum values are refused by name.
enum StrictKeys {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { self.stringValue = String(intValue); self.intValue = intValue }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for k in codingPath {
            if let i = k.intValue { out += "[\(i)]" } else { out += out.isEmpty ? k.stringValue : ".\(k.stringValue)" }
        }
        return out.isEmpty ? "top level" : out
    }

    static func error(_ codingPath: [any CodingKey], _ message: String) -> KaifangError {
        KaifangError.badInput("\(path(codingPath)): \(message)")
    }

    static func refuseUnknown(in decoder: any Decoder, allowed: [String]) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let allowedSet = Set(allowed)
        for key in c.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where !allowedSet.contains(key.stringValue) {
            throw error(decoder.codingPath, "unknown key '\(key.stringValue)': the keys allowed here are \(allowed.joined(separator: ", "))")
        }
    }

    static func decodeEnum<E: RawRepresentable & CaseIterable, K: CodingKey>(
        _ type: E.Type, _ c: KeyedDecodingContainer<K>, _ key: K, what: String
    ) throws -> E? where E.RawValue == String {
        guard let raw = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let value = E(rawValue: raw) else {
            let allowed = E.allCases.map(\.rawValue).joined(separator: ", ")
            throw error(c.codingPath + [key], "\(what) '\(raw)' is not one of \(allowed)")
        }
        return value
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let key, let ctx):
            return "\(path(ctx.codingPath)): missing key '\(key.stringValue)'"
        case .typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath)): expected \(jsonName(type))"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)): expected \(jsonName(type)), found null"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "not valid JSON: \(ctx.debugDescription)" : "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default:
            return "\(e)"
        }
    }

    static func jsonName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Double.Type, is Int.Type: "a number"
        case is [FieldSpec].Type: "an array of fields"
        case is [String].Type, is [Any].Type: "an array"
        default: "a value of another kind"
        }
    }
}

/// A field's fingerprint declaration: `{"tolerance": 0.01}`, the largest change a licensee's
/// copy of a value may take.
public struct FingerprintSpec: Codable, Sendable, Equatable {
    public var tolerance: Double

    public init(tolerance: Double) { self.tolerance = tolerance }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.refuseUnknown(in: decoder, allowed: ["tolerance"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tolerance = try c.decode(Double.self, forKey: .tolerance)
    }

    /// The decimals of a tolerance (0–6); nil for one that is not a positive finite number below
    /// 10^12 with at most 6 decimals.
    public static func decimals(of t: Double) -> Int? {
        guard t.isFinite, t > 0, t < 1e12 else { return nil }
        var d = 0
        var scaled = t
        while abs(scaled - scaled.rounded()) > 1e-9 * max(1, scaled) {
            d += 1
            scaled *= 10
            if d > 6 { return nil }
        }
        return d
    }
}
