import KaifangCore

/// The k-anonymity of a view over its quasi-identifiers: rows are grouped by their served
/// (masked, generalized) quasi-identifier values; k is the smallest group's size.
public struct KAnonymityReport: Sendable, Equatable {
    /// The quasi-identifier fields considered.
    public var quasiIdentifiers: [String]
    /// Rows counted.
    public var rows: Int
    /// Equivalence classes.
    public var classes: Int
    /// The smallest class size (nil when there are no quasi-identifiers or no rows).
    public var k: Int?
    /// Rows in classes smaller than the threshold.
    public var rowsBelow: Int
    /// The threshold the report was made for.
    public var threshold: Int

    /// Whether the view meets the threshold (vacuously true without quasi-identifiers).
    public var passes: Bool { k.map { $0 >= threshold } ?? true }
}

/// Counts equivalence classes row by row (memory grows with the number of classes, not rows).
public struct KAnonymityCounter: ~Copyable {
    let plan: MaskingPlan
    let qiColumns: [Int]
    var counts: [[UInt8]: Int] = [:]
    var rows = 0
    var scratch = MaskScratch()
    var key: [UInt8] = []
    var out = ByteBuilder()

    /// Counts over the quasi-identifiers of `plan`'s manifest, as `plan` serves them.
    public init(plan: MaskingPlan) {
        self.plan = plan
        qiColumns = plan.columns.indices.filter { plan.columns[$0].field.qi && plan.columns[$0].included }
    }

    /// Adds one stored row (cells in manifest order).
    public mutating func add(_ cells: [Cell]) {
        guard !qiColumns.isEmpty else { rows += 1; return }
        key.removeAll(keepingCapacity: true)
        for c in qiColumns {
            out.removeAll()
            var kept = false
            if cells[c] != .null {
                var text = cells[c].text
                kept = text.withUTF8 { plan.apply(column: c, $0, row: 0, scratch: &scratch, into: &out) }
            }
            if kept { key.append(1); key.append(contentsOf: out.bytes) } else { key.append(0) }
            key.append(0x1F)
        }
        counts[key, default: 0] += 1
        rows += 1
    }

    /// The report for threshold `k`.
    public func report(threshold: Int) -> KAnonymityReport {
        let names = qiColumns.map { plan.columns[$0].field.name }
        guard !qiColumns.isEmpty, rows > 0 else {
            return KAnonymityReport(quasiIdentifiers: names, rows: rows, classes: 0, k: nil, rowsBelow: 0, threshold: threshold)
        }
        let k = counts.values.min()
        let below = counts.values.filter { $0 < threshold }.reduce(0, +)
        return KAnonymityReport(quasiIdentifiers: names, rows: rows, classes: counts.count, k: k, rowsBelow: below, threshold: threshold)
    }
}
