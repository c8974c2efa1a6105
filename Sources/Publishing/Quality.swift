import Foundation
import KaifangCore
import Storage
import VersionFormat

/// A version's quality report, computed once when it is imported (versions are immutable): per
/// field, how many values are present and how many distinct, how many were refused for their
/// type or range; the rows refused; repeated primary keys. Shaped after Frictionless's
/// validation report (`valid`, `stats`, per-field figures).
public struct QualityReport: Codable, Sendable, Equatable {
    public struct Stats: Codable, Sendable, Equatable {
        public var rows: Int
        public var fields: Int
        /// Rows refused at import (skipped with `--on-error skip`); absent when not recorded.
        public var rejectedRows: Int?
        enum CodingKeys: String, CodingKey { case rows, fields, rejectedRows = "rejected_rows" }
    }

    public struct Field: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        /// Values that are not null.
        public var present: Int
        /// `present` ÷ rows (1 for an empty version).
        public var completeness: Double
        public var distinct: Int
        /// False when `distinct` is an estimate (HyperLogLog, ±0.8 %: more than 65 536 values).
        public var distinctExact: Bool
        /// Values of this field that failed its type or range in rows refused at import; absent
        /// when not recorded.
        public var refused: Int?
        enum CodingKeys: String, CodingKey { case name, type, present, completeness, distinct, distinctExact = "distinct_exact", refused }
    }

    public struct Key: Codable, Sendable, Equatable {
        public var fields: [String]
        /// Key values that occur in more than one row.
        public var duplicateKeys: Int
        /// Rows beyond the first of each repeated key.
        public var duplicateRows: Int
        enum CodingKeys: String, CodingKey { case fields, duplicateKeys = "duplicate_keys", duplicateRows = "duplicate_rows" }
    }

    public var dataset: String
    public var version: Int
    /// No row refused and no repeated key.
    public var valid: Bool
    public var stats: Stats
    public var fields: [Field]
    public var primaryKey: Key?
    enum CodingKeys: String, CodingKey { case dataset, version, valid, stats, fields, primaryKey = "primary_key" }

    /// The report of version `number` of `dataset`: the one kept, else computed now from its
    /// file (refusals are then unknown) and kept.
    /// - Throws: `KaifangError.notFound` for a version that does not exist.
    public static func of(_ dataset: String, _ number: Int, catalog: any CatalogStore) throws -> QualityReport {
        if let json = try catalog.versionReport(dataset, number, .quality) {
            return try JSONDecoder().decode(QualityReport.self, from: Data(json.utf8))
        }
        let report = try profile(dataset, number, catalog: catalog)
        try keep(report, catalog: catalog)
        return report
    }

    /// The report computed from the version's file alone (what was refused at import is unknown).
    static func profile(_ dataset: String, _ number: Int, catalog: any CatalogStore) throws -> QualityReport {
        guard let v = try catalog.version(dataset, number) else {
            throw KaifangError.notFound("'\(dataset)' has no version \(number): GET /v1/datasets/\(dataset) lists its versions")
        }
        let profiler = QualityProfiler(manifest: v.manifest)
        let reader = try VersionReader(path: try catalog.localFile(v), immutable: true)
        try reader.forEachRow(columns: v.manifest.fields.map(\.name)) { _, row in profiler.add(row) }
        return profiler.report(dataset: dataset, version: number, rejectedRows: nil, refused: nil)
    }

    static func keep(_ report: QualityReport, catalog: any CatalogStore) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try catalog.recordVersionReport(report.dataset, report.version, .quality, json: String(decoding: try enc.encode(report), as: UTF8.self))
    }
}

/// Counts distinct values exactly up to 65 536 of them, then estimates with HyperLogLog (2¹⁴
/// registers: a standard error of 0.81 %) in 16 KiB. The exact set is an open-addressing table
/// of the (already well mixed) hashes: no rehashing per insert, and a repeat of the last value
/// (a category column's runs) costs one comparison.
struct DistinctCounter {
    static let exactLimit = 1 << 16
    private static let p = 14
    /// Linear-probing table of hashes (load at most ½, at most twice the limit); 0 marks an empty slot.
    private var table: [UInt64] = []
    private var stored = 0
    /// Whether hash 0 was added (it cannot be stored in the table).
    private var zero = false
    private var last: UInt64 = 0
    private var estimating = false
    private var registers: [UInt8] = []

    var isExact: Bool { !estimating }

    mutating func add(_ h: UInt64) {
        if estimating { record(h); return }
        if h == last && (h != 0 || zero) { return }
        last = h
        if h == 0 { zero = true; return }
        if table.isEmpty { table = Array(repeating: 0, count: 1024) }
        guard Self.insert(h, into: &table) else { return }
        stored += 1
        // Kept at most half full: doubled (up to twice the limit) as values arrive, so a
        // category column holds a few KiB, not the largest size.
        if 2 * stored > table.count && table.count < 2 * Self.exactLimit {
            var bigger = [UInt64](repeating: 0, count: table.count * 2)
            for v in table where v != 0 { _ = Self.insert(v, into: &bigger) }
            table = bigger
        }
        if stored + (zero ? 1 : 0) > Self.exactLimit {
            registers = Array(repeating: 0, count: 1 << Self.p)
            for v in table where v != 0 { record(v) }
            if zero { record(0) }
            table = []
            estimating = true
        }
    }

