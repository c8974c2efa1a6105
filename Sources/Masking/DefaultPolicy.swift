import KaifangCore

/// The default action matrix of docs/policy.md: which operator a field gets, by level and view.
public enum DefaultPolicy {
    /// Whether a field's type has a generalization (dates, numbers, ages, geo, addresses).
    public static func hasGeneralization(_ field: FieldSpec) -> Bool {
        switch field.type {
        case .integer, .number, .date, .datetime: return true
        case .boolean: return false
        case .string:
            switch field.semantic {
            case .date, .datetime, .geo, .address, .amount, .count: return true
            default: return false
            }
        }
    }

    /// The action applied to `field` in `view`: the steward's override when the manifest names
    /// one (never in the steward view), else the default matrix.
    public static func action(for field: FieldSpec, view: View) -> ActionName {
        if view == .steward { return .keep }
        if let override = field.action { return override }
        switch (field.level, view) {
        case (.L1, _): return .keep
        case (.L2, .public): return hasGeneralization(field) ? .generalize : .keep
        case (.L2, _): return .keep
        case (.L3, .public): return .mask
        case (.L3, _): return .pseudonymize
        case (.L4, .public): return .suppress
        case (.L4, _): return .mask
        }
    }
}
