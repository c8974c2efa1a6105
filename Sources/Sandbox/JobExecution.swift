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
        // The only files a job writes are SQLite's sorter spills (a GROUP BY over 10 M rows
        // spills about 450 MB); the wall-clock limit bounds how many it can write.
        set(Int32(RLIMIT_FSIZE.rawValue), 2 << 30, 2 << 30)
        set(Int32(RLIMIT_CORE.rawValue), 0, 0)
        // One malloc arena for both threads (the main one and SQLite's sorter helper).
        kaifang_single_malloc_arena()
    }

    /// Opens the attached files behind the guard and runs the plan.
    /// - Parameter rowsPerGroup: the most rows one group may feed rule 6 in the
    ///   fused pass before rule 6 is recomputed by its own pass.
    /// - Throws: `JobFailure`.
    public static func execute(_ spec: JobSpec, directory: URL, rowsPerGroup: Int = 2_000_000) throws -> JobOutput {
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
        // Pages are read through a memory map (no copy per read: an index scan revisits table
        // pages many times) within a quarter of the address-space limit; where the map cannot be
        // made, SQLite reads as usual.
        let mapped = (Int64(spec.policy.memoryMiB) << 20) / 4 / Int64(max(spec.plan.attachments.count, 1))
        for schema in spec.plan.attachments.keys.sorted() {
            _ = sqlite3_exec(db, "PRAGMA \(SQLPrinter.quote(schema)).mmap_size = \(mapped)", nil, nil, nil)
        }
        // The most rows a version holds: room for the row sets, reserved once (growing by
        // doubling would hold two copies at once).
        var largest = 0
        for schema in spec.plan.attachments.keys.sorted() {
            var stmt: OpaquePointer?
            if sqlite3_prepare_v2(db, "SELECT max(_row) FROM \(SQLPrinter.quote(schema)).rows", -1, &stmt, nil) == SQLITE_OK,
               sqlite3_step(stmt) == SQLITE_ROW {
                largest = max(largest, Int(sqlite3_column_int64(stmt, 0)))
            }
            sqlite3_finalize(stmt)
        }
        let heap = Int64(spec.policy.memoryMiB) << 20
        // A sort larger than SQLite's sorter memory is sorted in pieces by a helper thread on a
        // second core (within the same heap limit; the CPU limit counts both threads).
        let sorterThreads = Int32(min(1, max(ProcessInfo.processInfo.activeProcessorCount - 1, 0)))
        guard kaifang_sqlite_harden(UnsafeMutableRawPointer(db), Double(spec.policy.wallSeconds), heap * 3 / 4, sorterThreads) == 0 else {
            throw JobFailure(status: "failed", reason: "cannot harden the SQLite connection")
        }
        let plan = spec.plan
        let maxRows = max(spec.policy.maxOutputRows * 20, 100_000)
        // Aggregate and dp jobs compute the rules' material in the query's own pass when they can.
        let fused = plan.mode != .rows && !spec.dryRun && spec.policy.minUnitsPerRow <= 1000 ? plan.fusedSQL : nil
        let aggregates = RuleAggregates(policy: spec.policy, salt: spec.rowSetSalt, datasets: plan.unitDatasets.count, maxRowsPerGroup: rowsPerGroup)
        if fused != nil {
            try aggregates.register(db)
            if plan.mode == .aggregate { aggregates.reserve(rows: largest) }
        }
        var sql = fused ?? plan.sql
        if fused != nil, let scan = plan.fusedScanSQL, walksWholeIndex(db, sql) { sql = scan }
        var rows: [[Cell]]
        if fused != nil, plan.mode == .dp, let scan = plan.dpScanSQL, let perUnit = try runPerUnitPass(db, scan, spec, maxGroups: maxRows) {
            rows = perUnit.rows
            for h in perUnit.units { aggregates.collect(0, h) }
        } else {
            rows = try query(db, sql, cap: maxRows)
        }
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
                // Rule 6: dominance of the top two contributors — from the pass itself, or by a
                // pass of its own when the fused one could not hold a group's units.
                let dominatedBase = unitBase + plan.unitDatasets.count
                for (j, check) in plan.dominance.enumerated() {
                    let isDominated: ([Cell]) -> Bool
                    if fused != nil && !aggregates.overflowed {
                        isDominated = { row in row[dominatedBase + j] == .integer(1) }
                    } else {
                        let dominated = try dominatedGroups(db, check.sql, keys: plan.hiddenGroupKeys, share: spec.policy.dominanceShare)
                        isDominated = { row in dominated.contains(groupKey(Array(row[userColumns..<(userColumns + plan.hiddenGroupKeys)]))) }
                    }
                    for r in rows.indices where isDominated(rows[r]) {
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
                let file = RowSetFile(path: directory.appendingPathComponent("rowset-\(d).bin").path)
                try file.open()
                defer { file.close() }
                if fused != nil, let k = plan.unitDatasets.firstIndex(of: d) {
                    out.rowSetUnits[d] = try aggregates.writeRowSet(k, to: file)
                } else {
                    let hashes = try unitHashes(db, sql, salt: spec.rowSetSalt)
                    try hashes.withUnsafeBufferPointer { try file.write($0) }
                    out.rowSetUnits[d] = hashes.count
                }
            }
        }
        withExtendedLifetime(aggregates) {}
        return out
    }

    /// dp mode's per-unit pass within a quarter of the job's memory; nil (its memory given back
    /// before the statement runs instead) when the selected rows outgrow it.
    static func runPerUnitPass(_ db: OpaquePointer?, _ sql: String, _ spec: JobSpec, maxGroups: Int) throws -> PerUnitPass.Result? {
        var pass = PerUnitPass(keys: spec.plan.hiddenGroupKeys, bounds: spec.plan.dpBounds, salt: spec.rowSetSalt,
                               budgetBytes: (spec.policy.memoryMiB << 20) / 4)
        return try pass.run(db, sql, maxGroups: maxGroups)
    }

    /// Whether SQLite's plan for `sql` reads a whole table through a non-covering index (a `SCAN
    /// … USING INDEX` step), looking each row up in the table in index order.
    static func walksWholeIndex(_ db: OpaquePointer?, _ sql: String) -> Bool {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN " + sql, -1, &stmt, nil) == SQLITE_OK else { return false }
        defer { sqlite3_finalize(stmt) }
        while sqlite3_step(stmt) == SQLITE_ROW {
            guard let text = sqlite3_column_text(stmt, 3) else { continue }
            let detail = String(cString: text)
            if detail.hasPrefix("SCAN ") && detail.contains(" USING INDEX ") { return true }
        }
        return false
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

/// The rules' material computed inside the query's own pass (`QueryPlan.fusedSQL`): two
/// aggregate functions registered on the job's connection.
///
/// - `kaifang_units(k, unit)`: the group's distinct units (NULL ignored), counted up to the
///   policy's minimum — rule 5 asks only whether a row has that many, so a group keeps at most
///   that many 64-bit unit hashes; each unit's hash also goes to dataset k's row set (rule 7).
/// - `kaifang_dominance(j, unit, value)`: 1 when the group's two largest per-unit totals (in
///   absolute value; NULL values ignored, as TOTAL does) exceed the policy's share of the sum of
///   all units' absolute totals (rule 6), else 0. A group's contributions live only until its
///   row is finished (SQLite aggregates one group at a time); a group with more than
///   `maxRowsPerGroup` rows sets `overflowed` and the runner recomputes rule 6 by its own pass.
///
/// Units are told apart by the same salted hash as the row sets: two units whose hashes collide
/// count as one, which can only make a row look smaller or more dominated (stricter), never less.
final class RuleAggregates {
    let minUnits: Int
    let share: Double
    let salt: UInt64
    let maxRowsPerGroup: Int
    // The per-row state below is touched once or twice per row; a class property's dynamic
    // exclusivity check would cost more than the work. Only the job's one thread runs these.
    /// Row-set hashes per personal dataset (in the order of `QueryPlan.unitDatasets`), unsorted,
    /// with repeats, in 256 parts by their top byte: each part is sorted on its own at the end,
    /// within the caches and with a copy of one part only.
    @exclusivity(unchecked) var rowSets: [[[UInt64]]]
    /// Per live group context (by address): its units' totals.
    @exclusivity(unchecked) var totals: [Int: UnitTotals] = [:]
    /// The group being aggregated (SQLite feeds one group at a time): its context and totals.
    @exclusivity(unchecked) var currentKey = 0
    @exclusivity(unchecked) var current = UnitTotals()
    @exclusivity(unchecked) var overflowed = false
    /// The last unit hashed (its bytes, when they fit, and hash): both functions read the same
    /// unit of a row, so the second takes the hash from here instead of hashing again.
    let lastUnit = UnsafeMutablePointer<UInt8>.allocate(capacity: RuleAggregates.cachedUnitBytes)
    @exclusivity(unchecked) var lastUnitCount = -1
    @exclusivity(unchecked) var lastUnitHash: UInt64 = 0
    static let cachedUnitBytes = 64

    /// The totals of the group whose context is `key`, made current.
    @inline(__always) func select(_ key: Int) {
        if key == currentKey { return }
        if currentKey != 0 { totals[currentKey] = current; current = UnitTotals() }
        if let t = totals.removeValue(forKey: key) { current = t }   // else the emptied table, its room kept
        currentKey = key
    }

    init(policy: SandboxPolicy, salt: UInt64, datasets: Int, maxRowsPerGroup: Int = 2_000_000) {
        minUnits = policy.minUnitsPerRow; share = policy.dominanceShare; self.salt = salt
        self.maxRowsPerGroup = maxRowsPerGroup
        rowSets = Array(repeating: Array(repeating: [], count: 256), count: datasets)
    }

    deinit { lastUnit.deallocate() }

    static let nullUnit: UInt64 = 0x6E75_6C6C_756E_6974

    /// `RowSet.hash` of a unit's bytes, remembered for the next call with the same bytes.
    @inline(__always) func unitHash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        if n == lastUnitCount && memcmp(p, lastUnit, n) == 0 { return lastUnitHash }
        let h = RowSet.hash(UnsafeBufferPointer(start: p, count: n), salt: salt)
        if n <= Self.cachedUnitBytes {
            lastUnit.update(from: p, count: n)
            lastUnitCount = n
            lastUnitHash = h
        }
        return h
    }

    /// Registers both functions on `db`; the object must outlive the connection's statements.
    func register(_ db: OpaquePointer?) throws {
        let me = Unmanaged.passUnretained(self).toOpaque()
        let units: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, _, argv in
            let a = Unmanaged<RuleAggregates>.fromOpaque(sqlite3_user_data(ctx)!).takeUnretainedValue()
            guard let argv, let unit = sqlite3_value_text(argv[1]) else { return }
            let k = Int(sqlite3_value_int(argv[0]))
            let h = a.unitHash(unit, Int(sqlite3_value_bytes(argv[1])))
            if k >= 0 && k < a.rowSets.count { a.collect(k, h) }
            // [count, hash₁ … hash_min]
            guard let raw = sqlite3_aggregate_context(ctx, Int32(8 * (a.minUnits + 1))) else { sqlite3_result_error_nomem(ctx); return }
            let slots = raw.bindMemory(to: UInt64.self, capacity: a.minUnits + 1)
            let n = Int(slots[0])
            if n >= a.minUnits { return }
            for i in 0..<n where slots[1 + i] == h { return }
            slots[1 + n] = h
            slots[0] = UInt64(n + 1)
        }
        let unitsFinal: @convention(c) (OpaquePointer?) -> Void = { ctx in
            let raw = sqlite3_aggregate_context(ctx, 0)
            sqlite3_result_int64(ctx, raw.map { Int64($0.load(as: UInt64.self)) } ?? 0)
        }
        let dominance: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, _, argv in
            let a = Unmanaged<RuleAggregates>.fromOpaque(sqlite3_user_data(ctx)!).takeUnretainedValue()
            guard let argv, let raw = sqlite3_aggregate_context(ctx, 8) else { sqlite3_result_error_nomem(ctx); return }
            if a.overflowed { return }
            raw.storeBytes(of: 1, as: UInt64.self)   // the group has rows
            let key = Int(bitPattern: raw)
            let h: UInt64 = sqlite3_value_text(argv[1]).map { a.unitHash($0, Int(sqlite3_value_bytes(argv[1]))) } ?? RuleAggregates.nullUnit
            a.select(key)
            // A NULL value adds nothing to its unit's total, as in TOTAL; the unit still counts.
            a.current.append(h, sqlite3_value_type(argv[2]) == SQLITE_NULL ? 0 : sqlite3_value_double(argv[2]))
            if a.current.count > a.maxRowsPerGroup { a.overflowed = true; a.current = UnitTotals(); a.totals = [:] }
        }
        let dominanceFinal: @convention(c) (OpaquePointer?) -> Void = { ctx in
            let a = Unmanaged<RuleAggregates>.fromOpaque(sqlite3_user_data(ctx)!).takeUnretainedValue()
            guard let raw = sqlite3_aggregate_context(ctx, 0) else { sqlite3_result_int64(ctx, 0); return }
            a.select(Int(bitPattern: raw))
            var total = 0.0, top1 = 0.0, top2 = 0.0
            a.current.forEachTotal { t in
                let v = abs(t)
                total += v
                if v > top1 { top2 = top1; top1 = v } else if v > top2 { top2 = v }
            }
            a.current.removeAll()
            a.currentKey = 0
            sqlite3_result_int64(ctx, total > 0 && top1 + top2 > a.share * total ? 1 : 0)
        }
        for (name, args, step, final) in [("kaifang_units", Int32(2), units, unitsFinal), ("kaifang_dominance", Int32(3), dominance, dominanceFinal)] {
            guard sqlite3_create_function_v2(db, name, args, SQLITE_UTF8, me, nil, step, final, nil) == SQLITE_OK else {
                throw JobFailure(status: "failed", reason: "cannot register \(name): \(String(cString: sqlite3_errmsg(db)))")
            }
        }
    }

    @inline(__always) func collect(_ k: Int, _ h: UInt64) {
        rowSets[k][Int(h >> 56)].append(h)
    }

    /// Room for `rows` hashes per dataset (growing by doubling would hold two copies of a part).
    func reserve(rows: Int) {
        for k in rowSets.indices {
            for b in 0..<256 { rowSets[k][b].reserveCapacity(rows / 256 + rows / 2048 + 16) }
        }
    }

    /// Writes dataset k's row set, its sorted distinct hashes, part by part; returns how many.
    func writeRowSet(_ k: Int, to file: RowSetFile) throws -> Int {
        var count = 0
        for b in 0..<256 {
            var part = rowSets[k][b]
            rowSets[k][b] = []
            BucketSort.sort(&part, skippingTopBits: 8)
            var n = 0
            for i in part.indices where i == 0 || part[i] != part[n - 1] {
                part[n] = part[i]
                n += 1
            }
            try part.withUnsafeBufferPointer { try file.write(UnsafeBufferPointer(rebasing: $0[0..<n])) }
            count += n
        }
        return count
    }
}

