import CSQLiteGuard
import Foundation
import GRDBSQLite
import KaifangCore
import Storage
import VersionFormat

/// What the parent hands the child process (`jobs/<id>/spec.json`).
public struct JobSpec: Codable, Sendable {
    public var plan: QueryPlan
    public var policy: SandboxPolicy
    public var epsilon: Double?
    /// Seeds the DP noise; nil draws from the system generator.
    public var seed: UInt64?
    public var dryRun: Bool
    /// Salt of the 64-bit unit hashes kept for overlap control.
    public var rowSetSalt: UInt64
}

/// One output cell.
public enum OutputCell: Codable, Sendable, Equatable {
    case null, integer(Int64), real(Double), text(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .real(d) }
        else { self = .text(try c.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .integer(let i): try c.encode(i)
        case .real(let d): try c.encode(d)
        case .text(let s): try c.encode(s)
        }
    }

    init(_ cell: Cell) {
        switch cell {
        case .null: self = .null
        case .integer(let i): self = .integer(i)
        case .real(let d): self = .real(d)
        case .text(let s): self = .text(s)
        }
    }

    /// As CSV text.
    public var text: String {
        switch self {
        case .null: ""
        case .integer(let i): String(i)
        case .real(let d): Cell.format(d)
        case .text(let s): s
        }
    }
}

/// What the child writes (`jobs/<id>/output.json`): the checked output and its figures.
public struct JobOutput: Codable, Sendable {
    public var columns: [String]
    public var rows: [[OutputCell]]
    public var rowsSuppressed: Int = 0
    public var cellsSuppressed: Int = 0
    public var groupsCensored: Int = 0
    /// dataset → number of distinct units the query's FROM/WHERE selected.
    public var rowSetUnits: [String: Int] = [:]
    public var notes: [String] = []
    /// Set when a rule refuses the output as a whole (rule 8).
    public var refusedRule: String?
    public var refusedReason: String?
}

/// A failure the child reports (`jobs/<id>/error.json`).
public struct JobFailure: Codable, Sendable, Error {
    public var status: String
    public var reason: String
}

/// Runs a job inside the child process: limits itself, opens exactly the attached version files
/// read-only behind the guard, executes the plan and applies the output rules.
public enum JobExecutor {
    /// The `kaifang job exec DIR` entry point. Writes output.json or error.json into DIR.
    /// - Returns: the process exit code (0 ok, 3 refused or failed, 4 timed out).
    public static func main(directory: String) -> Int32 {
        let dir = URL(fileURLWithPath: directory)
        func fail(_ f: JobFailure) -> Int32 {
            let data = (try? JSONEncoder().encode(f)) ?? Data()
            try? data.write(to: dir.appendingPathComponent("error.json"))
            return f.status == "timed_out" ? 4 : 3
        }
        let spec: JobSpec
        do {
            spec = try JSONDecoder().decode(JobSpec.self, from: Data(contentsOf: dir.appendingPathComponent("spec.json")))
        } catch {
            return fail(JobFailure(status: "failed", reason: "cannot read the job's spec: \(error)"))
        }
        if let runner = ProcessInfo.processInfo.environment["KAIFANG_RUNNER_PID"].flatMap(Int32.init) {
            guard getppid() == runner else { return fail(JobFailure(status: "failed", reason: "the runner stopped before the job started")) }
            kaifang_set_runner(runner)
        }
        limitSelf(spec.policy)
        do {
            let output = try execute(spec, directory: dir)
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            try e.encode(output).write(to: dir.appendingPathComponent("output.json"))
            return 0
        } catch let f as JobFailure {
            return fail(f)
        } catch {
            return fail(JobFailure(status: "failed", reason: "\(error)"))
        }
    }

    /// CPU seconds, address space, file size and core dumps, before any data is opened.
    static func limitSelf(_ policy: SandboxPolicy) {
        func set(_ resource: Int32, _ soft: UInt64, _ hard: UInt64) {
            var r = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
            #if os(Linux)
            _ = setrlimit(__rlimit_resource_t(UInt32(resource)), &r)
            #else
            _ = setrlimit(resource, &r)
            #endif
        }
        let cpu = UInt64(policy.wallSeconds) + 1
        set(Int32(RLIMIT_CPU.rawValue), cpu, cpu + 1)
        let bytes = UInt64(policy.memoryMiB) << 20
        set(Int32(RLIMIT_AS.rawValue), bytes, bytes)
        set(Int32(RLIMIT_FSIZE.rawValue), 256 << 20, 256 << 20)
        set(Int32(RLIMIT_CORE.rawValue), 0, 0)
    }

