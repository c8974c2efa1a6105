import KaifangCore

/// What a value claims to be and whether it passes that format's checks.
public struct Detection: Sendable, Equatable, Hashable {
    /// The best format the value claims to be; nil when it looks like none.
    public var type: SemanticType?
    /// Whether it passes every check of that format.
    public var valid: Bool

    public init(type: SemanticType?, valid: Bool) { self.type = type; self.valid = valid }
}

/// Detects the format of single values (`kaifang pii scan`, column classification).
///
/// Rules, in order, on the normalized value (full-width folded, spaces and hyphens removed
/// inside numbers): `@` → email; a plate province + letter → license_plate; a dotted quad →
/// ip; `:` with hex → ip (v6); 18 symbols → resident_id when shaped like one (province, real
/// past birth date), else uscc when shaped like one, else bank_card when all digits; 15
/// digits → resident_id (legacy) when shaped like one (province, YYMMDD), else bank_card (but
/// 11 digits starting with 1, bare or after +86/86/0086, → phone, checked first); a leading 0 (not 00) or `(0` with 9–13 digits → landline;
/// 13–19 digits → bank_card; a letter and 8 digits → passport.
public enum Detector {
    /// Detects a String.
    public static func detect(_ value: String) -> Detection {
        var copy = value
        var a = ByteBuilder(), b = ByteBuilder()
        return copy.withUTF8 { detect($0, folded: &a, compacted: &b) }
    }

    /// Detects UTF-8 bytes, using two caller-owned scratch buffers (no allocation per value).
    public static func detect(_ raw: UnsafeBufferPointer<UInt8>, folded: inout ByteBuilder, compacted: inout ByteBuilder) -> Detection {
        Normalize.fold(raw, into: &folded)
        if folded.isEmpty { return Detection(type: nil, valid: false) }
        Normalize.compact(raw, into: &compacted)
        return classify(folded: folded.bytes, compact: compacted.bytes)
    }

    static func classify(folded f: UnsafeBufferPointer<UInt8>, compact c: UnsafeBufferPointer<UInt8>) -> Detection {
        if f.contains(0x40) { return Detection(type: .email, valid: Validators.email(f)) }
        if Validators.looksLikePlate(c) { return Detection(type: .license_plate, valid: Validators.licensePlate(c)) }
        var digits = 0, dots = 0, colons = 0, hex = 0, letters = 0, other = 0
        for ch in c {
            if Validators.isDigit(ch) { digits += 1 }
            else if ch == 0x2E { dots += 1 }
            else if ch == 0x3A { colons += 1 }
            else if (ch >= 0x61 && ch <= 0x66) || (ch >= 0x41 && ch <= 0x46) { hex += 1; letters += 1 }
            else if Validators.isUpper(ch) || Validators.isLower(ch) { letters += 1 }
            else { other += 1 }
        }
        // An address is never written with spaces or hyphens inside: only the folded form counts
        // (found by fuzzing: "2db8::21   3" compacted into a valid IPv6 that isValid refused).
        let unbroken = f.count == c.count
        if unbroken && dots == 3 && digits + dots == c.count { return Detection(type: .ip, valid: Validators.ipv4(c)) }
        if unbroken && colons >= 2, let address = Validators.withoutZone(c), address.count < c.count || other == 0 {
            // Hex digits, colons and dots before any zone id (`fe80::1%eth0`).
            if address.allSatisfy({ Validators.isDigit($0) || $0 == 0x3A || $0 == 0x2E || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) {
                return Detection(type: .ip, valid: Validators.ipv6(c))
            }
        }
        let n = c.count
        if n == 18 {
            if Validators.looksLikeResidentID18(c) { return Detection(type: .resident_id, valid: Validators.residentID18(c)) }
            if Validators.looksLikeUSCC(c) { return Detection(type: .uscc, valid: Validators.uscc(c)) }
            if digits == 18 { return Detection(type: .bank_card, valid: Validators.bankCard(c)) }
            return Detection(type: nil, valid: false)
        }
        let onlyDigits = digits == n
        // A mobile number, bare or with its country code: +86…, 86…, 0086… (before the 15-digit
        // rule, which would take 0086… for a card).
        if onlyDigits || (n == 14 && c[0] == 0x2B && digits == 13) {
            let local = Validators.strippedCountryCode(c)
            if local.count == 11 && local[0] == 0x31 { return Detection(type: .phone, valid: Validators.phone(c)) }
        }
        if n == 15 && onlyDigits {
            if Validators.looksLikeResidentID15(c) { return Detection(type: .resident_id, valid: Validators.residentID15(c)) }
            return Detection(type: .bank_card, valid: Validators.bankCard(c))
        }
        if f.first == 0x28 || (onlyDigits && n > 1 && c[0] == 0x30 && c[1] != 0x30 && (9...13).contains(n)) {
            if f.first == 0x28 {
                let shape = c.allSatisfy { Validators.isDigit($0) || $0 == 0x28 || $0 == 0x29 }
                if shape { return Detection(type: .landline, valid: Validators.landline(c)) }
            } else {
                return Detection(type: .landline, valid: Validators.landline(c))
            }
        }
        if onlyDigits && (13...19).contains(n) { return Detection(type: .bank_card, valid: Validators.bankCard(c)) }
        if Validators.looksLikePassport(c) { return Detection(type: .passport, valid: Validators.passport(c)) }
        return Detection(type: nil, valid: false)
    }

    /// Whether a value passes the checks of `type` (types without a format always pass).
    public static func isValid(_ value: String, as type: SemanticType) -> Bool {
        var copy = value
        var a = ByteBuilder(), b = ByteBuilder()
        return copy.withUTF8 { isValid($0, as: type, folded: &a, compacted: &b) }
    }

    /// Whether bytes pass the checks of `type`, with caller-owned scratch buffers.
    public static func isValid(_ raw: UnsafeBufferPointer<UInt8>, as type: SemanticType, folded: inout ByteBuilder, compacted: inout ByteBuilder) -> Bool {
        switch type {
        case .resident_id, .phone, .bank_card, .uscc, .passport, .landline:
            Normalize.compact(raw, into: &compacted)
            let c = compacted.bytes
            switch type {
            case .resident_id: return Validators.residentID18(c) || Validators.residentID15(c)
            case .phone: return Validators.phone(c)
            case .bank_card: return Validators.bankCard(c)
            case .uscc: return Validators.uscc(c)
            case .passport: return Validators.passport(c)
            default: return Validators.landline(c)
            }
        case .email, .ip, .license_plate:
            Normalize.fold(raw, into: &folded)
            let f = folded.bytes
            switch type {
            case .email: return Validators.email(f)
            case .ip: return Validators.ipv4(f) || Validators.ipv6(f)
            default:
                if Validators.licensePlate(f) { return true }
                // Plates are often written 苏A 12345 / 苏A-12345: detection reads them compacted.
                Normalize.compact(raw, into: &compacted)
                return Validators.licensePlate(compacted.bytes)
            }
        default:
            return true
        }
    }
}
