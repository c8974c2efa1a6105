import Audit
import Crypto
import Foundation
import Ingest
import KaifangCore
import Masking
import Storage

/// Names the license a leaked file came from (数据溯源, `kaifang trace`): reads a CSV or JSON
/// Lines file (any subset of rows and columns, in any order), finds the columns of datasets
/// whose manifest declares fingerprinted numbers, and weighs each rows license of those
/// datasets — revoked and expired ones too: a leak can be older than its license's end.
public enum Tracer {
    /// One license weighed against the file.
    public struct Candidate: Sendable, Equatable {
        public var license: String
        public var keyID: String
        /// Distinct (field, grid point) pairs of the file, and those on the license's marks.
        public var values: Int
        public var agreeing: Int
        /// log₁₀ of the probability that a file nobody marked for this license agrees as well.
        public var log10P: Double
        /// Whether the evidence names the license: its probability, times the licenses tried,
        /// is at most `FingerprintTrace.falseAccusation`.
        public var named: Bool
    }

    /// A dataset whose fingerprinted fields the file has.
    public struct DatasetResult: Sendable, Equatable {
        public var dataset: String
        /// The fingerprinted fields found, by name, and the file's columns they were read from.
        public var fields: [String]
        public var values: Int
        /// The licenses named, strongest first.
        public var named: [Candidate]
        /// The strongest candidates not named (at most 3), to show how far the evidence falls short.
        public var closest: [Candidate]
    }

    public struct Report: Sendable, Equatable {
        public var file: String
        public var sha256: String
        public var rows: Int
        /// Licenses tried over all datasets (the Bonferroni factor).
        public var tried: Int
        public var datasets: [DatasetResult]

        /// Every license named.
        public var named: [String] { datasets.flatMap { $0.named.map(\.license) } }
    }

    /// Traces `path` against the catalog's licenses, records the trace as an audit event
    /// (`trace.run`: the file's SHA-256, rows, the licenses named), and returns the report.
    /// - Parameter dataset: only this dataset's licenses (nil: every dataset the file matches).
    /// - Throws: `KaifangError.badInput` for an unreadable file, one with no fingerprinted
    ///   column of any dataset, or an unknown dataset.
    public static func trace(file path: String, dataset only: String?, catalog: any CatalogStore, actor: String) throws -> Report {
        let table = try read(path)
        let licenses = try catalog.licenses().filter { $0.use == .rows && (only == nil || $0.dataset == only) }
        var byDataset: [String: [LicenseRecord]] = [:]
        for l in licenses { byDataset[l.dataset, default: []].append(l) }
        if let only {
            _ = try catalog.requireDataset(only)
            if byDataset[only] == nil { byDataset[only] = [] }
        }
        // The datasets whose fingerprinted fields the file has, and the columns they are in.
        var matches: [(record: DatasetRecord, fields: [(name: String, column: Int, tolerance: Double)], licenses: [LicenseRecord])] = []
        for id in byDataset.keys.sorted() {
            guard let record = try catalog.dataset(id) else { continue }
            var fields: [(String, Int, Double)] = []
            for f in record.manifest.fields {
                guard let spec = f.fingerprint, let column = table.header.firstIndex(where: { f.matches(header: $0) }) else { continue }
                fields.append((f.name, column, spec.tolerance))
            }
            if !fields.isEmpty { matches.append((record, fields, byDataset[id] ?? [])) }
        }
        guard !matches.isEmpty else {
            throw KaifangError.badInput("\(path): none of its columns (\(table.header.prefix(12).joined(separator: ", "))) is a fingerprinted field of \(only.map { "dataset '\($0)'" } ?? "a dataset with rows licenses"): only numbers whose manifest declares a fingerprint tolerance carry marks")
        }
        let secret = PseudonymKeys(secret: try catalog.pseudonymSecret())
        let tried = max(1, matches.reduce(0) { $0 + $1.licenses.count })
        var results: [DatasetResult] = []
        for m in matches {
            var values: [(field: String, value: Double, tolerance: Double)] = []
            values.reserveCapacity(table.rows.count * m.fields.count)
            for row in table.rows {
                for f in m.fields where f.column < row.count {
                    if let v = row[f.column] { values.append((f.name, v, f.tolerance)) }
                }
            }
            let keys = m.licenses.map { FingerprintKey(keys: secret, license: $0.id) }
            let evidence = FingerprintTrace.evidence(values, keys: keys)
            let candidates = zip(m.licenses, evidence).map { l, e in
                Candidate(license: l.id, keyID: l.keyID, values: e.values, agreeing: e.agreeing, log10P: e.log10P,
                          named: FingerprintTrace.names(e, tried: tried))
            }.sorted { $0.log10P < $1.log10P }
            results.append(DatasetResult(dataset: m.record.id, fields: m.fields.map(\.name), values: evidence.first?.values ?? distinctPoints(values),
                                         named: candidates.filter(\.named), closest: Array(candidates.filter { !$0.named }.prefix(3))))
        }
        let report = Report(file: (path as NSString).lastPathComponent, sha256: table.sha256, rows: table.rows.count, tried: tried, datasets: results)
        try catalog.audit(actor: actor, action: "trace.run", dataset: results.count == 1 ? results[0].dataset : nil, detail: [
            "file_sha256": .string(report.sha256), "rows": .int(Int64(report.rows)), "tried": .int(Int64(tried)),
            "datasets": .array(results.map { .string($0.dataset) }),
            "named": .array(report.named.map { .string($0) }),
        ])
        return report
    }