    /// Opens the attached files behind the guard and runs the plan.
    /// - Throws: `JobFailure`.
    public static func execute(_ spec: JobSpec, directory: URL) throws -> JobOutput {
        var db: OpaquePointer?
        guard sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            throw JobFailure(status: "failed", reason: "cannot open SQLite")
        }
        defer { sqlite3_close(db) }
        for (schema, path) in spec.plan.attachments.sorted(by: { $0.key < $1.key }) {
            var allowed = CharacterSet.urlPathAllowed
            allowed.remove(charactersIn: "?#%")
            let encoded = path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
            let sql = "ATTACH DATABASE \(quoteLiteral("file:" + encoded + "?mode=ro&immutable=1")) AS \(SQLPrinter.quote(schema))"
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
                throw JobFailure(status: "failed", reason: "cannot open a dataset version (\(String(cString: sqlite3_errmsg(db))))")
            }
        }
        let heap = Int64(spec.policy.memoryMiB) << 20
        guard kaifang_sqlite_harden(UnsafeMutableRawPointer(db), Double(spec.policy.wallSeconds), heap * 3 / 4) == 0 else {
            throw JobFailure(status: "failed", reason: "cannot harden the SQLite connection")
        }
        let plan = spec.plan
        let maxRows = max(spec.policy.maxOutputRows * 20, 100_000)
        var rows = try query(db, plan.sql, cap: maxRows)
        var out = JobOutput(columns: plan.columns, rows: [])
        let userColumns = plan.columns.count

        switch plan.mode {
        case .rows:
            out.rows = rows.map { $0.prefix(userColumns).map(OutputCell.init) }
        case .aggregate:
            if spec.dryRun {
                out.notes.append("dry run over synthetic data: no disclosure checks applied; the real job applies \(plan.rules.joined(separator: ", "))")
            } else {
                // Rule 5: units per row.
                let unitBase = userColumns + plan.hiddenGroupKeys
                let before = rows.count
                rows.removeAll { row in
                    plan.unitDatasets.indices.contains { k in
                        if case .integer(let n) = row[unitBase + k] { return n < Int64(spec.policy.minUnitsPerRow) }
                        return true
                    }
                }
                out.rowsSuppressed = before - rows.count
                // Rule 6: dominance of the top two contributors.
                for check in plan.dominance {
                    let dominated = try dominatedGroups(db, check.sql, keys: plan.hiddenGroupKeys, share: spec.policy.dominanceShare)
                    for r in rows.indices {
                        let key = groupKey(Array(rows[r][userColumns..<(userColumns + plan.hiddenGroupKeys)]))
                        guard dominated.contains(key) else { continue }
                        for c in check.columns where rows[r][c] != .null { rows[r][c] = .null; out.cellsSuppressed += 1 }
                    }
                }
                if spec.policy.roundCountsTo > 1 {
                    let base = Int64(spec.policy.roundCountsTo)
                    for r in rows.indices {
                        for c in plan.countColumns {
                            if case .integer(let n) = rows[r][c] { rows[r][c] = .integer(((n + base / 2) / base) * base) }
                        }
                    }
                }
            }
            out.rows = rows.map { $0.prefix(userColumns).map(OutputCell.init) }
        case .dp:
            out = try DifferentialPrivacy.release(rows: rows, plan: plan, spec: spec)
        }
        if out.rows.count > spec.policy.maxOutputRows {
            out.refusedRule = "rule-8"
            out.refusedReason = "the output has \(out.rows.count) rows; at most \(spec.policy.maxOutputRows) are released: aggregate more coarsely"
            out.rows = []
        }
        // Rule 7 material: the units each personal dataset contributed.
        if !spec.dryRun {
            for (d, sql) in plan.rowSetSQL.sorted(by: { $0.key < $1.key }) {
                let hashes = try unitHashes(db, sql, salt: spec.rowSetSalt)
                out.rowSetUnits[d] = hashes.count
                let data = hashes.withUnsafeBufferPointer { Data(buffer: $0) }
                try data.write(to: directory.appendingPathComponent("rowset-\(d).bin"))
            }
        }
        return out
    }

    static func check(_ db: OpaquePointer?, _ rc: Int32) throws {
        if rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE { return }
        if kaifang_parent_gone() != 0 {
            throw JobFailure(status: "failed", reason: "the runner stopped while the job ran")
        }
        if kaifang_sqlite_deadline_passed() != 0 || rc == SQLITE_INTERRUPT {
            throw JobFailure(status: "timed_out", reason: "the job ran past its time limit and was stopped")
        }
        if rc == SQLITE_NOMEM {
            throw JobFailure(status: "failed", reason: "the job ran out of its memory limit and was stopped")
        }
        if rc == SQLITE_AUTH {
            throw JobFailure(status: "failed", reason: "the SQLite authorizer refused an operation the checker let through (reported to the stewards)")
        }
        let message = String(cString: sqlite3_errmsg(db))
        if message.contains("too big") || message.contains("too many") {
            throw JobFailure(status: "failed", reason: "the job exceeded a SQLite limit: \(message)")
        }
        throw JobFailure(status: "failed", reason: "SQLite: \(message)")
    }

    /// Runs a statement and returns its rows (at most `cap`).
    static func query(_ db: OpaquePointer?, _ sql: String, cap: Int) throws -> [[Cell]] {
        var stmt: OpaquePointer?
        try check(db, sqlite3_prepare_v2(db, sql, -1, &stmt, nil))
        defer { sqlite3_finalize(stmt) }
        var rows: [[Cell]] = []
        let n = sqlite3_column_count(stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            try check(db, rc)
            if rows.count >= cap {
                throw JobFailure(status: "rejected", reason: "rule-8: the output has more than \(cap) rows: aggregate more coarsely")
            }
            rows.append((0..<n).map { VersionReader.cell(stmt, $0) })
        }
        return rows
    }

    static func groupKey(_ cells: [Cell]) -> String {
        cells.map { c -> String in
            switch c {
            case .null: "n"
            case .integer(let i): "i\(i)"
            case .real(let d): "r\(d.bitPattern)"
            case .text(let s): "t\(s.utf8.count):\(s)"
            }
        }.joined(separator: "|")
    }

    /// Rule 6: groups whose top two units contribute more than `share` of the total (in absolute value).
    static func dominatedGroups(_ db: OpaquePointer?, _ sql: String, keys: Int, share: Double) throws -> Set<String> {
        var stmt: OpaquePointer?
        try check(db, sqlite3_prepare_v2(db, sql, -1, &stmt, nil))
        defer { sqlite3_finalize(stmt) }
        struct Acc { var total = 0.0; var top1 = 0.0; var top2 = 0.0 }
        var groups: [String: Acc] = [:]
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            try check(db, rc)
            let key = groupKey((0..<Int32(keys)).map { VersionReader.cell(stmt, $0) })
            let v = abs(sqlite3_column_double(stmt, Int32(keys) + 1))
            var a = groups[key] ?? Acc()
            a.total += v
            if v > a.top1 { a.top2 = a.top1; a.top1 = v } else if v > a.top2 { a.top2 = v }
            groups[key] = a
        }
        return Set(groups.filter { $0.value.total > 0 && ($0.value.top1 + $0.value.top2) > share * $0.value.total }.keys)
    }

    /// The sorted 64-bit salted hashes of the distinct units a query selects.
    static func unitHashes(_ db: OpaquePointer?, _ sql: String, salt: UInt64) throws -> [UInt64] {
        var stmt: OpaquePointer?
        try check(db, sqlite3_prepare_v2(db, sql, -1, &stmt, nil))
        defer { sqlite3_finalize(stmt) }
        var out: [UInt64] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            try check(db, rc)
            let n = Int(sqlite3_column_bytes(stmt, 0))
            guard let p = sqlite3_column_text(stmt, 0) else { continue }
            out.append(RowSet.hash(UnsafeBufferPointer(start: p, count: n), salt: salt))
        }
        out.sort()
        return out
    }
}

