import Foundation
import GRDBSQLite
import KaifangCore
@testable import Sandbox
import Storage
import Testing

/// The rules' material computed in the query's own pass (`kaifang_units`, `kaifang_dominance`)
/// gives exactly what the separate passes give: the same released rows, the same suppressed
/// rows and cells, the same row sets byte for byte — on the sample data, for small cells,
/// dominated sums, no GROUP BY, HAVING with ORDER BY, and when a group's units overflow the
/// fused pass's bound; and whether the runner follows SQLite's plan or scans the table and sorts.
@Suite(.serialized) struct FusedRulesTests {
    let scratch = Scratch()

    static let queries = [
        "SELECT district, service_type, gender, COUNT(*) AS n, SUM(benefit_amount) AS s, AVG(benefit_amount) AS a FROM residents GROUP BY district, service_type, gender",
        "SELECT district, COUNT(*) AS n, SUM(benefit_amount) AS total FROM residents WHERE service_type = '临时救助' GROUP BY district",
        "SELECT COUNT(*) AS n, SUM(benefit_amount) AS s FROM residents WHERE gender = '女'",
        "SELECT district, COUNT(*) AS n, TOTAL(benefit_amount) AS t, ROUND(AVG(benefit_amount), 2) AS a FROM residents GROUP BY district HAVING COUNT(*) > 150 ORDER BY n DESC",
        "SELECT service_type, COUNT(DISTINCT id_number) AS people, AVG(benefit_amount) AS mean FROM residents WHERE district IN ('玄武区', '秦淮区') GROUP BY service_type",
    ]

