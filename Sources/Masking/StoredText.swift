import KaifangCore

/// A value's text as a dataset version stores it: the import's parsers applied to a raw field
/// (integers and numbers as their canonical decimal, booleans 1/0, dates and datetimes in ISO
/// form; blank as null), so a value read from a source file (`kaifang mask`) is the same bytes
/// as the value read from the version (the API, exports).
public enum StoredText {
    /// How a field's raw bytes become stored text.
    public enum Kind: Sendable, Equatable {
        /// Text: as it is, null when blank.
        case text
        case integer(min: Double?, max: Double?)
        case number(min: Double?, max: Double?)
        case boolean
        case date
        case datetime

        public init(_ field: FieldSpec) {
            switch field.type {
            case .string: self = .text
            case .integer: self = .integer(min: field.min, max: field.max)
            case .number: self = .number(min: field.min, max: field.max)
            case .boolean: self = .boolean
            case .date: self = .date
            case .datetime: self = .datetime
            }
        }

        /// The integer-digit counts k for which every number in [10^(k−1), 10^k) is within an
        /// integer or number kind's range (empty for other kinds): such a plain decimal needs no
        /// parsing to be known in range.
        public func admittedIntDigits() -> Range<Int> {
            let lo: Double?, hi: Double?
            switch self {
            case .integer(let l, let h), .number(let l, let h): (lo, hi) = (l, h)
            default: return 0..<0
            }
            func pow10(_ e: Int) -> Double { (0..<e).reduce(1.0) { r, _ in r * 10 } }
            let ks = (1...15).filter { k in
                (lo.map { $0 <= pow10(k - 1) } ?? true) && (hi.map { $0 >= pow10(k) } ?? true)
            }
            // The admitted counts are contiguous: the lower bound admits all from some k up, the
            // upper all up to some k.
            return ks.isEmpty ? 0..<0 : ks.first!..<(ks.last! + 1)
        }
    }

    /// Whether a raw text value is stored as null: empty, or spaces and tabs only.
    @inline(__always)
    public static func isBlank(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        for b in raw where !ValueParser.isSpace(b) { return false }
        return true
    }

    /// Whether a number's text is already the form a version stores (so the parsed value need
    /// not be formatted again): an optional `-`, no leading zeros, at most 15 significant digits
    /// (which a double holds exactly and prints back the same), and when there is a fraction, no
    /// trailing zero and a magnitude of at least 0.001 (smaller ones print with an exponent).
    @inline(__always)
    static func isCanonicalDecimal(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        if i < n && b[i] == 0x2D { i += 1 }
        let intStart = i
        while i < n && b[i] &- 0x30 < 10 { i += 1 }
        let intDigits = i - intStart
        guard intDigits > 0, intDigits <= 15 else { return false }
        let intIsZero = intDigits == 1 && b[intStart] == 0x30
        guard intIsZero || b[intStart] != 0x30 else { return false }       // no leading zeros
        if i == n { return !(intIsZero && intStart == 1) }                   // "-0" prints as 0
        guard b[i] == 0x2E else { return false }
        i += 1
        let fracStart = i
        while i < n && b[i] &- 0x30 < 10 { i += 1 }
        let fracDigits = i - fracStart
        guard i == n, fracDigits > 0, b[n - 1] != 0x30 else { return false }
        let significant = intIsZero ? fracDigits - (fracStart..<n).prefix { b[$0] == 0x30 }.count : intDigits + fracDigits
        guard significant <= 15 else { return false }
        if intIsZero {
            // 0.001 and up print without an exponent.
            guard fracDigits >= 1, (fracStart..<min(n, fracStart + 3)).contains(where: { b[$0] != 0x30 }) else { return false }
        }
        return true
    }

    /// The number an integer or number field stores for a raw value; nil when the version
    /// stores null or would refuse the value (not a number of the kind, or out of the field's
    /// range), and for the other kinds.
    @inline(__always)
    public static func number(_ raw: UnsafeBufferPointer<UInt8>, _ kind: Kind) -> Double? {
        switch kind {
        case .integer(let lo, let hi):
            guard let v = ValueParser.integer(raw) else { return nil }
            let d = Double(v)
            return inBounds(d, lo, hi) ? d : nil
        case .number(let lo, let hi):
            guard let v = ValueParser.number(raw) else { return nil }
            return inBounds(v, lo, hi) ? v : nil
        default:
            return nil
        }
    }

    @inline(__always)
    static func inBounds(_ v: Double, _ lo: Double?, _ hi: Double?) -> Bool {
        !(lo.map { v < $0 } ?? false) && !(hi.map { v > $0 } ?? false)
    }

    /// Writes the stored text of a non-text value into `out` (emptied first).
    /// - Returns: false when the version stores null or would refuse the value (the masker then
    ///   writes null: it fails closed).
    public static func canonical(_ raw: UnsafeBufferPointer<UInt8>, _ kind: Kind, into out: inout ByteBuilder) -> Bool {
        out.removeAll()
        switch kind {
        case .text:
            guard !isBlank(raw) else { return false }
            out.append(contentsOf: raw)
        case .integer(let lo, let hi):
            guard let v = ValueParser.integer(raw), inBounds(Double(v), lo, hi) else { return false }
            if isCanonicalDecimal(raw) { out.append(contentsOf: raw) } else { out.append(decimal: v) }
        case .number(let lo, let hi):
            guard let v = ValueParser.number(raw), inBounds(v, lo, hi) else { return false }
            if isCanonicalDecimal(raw) { out.append(contentsOf: raw) }
            else if v == v.rounded(), abs(v) < 1e15 { out.append(decimal: Int64(v)) }
            else { out.append(Cell.format(v)) }
        case .boolean:
            guard let v = ValueParser.boolean(raw) else { return false }
            out.append(v ? 0x31 : 0x30)
        case .date:
            // An ISO date (a real one) is stored as it is.
            if raw.count == 10, raw[4] == 0x2D, raw[7] == 0x2D {
                guard ValueParser.isISODate(raw) else { return false }
                out.append(contentsOf: raw)
                return true
            }
            guard let v = ValueParser.date(raw) else { return false }
            out.append(v)
        case .datetime:
            guard let v = ValueParser.datetime(raw) else { return false }
            out.append(v)
        }
        return true
    }
}