/// Row sets for query-set overlap control (rule 7): sorted salted 64-bit hashes of units.
public enum RowSet {
    /// FNV-1a over the salt and the bytes, then the SplitMix64 finalizer.
    public static func hash(_ bytes: UnsafeBufferPointer<UInt8>, salt: UInt64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
        for b in bytes { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
        h ^= h >> 30; h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 27; h = h &* 0x94d0_49bb_1331_11eb
        h ^= h >> 31
        return h
    }

    public static func read(_ url: URL) -> [UInt64]? {
        (try? Data(contentsOf: url)).flatMap(decode)
    }

    /// The hashes of a row-set file's bytes; nil when they are not whole 64-bit words.
    public static func decode(_ data: Data) -> [UInt64]? {
        guard data.count % 8 == 0 else { return nil }
        return data.withUnsafeBytes { raw in Array(raw.bindMemory(to: UInt64.self)) }
    }

    /// |A △ B| for sorted arrays, stopping once it exceeds `limit`.
    public static func symmetricDifference(_ a: [UInt64], _ b: [UInt64], limit: Int) -> Int {
        var i = 0, j = 0, d = 0
        while i < a.count && j < b.count {
            if a[i] == b[j] { i += 1; j += 1 } else if a[i] < b[j] { d += 1; i += 1 } else { d += 1; j += 1 }
            if d > limit { return d }
        }
        return d + (a.count - i) + (b.count - j)
    }
}
