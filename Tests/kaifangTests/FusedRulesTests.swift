import Foundation
import KaifangCore
@testable import Sandbox
import Storage
import Testing

/// The rules' material computed in the query's own pass (`kaifang_units`, `kaifang_dominance`)
/// gives exactly what the separate passes give: the same released rows, the same suppressed
/// rows and cells, the same row sets byte for byte — on the sample data, for small cells,
/// dominated sums, no GROUP BY, HAVING with ORDER BY, and when a group's units overflow the
/// fused pass's bound.
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
            var dominated = 0, suppressed = 0
            for sql in Self.queries {
                let plan = try QueryChecker(tables: [table], mode: "aggregate").check(sql)
                let fusedSQL = try #require(plan.fusedSQL, "\(sql)")
                #expect(fusedSQL.contains("kaifang_units(0, ") && !fusedSQL.contains("COUNT(DISTINCT \"residents\".\"id_number\") AS \"__units"))
                var separate = plan
                separate.fusedSQL = nil
                let (a, aSets) = try run(plan, policy: policy)
                let (b, bSets) = try run(separate, policy: policy)
                let (c, cSets) = try run(plan, policy: policy, rowsPerGroup: 3)   // overflows: rule 6 by its own pass
                for (x, sets) in [(b, bSets), (c, cSets)] {
                    #expect(a.rows == x.rows, "\(sql)")
                    #expect(a.rowsSuppressed == x.rowsSuppressed && a.cellsSuppressed == x.cellsSuppressed, "\(sql)")
                    #expect(a.rowSetUnits == x.rowSetUnits && aSets == sets, "\(sql)")
                }
                #expect(a.rowSetUnits["residents"].map { $0 > 100 } == true)
                dominated += a.cellsSuppressed
                suppressed += a.rowsSuppressed
            }
            // The queries exercise both rules: small groups dropped, and (at 2 %) sums blanked.
            #expect(suppressed > 0)
            if share < 0.5 { #expect(dominated > 0) }
        }
        // dp mode: the row set collected from the per-unit rows; the same seeded release.
        let table = SandboxTable(manifest: record.manifest, version: version.number, path: try catalog.localFile(version), tier: .conditional, granted: nil, policy: .defaults)
        for sql in ["SELECT district, COUNT(*) AS n, AVG(benefit_amount) AS a FROM residents GROUP BY district",
                    "SELECT COUNT(*) AS n, SUM(benefit_amount) AS s FROM residents WHERE gender = '男'"] {
            let plan = try QueryChecker(tables: [table], mode: "dp").check(sql)
            #expect(plan.fusedSQL?.contains("kaifang_units(0, \"__unit\")") == true)
            var separate = plan
            separate.fusedSQL = nil
            let (a, aSets) = try run(plan, policy: .defaults)
            let (b, bSets) = try run(separate, policy: .defaults)
            #expect(a.rows == b.rows && a.rowSetUnits == b.rowSetUnits && aSets == bSets, "\(sql)")
            #expect(!a.rows.isEmpty)
        }
    }

    @Test func aLimitKeepsTheSeparatePassesAndTheRunnersFunctionsAreNotForJobs() throws {
        let manifest = try DatasetManifest.load(path: "datasets/residents/dataset.json")
        let table = SandboxTable(manifest: manifest, version: 1, path: "/data/residents.sqlite", tier: .conditional, granted: nil, policy: .defaults)
        let checker = QueryChecker(tables: [table], mode: "aggregate")
        #expect(try checker.check("SELECT district, COUNT(*) AS n FROM residents GROUP BY district ORDER BY n DESC LIMIT 3").fusedSQL == nil)
        for f in ["kaifang_units(0, id_number)", "kaifang_dominance(0, id_number, benefit_amount)"] {
            #expect(throws: SQLRefusal.self) { try checker.check("SELECT district, \(f) AS x FROM residents GROUP BY district") }
        }
    }
}
