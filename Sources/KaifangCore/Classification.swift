/// The dataset tier (开放属性): who may read rows.
public enum Tier: String, Codable, CaseIterable, Sendable, Comparable {
    /// 无条件开放: rows to everyone through the `public` view.
    case open
    /// 有条件开放: rows to license holders through the `licensed` view.
    case conditional
    /// 不予开放 (授权运营): rows never leave; sandbox aggregates only.
    case restricted

    /// The Chinese label used on the portal and in CLI output.
    public var chinese: String {
        switch self {
        case .open: "无条件开放"
        case .conditional: "有条件开放"
        case .restricted: "不予开放"
        }
    }

    private var rank: Int {
        switch self {
        case .open: 0
        case .conditional: 1
        case .restricted: 2
        }
    }

    public static func < (lhs: Tier, rhs: Tier) -> Bool { lhs.rank < rhs.rank }
}

/// The field level (分级).
public enum Level: String, Codable, CaseIterable, Sendable, Comparable {
    /// Public.
    case L1
    /// Internal.
    case L2
    /// Personal information (个人信息).
    case L3
    /// Sensitive personal information (敏感个人信息).
    case L4

    public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The Chinese label.
    public var chinese: String {
        switch self {
        case .L1: "公开"
        case .L2: "内部"
        case .L3: "个人信息"
        case .L4: "敏感个人信息"
        }
    }
}

/// The semantic type of a field: what its values mean, which drives detection and masking.
public enum SemanticType: String, Codable, CaseIterable, Sendable {
    case resident_id, phone, landline, person_name, address, email, bank_card, uscc, passport
    case license_plate, ip, date, datetime, geo, amount, count, category, identifier, text

    /// Types that identify a person directly (docs/sandbox-guide.md); never a sandbox dimension.
    public var isDirectIdentifier: Bool {
        switch self {
        case .resident_id, .passport, .phone, .landline, .email, .bank_card, .person_name,
             .address, .license_plate, .ip, .identifier:
            true
        default:
            false
        }
    }
}

/// The storage type of a field's values, checked on import.
public enum FieldType: String, Codable, CaseIterable, Sendable {
    case string, integer, number, boolean, date, datetime
}

/// The role carried by an API key. `steward` is the platform's administrator; `publisher` and
/// `reviewer` belong to one department and act on its datasets only; `security` reviewers approve
/// what opens fields of levels L3/L4 or overrides the k-anonymity gate, for every department.
public enum Role: String, Codable, CaseIterable, Sendable {
    case developer, partner, steward, publisher, reviewer, security

    /// Whether a key of this role belongs to a department (and must name one).
    public var isDepartmental: Bool { self == .publisher || self == .reviewer }
}

/// The view through which rows are served.
public enum View: String, Codable, CaseIterable, Sendable {
    /// Anonymous and developer readers of `open` datasets.
    case `public`
    /// Holders of an active license.
    case licensed
    /// Data stewards: raw values.
    case steward
}

/// A masking operator a steward may name in a manifest's `action` override (docs/policy.md).
public enum ActionName: String, Codable, CaseIterable, Sendable {
    case keep, suppress, mask, pseudonymize, generalize, noise, hash
}