    func run(_ plan: QueryPlan, policy: SandboxPolicy, rowsPerGroup: Int = 2_000_000) throws -> (JobOutput, [String: Data]) {
        let dir = URL(fileURLWithPath: scratch.dataDir).appendingPathComponent("job-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let spec = JobSpec(plan: plan, policy: policy, epsilon: nil, seed: 1, dryRun: false, rowSetSalt: 0x5EED)
        let out = try JobExecutor.execute(spec, directory: dir, rowsPerGroup: rowsPerGroup)
        var sets: [String: Data] = [:]
        for d in plan.unitDatasets { sets[d] = try Data(contentsOf: dir.appendingPathComponent("rowset-\(d).bin")) }
        return (out, sets)
    }

    /// Equal rows, reals to a relative 1e-12 (summation order).
    static func agree(_ x: [[OutputCell]], _ y: [[OutputCell]]) -> Bool {
        x.count == y.count && zip(x, y).allSatisfy { r, t in
            r.count == t.count && zip(r, t).allSatisfy { a, b in
                if case .real(let u) = a, case .real(let v) = b { return abs(u - v) <= 1e-12 * max(abs(u), abs(v)) }
                return a == b
            }
        }
    }

    /// Whether SQLite would walk a whole index and look every row up for `plan`'s fused SQL, on
    /// a connection set up as the job's (its files attached, the runner's functions registered).
    func walksWholeIndex(_ plan: QueryPlan) throws -> Bool {
        var db: OpaquePointer?
        guard sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else { throw CocoaError(.fileReadUnknown) }
        defer { sqlite3_close(db) }
        for (schema, path) in plan.attachments { #expect(sqlite3_exec(db, "ATTACH DATABASE '\(path)' AS \"\(schema)\"", nil, nil, nil) == SQLITE_OK) }
        let aggregates = RuleAggregates(policy: .defaults, salt: 1, datasets: plan.unitDatasets.count)
        try aggregates.register(db)
        return JobExecutor.walksWholeIndex(db, try #require(plan.fusedSQL))
    }

    @Test func theFusedPassReleasesExactlyWhatTheSeparatePassesDo() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["dataset", "import", "datasets/residents/residents.csv", "--manifest", "datasets/residents/dataset.json", "--data-dir", dir]).status == 0)
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        let record = try #require(try catalog.dataset("residents"))
        let version = try #require(try catalog.versions("residents").last)
        for share in [0.9, 0.02] {
            var policy = SandboxPolicy.defaults
            policy.dominanceShare = share
            let table = SandboxTable(manifest: record.manifest, version: version.number, path: try catalog.localFile(version), tier: .conditional, granted: nil, policy: policy)
            var dominated = 0, suppressed = 0, walked = 0
            for sql in Self.queries {
                let plan = try QueryChecker(tables: [table], mode: "aggregate").check(sql)
                let fusedSQL = try #require(plan.fusedSQL, "\(sql)")
                #expect(fusedSQL.contains("kaifang_units(0, ") && !fusedSQL.contains("COUNT(DISTINCT \"residents\".\"id_number\") AS \"__units"))
                var separate = plan
                separate.fusedSQL = nil
                var planned = plan   // the fused pass as SQLite plans it, never the table scan
                planned.fusedScanSQL = nil
                if try walksWholeIndex(plan) { walked += 1 }
                let (a, aSets) = try run(plan, policy: policy)
                let (b, bSets) = try run(separate, policy: policy)
                let (c, cSets) = try run(plan, policy: policy, rowsPerGroup: 3)   // overflows: rule 6 by its own pass
                let (d, dSets) = try run(planned, policy: policy)
                // The same plan gives the same bytes; the other plan may sum a group's values in
                // another order, so its sums agree to the last binary digits only.
                #expect(a.rows == c.rows && b.rows == d.rows, "\(sql)")
                for (x, sets) in [(b, bSets), (c, cSets), (d, dSets)] {
                    #expect(Self.agree(a.rows, x.rows), "\(sql)")
                    #expect(a.rowsSuppressed == x.rowsSuppressed && a.cellsSuppressed == x.cellsSuppressed, "\(sql)")
                    #expect(a.rowSetUnits == x.rowSetUnits && aSets == sets, "\(sql)")
                }
                #expect(a.rowSetUnits["residents"].map { $0 > 100 } == true)
                dominated += a.cellsSuppressed
                suppressed += a.rowsSuppressed
            }
            // The queries exercise both rules: small groups dropped, and (at 2 %) sums blanked;
            // and both plans: some queries SQLite would answer by walking an index.
            #expect(suppressed > 0)
            #expect(walked > 0 && walked < Self.queries.count)
            if share < 0.5 { #expect(dominated > 0) }
        }
        // dp mode: the row set collected from the per-unit rows; the same seeded release.
        let table = SandboxTable(manifest: record.manifest, version: version.number, path: try catalog.localFile(version), tier: .conditional, granted: nil, policy: .defaults)
        for sql in ["SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS a FROM residents GROUP BY district",
                    "SELECT COUNT(*) AS n, SUM(benefit_amount) AS s FROM residents WHERE gender = '男'"] {
            let plan = try QueryChecker(tables: [table], mode: "dp").check(sql)
            #expect(plan.fusedSQL?.contains("kaifang_units(0, \"__unit\")") == true)
            #expect(plan.dpScanSQL != nil)
            var separate = plan
            separate.fusedSQL = nil
            var statement = plan   // the per-unit statement with the row set collected, not the runner's own pass
            statement.dpScanSQL = nil
            let (a, aSets) = try run(plan, policy: .defaults)
            let (b, bSets) = try run(separate, policy: .defaults)
            let (c, cSets) = try run(statement, policy: .defaults)
            #expect(b.rows == c.rows && Self.agree(a.rows, b.rows), "\(sql)")
            #expect(a.rowSetUnits == b.rowSetUnits && aSets == bSets && bSets == cSets, "\(sql)")
            #expect(!a.rows.isEmpty)
        }
    }

    /// The dp mode's per-unit pass on rows made to test it: a unit with rows in two groups, a
    /// NULL unit, a NULL value, a total over the bound, keys 1 and 1.0, no GROUP BY over no rows.
    @Test func thePerUnitPassCountsUnitsOnceInTheirFirstRowsGroup() throws {
        var db: OpaquePointer?
        #expect(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK)
        defer { sqlite3_close(db) }
        #expect(sqlite3_exec(db, """
            CREATE TABLE t (u TEXT, k TEXT, n, v REAL);
            INSERT INTO t VALUES ('a', 'x', 1, 10), ('b', 'y', 1.0, 3), ('a', 'y', 'one', 5), ('b', 'y', NULL, NULL),
                                 (NULL, 'x', NULL, 2), (NULL, 'y', 2, 4), ('c', 'x', 2.5, 200);
            """, nil, nil, nil) == SQLITE_OK)
        let bounds = [(lower: 0.0, upper: 100.0)]
        var byK = PerUnitPass(keys: 1, bounds: bounds, salt: 7, budgetBytes: 1 << 20)
        let k = try #require(try byK.run(db, "SELECT u, k, v FROM t", maxGroups: 100))
        // x: a (10 + 5), the NULL unit (2 + 4), c (200 → 100); y: b (3).
        #expect(k.rows == [[.text("x"), .integer(3), .real(121)], [.text("y"), .integer(1), .real(3)]])
        #expect(k.units.count == 3 && !k.units.contains(RuleAggregates.nullUnit))
        // Keys group and order as SQLite's: NULL, then 1 = 1.0, then 2.5 (by c's first row), then text.
        var byN = PerUnitPass(keys: 1, bounds: bounds, salt: 7, budgetBytes: 1 << 20)
        let n = try #require(try byN.run(db, "SELECT u, n, v FROM t", maxGroups: 100))
        #expect(n.rows.map { Array($0.prefix(2)) } == [[.null, .integer(1)], [.integer(1), .integer(2)], [.real(2.5), .integer(1)]])
        // No GROUP BY, no rows: one row, as an aggregate without GROUP BY gives.
        var none = PerUnitPass(keys: 0, bounds: bounds, salt: 7, budgetBytes: 1 << 20)
        #expect(try none.run(db, "SELECT u, v FROM t WHERE 0", maxGroups: 100)?.rows == [[.integer(0), .real(0)]])
        // Too many groups is rule 8; rows beyond the budget leave the work to the statement.
        var few = PerUnitPass(keys: 1, bounds: bounds, salt: 7, budgetBytes: 1 << 20)
        #expect(throws: JobFailure.self) { try few.run(db, "SELECT u, k, v FROM t", maxGroups: 1) }
        var small = PerUnitPass(keys: 1, bounds: bounds, salt: 7, budgetBytes: 200)
        #expect(try small.run(db, "SELECT u, k, v FROM t", maxGroups: 100) == nil)
    }

    @Test func aLimitKeepsTheSeparatePassesAndTheRunnersFunctionsAreNotForJobs() throws {
        let manifest = try DatasetManifest.load(path: "datasets/residents/dataset.json")
        let table = SandboxTable(manifest: manifest, version: 1, path: "/data/residents.sqlite", tier: .conditional, granted: nil, policy: .defaults)
        let checker = QueryChecker(tables: [table], mode: "aggregate")
        #expect(try checker.check("SELECT district, COUNT(*) AS n FROM residents GROUP BY district ORDER BY n DESC LIMIT 3").fusedSQL == nil)
        // The table-scan variant differs only in the GROUP BY keys, kept from index use; a join keeps SQLite's plan.
        let plan = try checker.check("SELECT district, gender, COUNT(*) AS n FROM residents WHERE service_type = '临时救助' GROUP BY district, gender ORDER BY n")
        let fused = try #require(plan.fusedSQL), scan = try #require(plan.fusedScanSQL)
        #expect(scan == fused.replacingOccurrences(of: "GROUP BY \"district\", \"gender\"", with: "GROUP BY +(\"district\"), +(\"gender\")"))
        #expect(fused.hasSuffix("ORDER BY \"n\" ASC, \"__key0\", \"__key1\""))
        #expect(scan != fused)
        for f in ["kaifang_units(0, id_number)", "kaifang_dominance(0, id_number, benefit_amount)"] {
            #expect(throws: SQLRefusal.self) { try checker.check("SELECT district, \(f) AS x FROM residents GROUP BY district") }
        }
    }
}