    static func distinctPoints(_ values: [(field: String, value: Double, tolerance: Double)]) -> Int {
        FingerprintTrace.evidence(values, keys: [FingerprintKey(k0: 0, k1: 0)]).first?.values ?? 0
    }

    /// A JSON value as far as tracing cares: a number, or a string holding one.
    struct JSONCell: Decodable {
        var number: Double?
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let d = try? c.decode(Double.self) { number = d }
            else if let s = try? c.decode(String.self) { number = Double(s.trimmingCharacters(in: .whitespaces)) }
        }
    }

    /// A file's header and its cells read as numbers (nil: empty or not a number).
    struct Table {
        var header: [String]
        var rows: [[Double?]]
        var sha256: String
    }

    /// Reads CSV (a header line, then records) or JSON Lines (objects; the keys of the first
    /// lines are the header), by the file's first byte.
    static func read(_ path: String) throws -> Table {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KaifangError.badInput("cannot read \(path): give the path of the CSV or JSON Lines file to trace")
        }
        let sha = SHA256.hash(data: data).hexString
        let name = (path as NSString).lastPathComponent
        let first = data.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 && $0 != 0xEF && $0 != 0xBB && $0 != 0xBF }
        if first == UInt8(ascii: "{") {
            var header: [String] = []
            var index: [String: Int] = [:]
            var objects: [[String: JSONCell]] = []
            var line = 0
            let decoder = JSONDecoder()
            for raw in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
                line += 1
                if raw.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                guard let object = try? decoder.decode([String: JSONCell].self, from: Data(raw)) else {
                    throw KaifangError.badInput("\(name):\(line): not a JSON object: a JSON Lines file has one object per line")
                }
                for key in object.keys.sorted() where index[key] == nil { index[key] = header.count; header.append(key) }
                objects.append(object)
            }
            let rows = objects.map { o in header.map { o[$0]?.number } }
            return Table(header: header, rows: rows, sha256: sha)
        }
        let reader = CSVReader(source: try FileByteSource(path: path), fileName: name)
        guard try reader.next() else { throw KaifangError.badInput("\(name) is empty: trace a CSV file with a header line, or JSON Lines") }
        let header = reader.strings().map { $0.hasPrefix("\u{FEFF}") ? String($0.dropFirst()) : $0 }
        var rows: [[Double?]] = []
        while try reader.next() {
            rows.append((0..<reader.fieldCount).map { i in reader.withField(i) { b in b.isEmpty ? nil : Double(String(decoding: b, as: UTF8.self)) } })
        }
        return Table(header: header, rows: rows, sha256: sha)
    }
}