    /// Inserts a nonzero hash by linear probing; false when it was there already.
    @inline(__always) private static func insert(_ h: UInt64, into table: inout [UInt64]) -> Bool {
        let mask = table.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let v = table[i]
            if v == h { return false }
            if v == 0 { table[i] = h; return true }
            i = (i + 1) & mask
        }
    }

    @inline(__always) private mutating func record(_ h: UInt64) {
        let index = Int(h >> UInt64(64 - Self.p))
        let rest = (h << UInt64(Self.p)) | (1 << UInt64(Self.p - 1))
        let rank = UInt8(rest.leadingZeroBitCount + 1)
        if rank > registers[index] { registers[index] = rank }
    }

    var count: Int {
        if !estimating { return stored + (zero ? 1 : 0) }
        let m = Double(registers.count)
        var sum = 0.0, zeros = 0
        for r in registers {
            sum += 1 / Double(UInt64(1) << UInt64(r))
            if r == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / m)
        var estimate = alpha * m * m / sum
        if estimate <= 2.5 * m, zeros > 0 { estimate = m * log(m / Double(zeros)) }
        return Int(estimate.rounded())
    }
}

/// A 64-bit hash of a value for counting distinct values: one multiplication per 8 bytes and
/// murmur3's finalizer. Not a digest: it only has to spread values that no one chose to collide
/// (among a million distinct values, two share a hash with a probability of about 3 × 10⁻⁸).
enum CountingHash {
    @inline(__always) static func fmix(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33; k &*= 0xFF51_AFD7_ED55_8CCD
        k ^= k >> 33; k &*= 0xC4CE_B9FE_1A85_EC53
        return k ^ (k >> 33)
    }

    @inline(__always) static func of(_ cell: Cell) -> UInt64 {
        switch cell {
        case .null: return 0
        case .integer(let v): return fmix(UInt64(bitPattern: v) ^ 0x1000_0000_0000_0001)
        case .real(let v): return fmix((v == 0 ? 0 : v).bitPattern ^ 0x2000_0000_0000_0002)
        case .text(let s): return s.utf8.withContiguousStorageIfAvailable { bytes($0) } ?? bytes(Array(s.utf8))
        }
    }

    static func bytes(_ a: [UInt8]) -> UInt64 { a.withUnsafeBufferPointer { bytes($0) } }

    @inline(__always) static func bytes(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = UInt64(p.count) &* 0x9E37_79B9_7F4A_7C15
        guard let base = p.baseAddress else { return fmix(h) }
        let raw = UnsafeRawPointer(base)
        var at = 0
        while at + 8 <= p.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 32
            at += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while at < p.count { tail |= UInt64(p[at]) << shift; shift += 8; at += 1 }
        return fmix(h ^ tail)
    }
}

/// Accumulates a version's figures batch by batch (on a thread of its own during an import).
final class QualityProfiler: @unchecked Sendable {
    let manifest: DatasetManifest
    private let keyColumns: [Int]?
    private var rows = 0
    private var present: [Int]
    private var distinct: [DistinctCounter]
    private var keys = Set<UInt64>()
    private var repeatedKeys = Set<UInt64>()
    private var duplicateRows = 0

    init(manifest: DatasetManifest) {
        self.manifest = manifest
        let names = manifest.fields.map(\.name)
        keyColumns = manifest.primaryKey.map { $0.compactMap { names.firstIndex(of: $0) } }
        present = Array(repeating: 0, count: names.count)
        distinct = Array(repeating: DistinctCounter(), count: names.count)
    }

    func add(_ row: [Cell]) { add(batch: [row]) }

    /// Adds rows, with the counters held in locals for the batch.
    func add(batch: [[Cell]]) {
        var present = self.present, distinct = self.distinct
        self.present = []; self.distinct = []
        defer { self.present = present; self.distinct = distinct }
        let width = present.count
        for row in batch {
            rows += 1
            for i in 0..<min(width, row.count) {
                let cell = row[i]
                if case .null = cell { continue }
                present[i] += 1
                distinct[i].add(CountingHash.of(cell))
            }
            if let keyColumns {
                var k: UInt64 = 0x5851_F42D_4C95_7F2D
                for c in keyColumns { k = CountingHash.fmix(k ^ CountingHash.of(row[c]) &+ 0x1405_7B7E_F767_814F) }
                if !keys.insert(k).inserted {
                    duplicateRows += 1
                    repeatedKeys.insert(k)
                }
            }
        }
    }

    func report(dataset: String, version: Int, rejectedRows: Int?, refused: [String: Int]?) -> QualityReport {
        let fields = manifest.fields.enumerated().map { i, f in
            QualityReport.Field(name: f.name, type: f.type.rawValue, present: present[i],
                                completeness: rows == 0 ? 1 : Double(present[i]) / Double(rows),
                                distinct: distinct[i].count, distinctExact: distinct[i].isExact, refused: refused.map { $0[f.name] ?? 0 })
        }
        let key = manifest.primaryKey.map { QualityReport.Key(fields: $0, duplicateKeys: repeatedKeys.count, duplicateRows: duplicateRows) }
        return QualityReport(dataset: dataset, version: version, valid: (rejectedRows ?? 0) == 0 && duplicateRows == 0,
                             stats: .init(rows: rows, fields: fields.count, rejectedRows: rejectedRows), fields: fields, primaryKey: key)
    }
}