/// A row-set file written as its hashes are sorted, straight from their buffers (a copy of a
/// 10 M-unit row set would not fit the job's address space).
final class RowSetFile {
    let path: String
    private var fd: Int32 = -1
    init(path: String) { self.path = path }

    func open() throws {
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw JobFailure(status: "failed", reason: "cannot write the row set (errno \(errno))") }
    }

    func write(_ hashes: UnsafeBufferPointer<UInt64>) throws {
        let raw = UnsafeRawBufferPointer(hashes)
        var done = 0
        while done < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw JobFailure(status: "failed", reason: "cannot write the row set (errno \(errno))") }
            done += n
        }
    }

    func close() { if fd >= 0 { _ = Glibc.close(fd); fd = -1 } }
}

/// Sorting of 64-bit hashes (uniformly spread, which is what makes this fast): one pass counts
/// them by their top bits (about one hash per bucket), one scatters them in bucket order —
/// stably — and an insertion sort finishes each bucket. Linear in expectation, where a comparison sort of a
/// million hashes is the largest cost after the query. The hashes are salted with a secret of the
/// platform, so a job's author cannot choose units that crowd one bucket; equal hashes (one
/// unit's many rows) never move.
enum BucketSort {
    /// The top-bit width for `n` hashes: about one per bucket, at most 2²⁰ buckets (8 MiB of
    /// counts; ten hashes a bucket at 10 M).
    static func bits(_ n: Int) -> Int { min(20, max(8, Int.bitWidth - (n - 1).leadingZeroBitCount)) }

