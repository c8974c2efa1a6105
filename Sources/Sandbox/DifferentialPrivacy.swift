import Foundation
import KaifangCore

/// The Laplace mechanism (Dwork et al. 2006), as SmartNoise applies it to COUNT and SUM.
public enum Laplace {
    /// One draw from Laplace(0, scale), by inverse CDF over a uniform in (-½, ½).
    public static func sample<G: RandomNumberGenerator>(scale: Double, using g: inout G) -> Double {
        var u = 0.0
        repeat { u = Double.random(in: -0.5..<0.5, using: &g) } while u == -0.5
        return -scale * (u < 0 ? -1 : 1) * log(1 - 2 * abs(u))
    }
}

/// DP mode: per-group noisy COUNT (units) and SUM (clamped per-unit totals), AVG from the two,
/// groups under the censoring threshold dropped. ε is split evenly across the noisy quantities.
enum DifferentialPrivacy {
    static func release(rows: [[Cell]], plan: QueryPlan, spec: JobSpec) throws -> JobOutput {
        var out = JobOutput(columns: plan.columns, rows: [])
        let keys = plan.hiddenGroupKeys
        let epsilon = spec.epsilon ?? spec.policy.maxEpsilonPerQuery
        let quantities = 1 + plan.dpSums
        let perQuantity = epsilon / Double(quantities)
        var system = SystemRandomNumberGenerator()
        var seeded = SeededGenerator(seed: spec.seed ?? 0)
        func noise(_ scale: Double) -> Double {
            if spec.dryRun { return 0 }
            return spec.seed != nil ? Laplace.sample(scale: scale, using: &seeded) : Laplace.sample(scale: scale, using: &system)
        }
        var bounds: [Int: (Double, Double)] = [:]
        for c in plan.dpColumns {
            switch c {
            case .sum(let k, let lo, let hi), .avg(let k, let lo, let hi): bounds[k] = (lo, hi)
            default: break
            }
        }
        for row in rows {
            guard case .integer(let n) = row[keys] else { continue }
            let count = Double(n) + noise(1 / perQuantity)
            var sums: [Double] = []
            for k in 0..<plan.dpSums {
                let (lo, hi) = bounds[k] ?? (0, 0)
                let sensitivity = max(abs(lo), abs(hi))
                let raw: Double
                switch row[keys + 1 + k] {
                case .real(let d): raw = d
                case .integer(let i): raw = Double(i)
                default: raw = 0
                }
                sums.append(raw + noise(sensitivity / perQuantity))
            }
            if count < Double(spec.policy.minUnitsPerRow) && !spec.dryRun {
                out.groupsCensored += 1
                continue
            }
            let released: [OutputCell] = plan.dpColumns.map { c in
                switch c {
                case .group(let k): OutputCell(row[k])
                case .count: .integer(Int64(count.rounded()))
                case .sum(let k, _, _): .real((sums[k] * 100).rounded() / 100)
                case .avg(let k, let lo, let hi): .real(((min(max(sums[k] / max(count, 1), lo), hi)) * 100).rounded() / 100)
                }
            }
            out.rows.append(released)
        }
        out.notes.append("ε = \(epsilon) split over \(quantities) noisy quantit\(quantities == 1 ? "y" : "ies") per group (ε = \(perQuantity) each); counts are of distinct units, sums of per-unit totals clamped to the declared bounds")
        return out
    }
}
