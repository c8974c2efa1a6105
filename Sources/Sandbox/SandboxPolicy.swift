import Foundation
import KaifangCore

/// The disclosure-control settings of docs/sandbox-guide.md, as `sandbox/policy.json` states the defaults and
/// a dataset may tighten them. When several apply (a query joins datasets), the strictest wins.
public struct SandboxPolicy: Codable, Sendable, Equatable {
    /// Rule 5: each output row must cover at least this many distinct privacy units.
    public var minUnitsPerRow: Int
    /// Rule 6: a SUM/AVG cell is suppressed when its top two contributors exceed this share of the total.
    public var dominanceShare: Double
    /// Rule 7: a query whose row set differs from an answered one by 1…this many units is refused.
    public var overlapMaxDifference: Int
    /// Rule 8: at most this many output rows.
    public var maxOutputRows: Int
    /// Optional rounding of counts (0: none; 5 rounds to the nearest 5).
    public var roundCountsTo: Int
    /// DP: the largest ε one query may spend.
    public var maxEpsilonPerQuery: Double
    /// DP: ε per (license, dataset) per calendar month.
    public var monthlyEpsilon: Double
    /// Limits of the child process that runs a job.
    public var wallSeconds: Int
    public var memoryMiB: Int

    enum CodingKeys: String, CodingKey {
        case minUnitsPerRow = "min_units_per_row"
        case dominanceShare = "dominance_share"
        case overlapMaxDifference = "overlap_max_difference"
        case maxOutputRows = "max_output_rows"
        case roundCountsTo = "round_counts_to"
        case maxEpsilonPerQuery = "max_epsilon_per_query"
        case monthlyEpsilon = "monthly_epsilon"
        case wallSeconds = "wall_seconds"
        case memoryMiB = "memory_mib"
    }

    /// The defaults of docs/sandbox-guide.md.
    public static let defaults = SandboxPolicy(minUnitsPerRow: 10, dominanceShare: 0.9, overlapMaxDifference: 9, maxOutputRows: 5000,
                                               roundCountsTo: 0, maxEpsilonPerQuery: 1, monthlyEpsilon: 10, wallSeconds: 30, memoryMiB: 512)

    public init(minUnitsPerRow: Int, dominanceShare: Double, overlapMaxDifference: Int, maxOutputRows: Int, roundCountsTo: Int,
                maxEpsilonPerQuery: Double, monthlyEpsilon: Double, wallSeconds: Int, memoryMiB: Int) {
        self.minUnitsPerRow = minUnitsPerRow; self.dominanceShare = dominanceShare; self.overlapMaxDifference = overlapMaxDifference
        self.maxOutputRows = maxOutputRows; self.roundCountsTo = roundCountsTo; self.maxEpsilonPerQuery = maxEpsilonPerQuery
        self.monthlyEpsilon = monthlyEpsilon; self.wallSeconds = wallSeconds; self.memoryMiB = memoryMiB
    }

    /// Decodes a policy file; keys it omits keep the defaults, unknown keys are refused by name.
    /// - Throws: `KaifangError.badInput` naming the key or the out-of-range value.
    public static func decode(_ data: Data, source: String) throws -> SandboxPolicy {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw KaifangError.badInput("\(source): not a JSON object")
        }
        let known = Set(["min_units_per_row", "dominance_share", "overlap_max_difference", "max_output_rows", "round_counts_to",
                         "max_epsilon_per_query", "monthly_epsilon", "wall_seconds", "memory_mib", "$comment"])
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw KaifangError.badInput("\(source): unknown key '\(unknown)': the keys are \(known.filter { $0 != "$comment" }.sorted().joined(separator: ", "))")
        }
        struct Partial: Decodable {
            var min_units_per_row: Int?, dominance_share: Double?, overlap_max_difference: Int?, max_output_rows: Int?
            var round_counts_to: Int?, max_epsilon_per_query: Double?, monthly_epsilon: Double?, wall_seconds: Int?, memory_mib: Int?
        }
        let v: Partial
        do { v = try JSONDecoder().decode(Partial.self, from: data) } catch let DecodingError.typeMismatch(_, ctx) {
            throw KaifangError.badInput("\(source): '\(ctx.codingPath.last?.stringValue ?? "?")' must be a number")
        } catch {
            throw KaifangError.badInput("\(source): \(error)")
        }
        var p = defaults
        p.minUnitsPerRow = v.min_units_per_row ?? p.minUnitsPerRow
        p.dominanceShare = v.dominance_share ?? p.dominanceShare
        p.overlapMaxDifference = v.overlap_max_difference ?? p.overlapMaxDifference
        p.maxOutputRows = v.max_output_rows ?? p.maxOutputRows
        p.roundCountsTo = v.round_counts_to ?? p.roundCountsTo
        p.maxEpsilonPerQuery = v.max_epsilon_per_query ?? p.maxEpsilonPerQuery
        p.monthlyEpsilon = v.monthly_epsilon ?? p.monthlyEpsilon
        p.wallSeconds = v.wall_seconds ?? p.wallSeconds
        p.memoryMiB = v.memory_mib ?? p.memoryMiB
        try p.validate(source: source)
        return p
    }

    /// Checks every value is in a sensible range.
    /// - Throws: `KaifangError.badInput` naming the key.
    public func validate(source: String) throws {
        func check(_ ok: Bool, _ key: String, _ range: String) throws {
            if !ok { throw KaifangError.badInput("\(source): '\(key)' must be \(range)") }
        }
        try check(minUnitsPerRow >= 2, "min_units_per_row", "at least 2")
        try check(dominanceShare > 0 && dominanceShare <= 1, "dominance_share", "in (0, 1]")
        try check(overlapMaxDifference >= 0, "overlap_max_difference", "0 or more")
        try check(maxOutputRows >= 1, "max_output_rows", "at least 1")
        try check(roundCountsTo >= 0, "round_counts_to", "0 or more")
        try check(maxEpsilonPerQuery > 0 && maxEpsilonPerQuery <= monthlyEpsilon, "max_epsilon_per_query", "positive and at most monthly_epsilon")
        try check(monthlyEpsilon > 0, "monthly_epsilon", "positive")
        try check(wallSeconds >= 1 && wallSeconds <= 3600, "wall_seconds", "1–3600")
        try check(memoryMiB >= 64, "memory_mib", "at least 64")
    }

    /// The strictest combination of two policies (used when a query touches several datasets).
    public func strictest(_ other: SandboxPolicy) -> SandboxPolicy {
        SandboxPolicy(minUnitsPerRow: max(minUnitsPerRow, other.minUnitsPerRow),
                      dominanceShare: min(dominanceShare, other.dominanceShare),
                      overlapMaxDifference: max(overlapMaxDifference, other.overlapMaxDifference),
                      maxOutputRows: min(maxOutputRows, other.maxOutputRows),
                      roundCountsTo: max(roundCountsTo, other.roundCountsTo),
                      maxEpsilonPerQuery: min(maxEpsilonPerQuery, other.maxEpsilonPerQuery),
                      monthlyEpsilon: min(monthlyEpsilon, other.monthlyEpsilon),
                      wallSeconds: min(wallSeconds, other.wallSeconds),
                      memoryMiB: min(memoryMiB, other.memoryMiB))
    }
}
