import Crypto
import Foundation
import KaifangCore

/// What a license grants: its id (the pseudonym scope) and, optionally, the only fields it may see.
public struct LicenseGrant: Sendable, Equatable {
    public var licenseID: String
    /// The granted fields; nil means every field.
    public var fields: Set<String>?

    public init(licenseID: String, fields: Set<String>? = nil) {
        self.licenseID = licenseID
        self.fields = fields
    }
}

/// A masking policy compiled once per (dataset version, view, license) into one byte-level
/// operation per column (docs/policy.md), then applied to rows in a streaming loop.
public struct MaskingPlan: Sendable {
    /// One column's compiled rule.
    public struct Column: Sendable {
        /// The field.
        public let field: FieldSpec
        /// The action named by the policy (for explanations and API responses).
        public let action: ActionName
        /// The operation that implements it.
        public let operation: Operation
        /// Whether the column is served at all (fields a license does not grant are not).
        public let included: Bool
    }

    /// The columns, in manifest order.
    public let columns: [Column]
    /// The view compiled for.
    public let view: View
    /// The position in `columns` of each field served (`included`), by name.
    public let includedColumns: [String: Int]
    // Flat copies for the hot loop: plain values, no reference counting per cell.
    let ops: [Operation]
    let kernels: [Kernel]
    let semantics: [SemanticType?]
    let prefixes: [[UInt8]]
    let key: SymmetricKey?
    /// The license's fingerprint key (licensed view with the platform's keys), and each
    /// column's field salt.
    let fingerprintKey: FingerprintKey?
    let fingerprintFields: [FingerprintKey.Field]

    /// Compiles the plan.
    /// - Parameters:
    ///   - keys: the platform's pseudonym keys; without them, keyed operations fail closed (null).
    ///   - grant: the license of the caller (licensed view).
    public init(manifest: DatasetManifest, view: View, grant: LicenseGrant? = nil, keys: PseudonymKeys?) {
        self.view = view
        let scope = PseudonymKeys.scope(view: view, licenseID: grant?.licenseID)
        let key = keys?.key(scope: scope)
        self.key = key
        let licensee = view == .licensed ? grant?.licenseID : nil
        let fingerprintKey = licensee.flatMap { id in keys.map { FingerprintKey(keys: $0, license: id) } }
        self.fingerprintKey = fingerprintKey
        let columns: [Column] = manifest.fields.map { field in
            let action = DefaultPolicy.action(for: field, view: view)
            var op = Self.operation(for: action, field: field)
            // A number a licensee receives as stored carries the license's marks where the
            // manifest declares a tolerance; without the platform's keys it is not served.
            if op == .keep, licensee != nil, let spec = field.fingerprint,
               let fp = try? Fingerprint(tolerance: spec.tolerance, min: field.min, max: field.max) {
                op = .fingerprint(fp)
            }
            switch op {
            case .pseudonymize, .hash, .noise, .fingerprint: if key == nil { op = .suppress }
            default: break
            }
            let included = view == .steward || grant?.fields == nil || grant!.fields!.contains(field.name)
            return Column(field: field, action: included ? action : .suppress, operation: included ? op : .suppress, included: included)
        }
        self.columns = columns
        includedColumns = Dictionary(uniqueKeysWithValues: columns.enumerated().filter { $0.element.included }.map { ($0.element.field.name, $0.offset) })
        ops = columns.map(\.operation)
        kernels = ops.map(\.kernel)
        semantics = columns.map(\.field.semantic)
        prefixes = columns.map { Array(TokenPrefix.of($0.field.semantic).utf8) }
        fingerprintFields = columns.map { FingerprintKey.Field($0.field.name) }
    }

    /// The fields served with the license's fingerprint.
    public var fingerprintedFields: [String] {
        columns.filter { if case .fingerprint = $0.operation { $0.included } else { false } }.map(\.field.name)
    }