    /// The bucket pass: calls `place(i, slot)` for each key in position order, the slots putting
    /// keys in ascending order of their top bits (keys in place for 64 or fewer).
    @inline(__always) static func scatter(_ k: UnsafeBufferPointer<UInt64>, _ place: (Int, Int) -> Void) {
        let n = k.count
        guard n > 64 else { for i in 0..<n { place(i, i) }; return }
        let shift = UInt64(64 - bits(n))
        var starts = [Int](repeating: 0, count: (1 << (64 - Int(shift))) + 1)
        starts.withUnsafeMutableBufferPointer { c in
            for x in k { c[Int(x >> shift) + 1] += 1 }
            for i in 1..<c.count { c[i] += c[i - 1] }
            for i in 0..<n {
                let d = Int(k[i] >> shift)
                place(i, c[d])
                c[d] += 1
            }
        }
    }

    /// Sorts `a` ascending; its hashes share their top `skippingTopBits` bits, and are
    /// bucketed by the bits below those.
    static func sort(_ a: inout [UInt64], skippingTopBits skip: Int = 0) {
        let n = a.count
        guard n > 64 else { a.sort(); return }
        let width = bits(n)
        var starts = [Int](repeating: 0, count: (1 << width) + 1)
        var out = [UInt64](repeating: 0, count: n)
        a.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                starts.withUnsafeMutableBufferPointer { c in
                    @inline(__always) func bucket(_ x: UInt64) -> Int { Int((x << UInt64(skip)) >> UInt64(64 - width)) }
                    for x in src { c[bucket(x) + 1] += 1 }
                    for i in 1..<c.count { c[i] += c[i - 1] }
                    for x in src {
                        let d = bucket(x)
                        dst[c[d]] = x
                        c[d] += 1
                    }
                }
                insertionSort(dst.baseAddress!, n) { $0 }
            }
        }
        swap(&a, &out)
    }

    /// Positions of `keys` ordered by key, equal keys in position order.
    static func stableOrder(_ keys: [UInt64]) -> [Int32] {
        let n = keys.count
        var order = [Int32](repeating: 0, count: n)
        guard n > 0 else { return order }
        keys.withUnsafeBufferPointer { k in
            order.withUnsafeMutableBufferPointer { o in
                scatter(k) { i, slot in o[slot] = Int32(i) }
                insertionSort(o.baseAddress!, n) { k[Int($0)] }
            }
        }
        return order
    }

    /// Stable insertion sort of `n` elements by `key`: linear when each is near its place.
    @inline(__always) static func insertionSort<T>(_ p: UnsafeMutablePointer<T>, _ n: Int, key: (T) -> UInt64) {
        guard n > 1 else { return }
        for i in 1..<n {
            let x = p[i]
            let k = key(x)
            var j = i
            while j > 0 && key(p[j - 1]) > k {
                p[j] = p[j - 1]
                j -= 1
            }
            p[j] = x
        }
    }
}

