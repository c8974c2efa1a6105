import Foundation

/// How often a dataset is meant to be updated (a manifest's `update_frequency`), and how late
/// its published version may become before it is due, overdue and delinquent.
public enum UpdateFrequency: String, CaseIterable, Sendable {
    case hourly, daily, weekly, monthly, quarterly, semiannual, annual, irregular

    /// Seconds after the published version was made at which the dataset becomes due (one
    /// period: the next update is expected), overdue and delinquent; nil for `irregular`.
    public var thresholds: (due: Double, overdue: Double, delinquent: Double)? {
        let hour = 3600.0, day = 86_400.0
        switch self {
        case .hourly: return (hour, 3 * hour, day)
        case .daily: return (day, 3 * day, 7 * day)
        case .weekly: return (7 * day, 14 * day, 28 * day)
        case .monthly: return (31 * day, 45 * day, 92 * day)
        case .quarterly: return (92 * day, 122 * day, 183 * day)
        case .semiannual: return (183 * day, 214 * day, 365 * day)
        case .annual: return (366 * day, 396 * day, 731 * day)
        case .irregular: return nil
        }
    }

    /// The values a manifest may give, for messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Whether a published dataset is as current as its declared update frequency promises.
public enum Freshness: String, CaseIterable, Sendable {
    /// Younger than one period.
    case fresh
    /// An update is expected: older than one period, within the grace before overdue.
    case due
    case overdue
    case delinquent
    /// Updated irregularly: no promise to check.
    case unscheduled

    /// The state of a dataset whose published version was made at `updatedAt`, at `now`.
    public static func of(frequency: String, updatedAt: Date, now: Date) -> Freshness {
        guard let t = UpdateFrequency(rawValue: frequency)?.thresholds else { return .unscheduled }
        let age = now.timeIntervalSince(updatedAt)
        if age < t.due { return .fresh }
        if age < t.overdue { return .due }
        if age < t.delinquent { return .overdue }
        return .delinquent
    }

    /// When the next update is expected (the end of the first period); nil for `irregular`.
    public static func nextDue(frequency: String, updatedAt: Date) -> Date? {
        UpdateFrequency(rawValue: frequency)?.thresholds.map { updatedAt.addingTimeInterval($0.due) }
    }
}