    /// The operation implementing `action` on `field`'s type; an action with nothing to act on
    /// (generalizing free text) fails closed to `suppress`.
    public static func operation(for action: ActionName, field: FieldSpec) -> Operation {
        switch action {
        case .keep: return .keep
        case .suppress: return .suppress
        case .mask:
            switch field.semantic {
            case .resident_id?: return .maskResidentID
            case .phone?: return .maskPhone
            case .landline?: return .maskLandline
            case .person_name?: return .maskName
            case .bank_card?: return .maskBankCard
            case .email?: return .maskEmail
            case .license_plate?: return .maskPlate
            case .ip?: return .maskIP
            case .address?: return .maskAddress
            case .passport?: return .maskChars(keepFirst: 1, keepLast: 2)
            case .uscc?: return .maskChars(keepFirst: 8, keepLast: 0)
            default: return .maskChars(keepFirst: 1, keepLast: 1)
            }
        case .pseudonymize: return .pseudonymize
        case .hash: return .hash
        case .generalize:
            if field.type == .date || field.semantic == .date { return .generalizeDate(keepMonth: !field.qi) }
            if field.type == .datetime || field.semantic == .datetime { return .generalizeDateTime }
            if field.semantic == .geo { return .generalizeGeo }
            if field.semantic == .address { return .generalizeAddress }
            if field.type == .integer || field.type == .number || field.semantic == .amount || field.semantic == .count {
                return isAgeLike(field) ? .generalizeAge : .generalizeNumber
            }
            return .suppress
        case .noise:
            guard field.type == .integer || field.type == .number else { return .suppress }
            let span = (field.max ?? 0) - (field.min ?? 0)
            return .noise(scale: span > 0 ? span / 100 : 1)
        }
    }

    /// An integer field that holds ages: named `age`/`…_age`, or bounded within 0…150.
    static func isAgeLike(_ f: FieldSpec) -> Bool {
        let n = f.name.lowercased()
        if n == "age" || n.hasSuffix("_age") || n.hasPrefix("age_") || (f.title?.contains("年龄") ?? false) { return true }
        if f.type == .integer, let lo = f.min, let hi = f.max, lo >= 0, hi <= 150, n.contains("age") { return true }
        return false
    }

    /// The fields whose served value differs from the stored one.
    public var maskedFields: [String] {
        columns.filter { $0.included && $0.operation.changesValue }.map(\.field.name)
    }

    /// Applies column `index`'s operation to one value's UTF-8 bytes, appending the result to `out`.
    /// - Parameter row: the row's id, which seeds noise.
    /// - Returns: false when the result is null (suppressed, or a generalization that failed closed).
    @inline(__always)
    public func apply(column index: Int, _ input: UnsafeBufferPointer<UInt8>, row: Int64 = 0,
                      scratch: inout MaskScratch, into out: inout ByteBuilder) -> Bool {
        apply(kernels[index], column: index, input, row: row, scratch: &scratch, into: &out)
    }

    /// `apply(column:)` with the column's kernel given (a loop that keeps its own copy of the
    /// kernels reads no array per cell).
    @inline(__always)
    func apply(_ kernel: Kernel, column index: Int, _ input: UnsafeBufferPointer<UInt8>, row: Int64,
               scratch: inout MaskScratch, into out: inout ByteBuilder) -> Bool {
        switch kernel {
        case .keep: out.append(contentsOf: input); return true
        case .suppress: return false
        case .maskChars:
            guard case .maskChars(let first, let last) = ops[index] else { return false }
            Apply.maskChars(input, keepFirst: first, keepLast: last, &out)
        case .maskResidentID: Apply.residentID(input, &scratch, &out)
        case .maskPhone: Apply.phone(input, &scratch, &out)
        case .maskLandline: Apply.landline(input, &scratch, &out)
        case .maskName: Apply.name(input, &scratch, &out)
        case .maskBankCard: Apply.bankCard(input, &scratch, &out)
        case .maskEmail: Apply.email(input, &scratch, &out)
        case .maskPlate: Apply.plate(input, &scratch, &out)
        case .maskIP: Apply.ip(input, &scratch, &out)
        case .maskAddress: Apply.address(input, &scratch, &out)
        case .pseudonymize: Apply.pseudonym(input, prefix: prefixes[index], semantic: semantics[index], key: key!, &scratch, &out)
        case .hash: Apply.keyedHash(input, semantic: semantics[index], key: key!, &scratch, &out)
        case .dateToMonth: return Apply.date(input, keepMonth: true, &out)
        case .dateToYear: return Apply.date(input, keepMonth: false, &out)
        case .dateTimeToDay: return Apply.dateTime(input, &out)
        case .ageBand: return Apply.age(input, &out)
        case .numberBand: return Apply.numberBand(input, &out)
        case .geo: return Apply.geo(input, &out)
        case .noise:
            guard case .noise(let scale) = ops[index] else { return false }
            return Apply.noise(input, scale: scale, key: key!, field: columns[index].field.name, row: row, &out)
        case .fingerprint:
            guard case .fingerprint(let fp) = ops[index] else { return false }
            return fp.mark(input, field: fingerprintFields[index], key: fingerprintKey!, into: &out)
        }
        return true
    }

