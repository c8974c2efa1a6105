import Foundation
import GRDBSQLite
import KaifangCore
import VersionFormat

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
        let bounds = plan.dpBounds
        for row in rows {
            guard case .integer(let n) = row[keys] else { continue }
            let count = Double(n) + noise(1 / perQuantity)
            var sums: [Double] = []
            for k in 0..<plan.dpSums {
                let (lo, hi) = bounds[k]
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

/// The dp mode's per-unit pass in the runner (`QueryPlan.dpScanSQL`): one scan of the selected
/// rows (unit, keys, summed columns) appending (unit hash, group, values) per row, then the rows
/// ordered by unit hash (`BucketSort`'s passes, keeping row order within a unit) and folded: each
/// unit's totals, then each group's unit count and clamped totals, in key order. It gives what the
/// per-unit statement (`GROUP BY unit` inside, `GROUP BY keys` outside) gives, without SQLite
/// sorting every row by its unit's text: a unit belongs to the group of its first row (the
/// statement takes an arbitrary row's), all its rows' values add to its totals, NULL units are
/// one unit, and keys group and order as SQLite's GROUP BY and ORDER BY do. Units are told apart
/// by the row sets' salted hash: two whose hashes collide count as one, a unit with both their
/// rows — fewer units, and one person still moves one unit's clamped total (the noise's scale
/// holds). Returns nil when the rows outgrow `budgetBytes`; the runner then runs the statement.
struct PerUnitPass {
    let keys: Int
    let bounds: [(lower: Double, upper: Double)]
    let salt: UInt64
    let budgetBytes: Int

    /// Rows `[keys…, units, clamped total per summed column…]` (what the per-unit statement
    /// returns) and the non-NULL units' hashes.
    struct Result { var rows: [[Cell]]; var units: [UInt64] }

    // Per selected row: its unit's hash, its group, its values (NaN for NULL: adds nothing).
    private var hashes: [UInt64] = []
    private var groupOf: [Int32] = []
    private var values: [Double] = []
    private var sawNullUnit = false
    // Groups: their key cells (the first row's), by a hash of the canonical key values.
    private var groups: [[Cell]] = []
    private var groupsByHash: [UInt64: [Int32]] = [:]

    init(keys: Int, bounds: [(lower: Double, upper: Double)], salt: UInt64, budgetBytes: Int) {
        self.keys = keys; self.bounds = bounds; self.salt = salt; self.budgetBytes = budgetBytes
    }

    mutating func run(_ db: OpaquePointer?, _ sql: String, maxGroups: Int) throws -> Result? {
        var stmt: OpaquePointer?
        try JobExecutor.check(db, sqlite3_prepare_v2(db, sql, -1, &stmt, nil))
        defer { sqlite3_finalize(stmt) }
        let m = bounds.count
        // The rows' arrays, and the sort's order and copies of them.
        let maxRows = budgetBytes / (2 * (8 + 4 + 8 * m) + 4)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            try JobExecutor.check(db, rc)
            if hashes.count >= maxRows { return nil }
            if let p = sqlite3_column_text(stmt, 0) {
                hashes.append(RowSet.hash(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, 0))), salt: salt))
            } else {
                hashes.append(RuleAggregates.nullUnit)
                sawNullUnit = true
            }
            groupOf.append(try group(stmt, maxGroups: maxGroups))
            for k in 0..<m {
                let c = Int32(1 + keys + k)
                values.append(sqlite3_column_type(stmt, c) == SQLITE_NULL ? .nan : sqlite3_column_double(stmt, c))
            }
        }
        // Per unit (a run of equal hashes, rows in scan order): its group is its first row's;
        // its totals are Neumaier sums, clamped; they add to the group's.
        let order = BucketSort.stableOrder(hashes)
        var counts = [Int64](repeating: 0, count: groups.count)
        var totals = [CompensatedSum](repeating: CompensatedSum(), count: groups.count * m)
        var units: [UInt64] = []
        units.reserveCapacity(order.count)
        var unitSums = [CompensatedSum](repeating: CompensatedSum(), count: m)
        var i = 0
        while i < order.count {
            let first = Int(order[i]), h = hashes[first], g = Int(groupOf[first])
            for k in 0..<m { unitSums[k] = CompensatedSum() }
            while i < order.count && hashes[Int(order[i])] == h {
                let r = Int(order[i])
                for k in 0..<m where !values[r * m + k].isNaN { unitSums[k].add(values[r * m + k]) }
                i += 1
            }
            if !(sawNullUnit && h == RuleAggregates.nullUnit) { units.append(h) }
            counts[g] += 1
            for k in 0..<m { totals[g * m + k].add(min(max(unitSums[k].value, bounds[k].lower), bounds[k].upper)) }
        }
        if keys == 0 && groups.isEmpty {   // an aggregate without GROUP BY has one row
            groups.append([]); counts.append(0)
            totals = Array(repeating: CompensatedSum(), count: m)
        }
        let sorted = groups.indices.filter { counts[$0] > 0 || keys == 0 }.sorted { Self.precedes(groups[$0], groups[$1]) }
        let rows = sorted.map { g in
            groups[g] + [.integer(counts[g])] + (0..<m).map { k in Cell.real(totals[g * m + k].value) }
        }
        return Result(rows: rows, units: units)
    }

    /// The group of the current row's keys (columns 1…keys).
    private mutating func group(_ stmt: OpaquePointer?, maxGroups: Int) throws -> Int32 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        for c in 0..<keys {
            h = (h ^ Self.keyHash(stmt, Int32(1 + c))) &* 0x0000_0100_0000_01b3
        }
        if let candidates = groupsByHash[h] {
            for g in candidates where (0..<keys).allSatisfy({ Self.same(groups[Int(g)][$0], stmt, Int32(1 + $0)) }) { return g }
        }
        guard groups.count < maxGroups else {
            throw JobFailure(status: "rejected", reason: "rule-8: the output has more than \(maxGroups) rows: aggregate more coarsely")
        }
        groups.append((0..<keys).map { VersionReader.cell(stmt, Int32(1 + $0)) })
        groupsByHash[h, default: []].append(Int32(groups.count - 1))
        return Int32(groups.count - 1)
    }

    /// A number as GROUP BY compares it: integral reals as integers.
    static func canonical(_ d: Double) -> Int64? {
        d == d.rounded() && abs(d) < 9.2e18 ? Int64(d) : nil
    }

    static func keyHash(_ stmt: OpaquePointer?, _ c: Int32) -> UInt64 {
        /// The SplitMix64 finalizer over a tagged word.
        func mix(_ x: UInt64, _ tag: UInt64) -> UInt64 {
            var h = x ^ (tag &* 0x9E37_79B9_7F4A_7C15)
            h ^= h >> 30; h = h &* 0xbf58_476d_1ce4_e5b9
            h ^= h >> 27; h = h &* 0x94d0_49bb_1331_11eb
            return h ^ (h >> 31)
        }
        switch sqlite3_column_type(stmt, c) {
        case SQLITE_NULL: return 1
        case SQLITE_INTEGER: return mix(UInt64(bitPattern: sqlite3_column_int64(stmt, c)), 2)
        case SQLITE_FLOAT:
            let d = sqlite3_column_double(stmt, c)
            if let i = canonical(d) { return mix(UInt64(bitPattern: i), 2) }
            return mix(d.bitPattern, 3)
        default:
            let p = sqlite3_column_text(stmt, c)
            return RowSet.hash(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, c))), salt: 4)
        }
    }

    /// Whether a group's key cell equals the current row's column `c` (GROUP BY equality).
    static func same(_ cell: Cell, _ stmt: OpaquePointer?, _ c: Int32) -> Bool {
        switch (cell, sqlite3_column_type(stmt, c)) {
        case (.null, SQLITE_NULL): return true
        case (.integer(let i), SQLITE_INTEGER): return i == sqlite3_column_int64(stmt, c)
        case (.integer(let i), SQLITE_FLOAT): return Double(i) == sqlite3_column_double(stmt, c)
        case (.real(let d), SQLITE_INTEGER): return d == Double(sqlite3_column_int64(stmt, c))
        case (.real(let d), SQLITE_FLOAT): return d == sqlite3_column_double(stmt, c)
        case (.text(let s), let t) where t == SQLITE_TEXT || t == SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(stmt, c))
            guard let p = sqlite3_column_text(stmt, c) else { return false }
            var s = s
            return s.withUTF8 { $0.count == n && memcmp($0.baseAddress!, p, n) == 0 }
        default: return false
        }
    }

    /// SQLite's ORDER BY over key tuples: NULL, then numbers by value, then text by its bytes.
    static func precedes(_ a: [Cell], _ b: [Cell]) -> Bool {
        for (x, y) in zip(a, b) {
            let c = compare(x, y)
            if c != 0 { return c < 0 }
        }
        return false
    }

    static func compare(_ x: Cell, _ y: Cell) -> Int {
        func rank(_ c: Cell) -> Int {
            switch c { case .null: 0; case .integer, .real: 1; case .text: 2 }
        }
        if rank(x) != rank(y) { return rank(x) < rank(y) ? -1 : 1 }
        switch (x, y) {
        case (.integer(let a), .integer(let b)): return a < b ? -1 : a > b ? 1 : 0
        case (.text(let a), .text(let b)):
            return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : b.utf8.lexicographicallyPrecedes(a.utf8) ? 1 : 0
        case (.null, .null): return 0
        default:
            let a = x.number, b = y.number
            return a < b ? -1 : a > b ? 1 : 0
        }
    }
}

extension QueryPlan {
    /// dp mode: the declared bounds of each summed column, by its index.
    var dpBounds: [(lower: Double, upper: Double)] {
        var bounds = Array(repeating: (lower: 0.0, upper: 0.0), count: dpSums)
        for c in dpColumns {
            switch c {
            case .sum(let k, let lo, let hi), .avg(let k, let lo, let hi): bounds[k] = (lo, hi)
            default: break
            }
        }
        return bounds
    }
}

private extension Cell {
    var number: Double {
        switch self {
        case .integer(let i): Double(i)
        case .real(let d): d
        default: 0
        }
    }
}