/// A sum with Neumaier's compensation, as SQLite's TOTAL adds.
struct CompensatedSum {
    private var sum = 0.0, compensation = 0.0
    var value: Double { sum + compensation }

    @inline(__always) mutating func add(_ v: Double) {
        let t = sum + v
        compensation += abs(sum) >= abs(v) ? (sum - t) + v : (v - t) + sum
        sum = t
    }
}

/// One group's contributions: (unit hash, value) in the order SQLite delivers the rows, appended
/// (no random access per row, which a table of a large group's units would cost in cache
/// misses), then sorted by unit (`BucketSort`'s passes, which keep row order within a unit) so
/// that each unit's values are summed in row order, with Neumaier's compensation as SQLite's
/// TOTAL, and folded into per-unit totals.
struct UnitTotals {
    private var keys: [UInt64] = []
    private var values: [Double] = []
    /// Rows held.
    var count: Int { keys.count }

    @inline(__always) mutating func append(_ h: UInt64, _ v: Double) {
        keys.append(h)
        values.append(v)
    }

    /// Calls `body` with each unit's total (units in hash order).
    func forEachTotal(_ body: (Double) -> Void) {
        let n = keys.count
        guard n > 0 else { return }
        // (unit, value) pairs ordered by unit, each unit's values in row order.
        let pairs = UnsafeMutablePointer<(key: UInt64, value: Double)>.allocate(capacity: n)
        defer { pairs.deallocate() }
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                BucketSort.scatter(k) { i, slot in (pairs + slot).initialize(to: (k[i], v[i])) }
            }
        }
        BucketSort.insertionSort(pairs, n) { $0.key }
        var i = 0
        while i < n {
            let k = pairs[i].key
            var total = CompensatedSum()
            while i < n && pairs[i].key == k {
                total.add(pairs[i].value)
                i += 1
            }
            body(total.value)
        }
    }

    mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
    }
}