    /// For a number stored as REAL: the generalization applied to the number itself (no text
    /// round trip); nil when the column's operation works on text (then format and `apply`).
    @inline(__always)
    public func applyNumber(column index: Int, _ v: Double, into out: inout ByteBuilder) -> Bool? {
        switch ops[index] {
        case .generalizeNumber: return Apply.numberBand(value: v, &out)
        case .fingerprint(let fp):
            // Through the shortest text of the double: the digits the value has.
            var text = Cell.format(v)
            return text.withUTF8 { fp.mark($0, field: fingerprintFields[index], key: fingerprintKey!, into: &out) }
        default: return nil
        }
    }

    /// Applies column `index` to a String (tests, previews); nil when null.
    public func apply(column index: Int, _ value: String, row: Int64 = 0) -> String? {
        var scratch = MaskScratch()
        var out = ByteBuilder()
        var copy = value
        let kept = copy.withUTF8 { apply(column: index, $0, row: row, scratch: &scratch, into: &out) }
        return kept ? String(decoding: out.bytes, as: UTF8.self) : nil
    }

    /// Applies the plan to a row of cells (nulls stay null); excluded columns become null.
    public func apply(row cells: [Cell], rowID: Int64 = 0) -> [Cell] {
        var scratch = MaskScratch()
        var out = ByteBuilder()
        var result: [Cell] = []
        result.reserveCapacity(cells.count)
        for (i, cell) in cells.enumerated() {
            if cell == .null || !columns[i].included { result.append(.null); continue }
            if columns[i].operation == .keep { result.append(cell); continue }
            out.removeAll()
            var text = cell.text
            let kept = text.withUTF8 { apply(column: i, $0, row: rowID, scratch: &scratch, into: &out) }
            let served = String(decoding: out.bytes, as: UTF8.self)
            if kept, columns[i].operation.keepsType {
                result.append(columns[i].field.type == .integer ? Int64(served).map(Cell.integer) ?? .text(served) : Double(served).map(Cell.real) ?? .text(served))
            } else {
                result.append(kept ? .text(served) : .null)
            }
        }
        return result
    }

    /// Per field: the action and what it does to a typical value of the field's type
    /// (`mask — 138****1234`), for `dataset show` and the portal.
    public func explain() -> [(field: String, action: ActionName, example: String?)] {
        columns.enumerated().map { i, c in
            guard c.included else { return (c.field.name, .suppress, nil) }
            let sample = SampleValues.sample(for: c.field)
            guard let sample else { return (c.field.name, c.action, nil) }
            let masked = apply(column: i, sample, row: 1)
            return (c.field.name, c.action, "\(sample) → \(masked ?? "null")")
        }
    }
}

/// Typical synthetic values per semantic type (valid check digits; nobody's data), for
/// explanations and the portal.
public enum SampleValues {
    public static func sample(for field: FieldSpec) -> String? {
        switch field.semantic {
        case .resident_id?: "320102199003071239"
        case .phone?: "13812341234"
        case .landline?: "025-83123456"
        case .person_name?: "欧阳娜娜"
        case .address?: "江苏省南京市玄武区中山路18号3栋501室"
        case .email?: "zhang.san@example.com"
        case .bank_card?: "6222020200112233446"
        case .uscc?: "91320102MA1N2B3C4W"
        case .passport?: "E12345678"
        case .license_plate?: "苏A12345"
        case .ip?: "192.168.10.21"
        case .geo?: "32.0603,118.7969"
        default:
            switch field.type {
            case .date: "1990-03-07"
            case .datetime: "2026-06-01T08:30:00"
            case .integer: MaskingPlan.isAgeLike(field) ? "37" : "1234"
            case .number: "461.21"
            default: nil
            }
        }
    }
}
