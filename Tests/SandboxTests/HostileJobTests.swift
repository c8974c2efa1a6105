import Foundation
import KaifangCore
@testable import Sandbox
import Testing

/// The static wall: every job in `sandbox/hostile-jobs.json` is refused with the rule it breaks,
/// and the legitimate examples in `sandbox/examples/` pass.
@Suite struct HostileJobTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func table(_ id: String, tier: Tier) throws -> SandboxTable {
        let data = try Data(contentsOf: repo.appendingPathComponent("datasets/\(id)/dataset.json"))
        let m = try JSONDecoder().decode(DatasetManifest.self, from: data)
        return SandboxTable(manifest: m, version: 1, path: "/data/\(id).sqlite", tier: tier, granted: nil, policy: .defaults)
    }

    static var tables: [SandboxTable] {
        get throws { [try table("residents", tier: .conditional), try table("enterprises", tier: .open), try table("air-quality", tier: .open)] }
    }

    struct Hostile: Decodable { var name: String; var rule: String; var sql: String; var mode: String? }
    struct File: Decodable { var jobs: [Hostile] }

    static var hostile: [Hostile] {
        (try? JSONDecoder().decode(File.self, from: Data(contentsOf: repo.appendingPathComponent("sandbox/hostile-jobs.json"))).jobs) ?? []
    }

    @Test func theSuiteHasAtLeastFortyJobs() {
        #expect(Self.hostile.count >= 40)
    }

    @Test(arguments: hostile.map(\.name))
    func hostileJobIsRefusedWithItsRule(_ name: String) throws {
        let job = Self.hostile.first { $0.name == name }!
        let checker = QueryChecker(tables: try Self.tables, mode: job.mode ?? "aggregate")
        do {
            let plan = try checker.check(job.sql)
            Issue.record("'\(name)' was accepted; it ran as: \(plan.sql)")
        } catch {
            #expect(error.rule == job.rule, "'\(name)': \(error)")
            #expect(error.position != nil, "'\(name)' refusal names no position: \(error)")
        }
    }

    @Test(arguments: ["count-by-district", "benefit-by-age-band", "enterprises-by-industry"])
    func exampleJobsPass(_ name: String) throws {
        let sql = try String(contentsOf: Self.repo.appendingPathComponent("sandbox/examples/\(name).sql"), encoding: .utf8)
        let plan = try QueryChecker(tables: try Self.tables, mode: "aggregate").check(sql)
        #expect(!plan.sql.isEmpty)
    }

    @Test func theDPExamplePassesInDPMode() throws {
        let sql = try String(contentsOf: Self.repo.appendingPathComponent("sandbox/examples/dp-count-by-district.sql"), encoding: .utf8)
        let plan = try QueryChecker(tables: try Self.tables, mode: "dp").check(sql)
        #expect(plan.mode == .dp)
        #expect(plan.dpColumns == [.group(0), .count, .avg(0, lower: 0, upper: 100_000)])
    }

    @Test func refusalsSayWhereOnWhichLine() throws {
        let sql = "SELECT district,\n       COUNT(*)\nFROM residents\nWHERE district = '姑苏区' OR gender = '女'\nGROUP BY district"
        let checker = QueryChecker(tables: try Self.tables, mode: "aggregate")
        do {
            _ = try checker.check(sql)
            Issue.record("accepted")
        } catch {
            #expect(error.rule == "rule-4")
            #expect(error.position == SQLPosition(line: 4, column: 24))
        }
    }

    @Test func theAggregateRewriteCountsUnitsAndKeepsGroupKeys() throws {
        let plan = try QueryChecker(tables: try Self.tables, mode: "aggregate")
            .check("SELECT district, COUNT(*) AS n, SUM(benefit_amount) FROM residents WHERE gender = '女' GROUP BY district")
        #expect(plan.mode == .aggregate)
        #expect(plan.hiddenGroupKeys == 1)
        #expect(plan.unitDatasets == ["residents"])
        #expect(plan.sql.contains("COUNT(DISTINCT \"residents\".\"id_number\") AS \"__units_residents\""))
        #expect(plan.dominance.count == 1 && plan.dominance[0].columns == [2])
        #expect(plan.countColumns == [1])
        #expect(plan.rowSetSQL["residents"]?.contains("WHERE (\"gender\" = '女')") == true)
    }

    @Test func identifiersMayBeCountedDistinctAndJoinedOn() throws {
        let checker = QueryChecker(tables: try Self.tables, mode: "aggregate")
        _ = try checker.check("SELECT district, COUNT(DISTINCT id_number) FROM residents GROUP BY district")
        _ = try checker.check("SELECT r.district, COUNT(*) FROM residents r JOIN enterprises e ON r.district = e.district GROUP BY r.district")
    }

    @Test func hyphenatedIdsMayBeQuotedOrUnderscored() throws {
        let checker = QueryChecker(tables: try Self.tables, mode: "aggregate")
        let a = try checker.check("SELECT station, AVG(pm25) FROM \"air-quality\" GROUP BY station")
        let b = try checker.check("SELECT station, AVG(pm25) FROM air_quality GROUP BY station")
        #expect(a.mode == .rows && b.mode == .rows)
    }

    @Test func ungrantedFieldsDoNotExist() throws {
        var t = try Self.table("residents", tier: .conditional)
        t.granted = ["district", "benefit_amount"]
        let checker = QueryChecker(tables: [t], mode: "aggregate")
        do {
            _ = try checker.check("SELECT gender, COUNT(*) FROM residents GROUP BY gender")
            Issue.record("accepted")
        } catch {
            #expect(error.rule == "column")
            #expect(error.message.contains("district") && !error.message.contains("gender,"))
        }
    }

    @Test func theLexerRefusesEveryNonASCIICharacterOutsideStrings() throws {
        let checker = QueryChecker(tables: try Self.tables, mode: "aggregate")
        _ = try checker.check("SELECT COUNT(*) FROM residents WHERE district = '姑苏区'")
        for trick in ["\u{00A0}", "\u{FEFF}", "\u{3000}", "\u{FF0A}", "\u{2028}"] {
            #expect(throws: SQLRefusal.self) { try checker.check("SELECT COUNT(\(trick)*) FROM residents") }
        }
    }

    @Test func deepNestingIsRefusedNotACrash() throws {
        let sql = "SELECT " + String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500) + " FROM enterprises"
        let checker = QueryChecker(tables: try Self.tables, mode: "aggregate")
        #expect(throws: SQLRefusal.self) { try checker.check(sql) }
    }

    /// Depth is the tree's, however the query is written: a chain of operators without
    /// parentheses is as deep as its printed form `((a - b) - c)`, so an accepted query always
    /// parses again from the text the sandbox runs, and a long chain, or a run of signs or NOTs,
    /// is refused by the same rule rather than exhausting a recursion.
    @Test func aChainIsAsDeepAsItsParenthesisedForm() throws {
        let checker = QueryChecker(tables: try Self.tables, mode: "aggregate")
        let limit = SQLParser.maxTreeDepth
        func chain(_ n: Int) -> String {
            "SELECT station, COUNT(*) AS n, SUM(aqi" + String(repeating: " - 1", count: n) + ") AS s FROM \"air-quality\" GROUP BY station"
        }
        // The query, SUM, n subtractions and the column aqi: n + 3 levels.
        let fits = limit - 3
        let plan = try checker.check(chain(fits))
        let printed = SQLPrinter(tableName: SQLPrinter.quote).query(try SQLParser.parse(chain(fits)))
        #expect(printed.contains(String(repeating: "(", count: fits)))
        #expect(try checker.check(printed) == plan)
        do {
            _ = try checker.check(chain(fits + 1))
            Issue.record("a chain one level too deep was accepted")
        } catch {
            #expect(error.rule == "syntax" && error.message.contains("more than \(limit) levels"), "\(error)")
        }
        for deep in ["SELECT COUNT(*) FROM enterprises WHERE " + String(repeating: "NOT ", count: 5000) + "1",
                     "SELECT " + String(repeating: "- ", count: 5000) + "x FROM enterprises",
                     "SELECT COUNT(*) FROM enterprises WHERE 1" + String(repeating: " OR 1", count: 5000)] {
            #expect(throws: SQLRefusal.self) { try checker.check(deep) }
        }
    }

    /// A quote followed by a combining mark is one Character but two scalars: the printer
    /// doubles it scalar by scalar, or the text SQLite runs would end the literal early and
    /// read the rest as SQL (found by the sql fuzzer).
    @Test func aQuoteBeforeACombiningMarkIsEscapedInWhatRuns() throws {
        let checker = QueryChecker(tables: try Self.tables, mode: "aggregate")
        let sql = "SELECT station, COUNT(*) AS n FROM \"air-quality\" WHERE station = 'x''\u{301} OR 1 = 1' GROUP BY station"
        let plan = try checker.check(sql)
        let ran = Array(plan.sql.unicodeScalars), literal = Array("'x''\u{301} OR 1 = 1'".unicodeScalars)
        #expect(ran.indices.contains { i in ran[i...].starts(with: literal) }, "the literal as the sandbox runs it: \(plan.sql)")
        #expect(SQLPrinter.literal(.string("x'\u{301}")).unicodeScalars.map(\.value) == [0x27, 0x78, 0x27, 0x27, 0x301, 0x27])
        #expect(SQLPrinter.quote("a\"\u{301}").unicodeScalars.map(\.value) == [0x22, 0x61, 0x22, 0x22, 0x301, 0x22])
        let printed = SQLPrinter(tableName: SQLPrinter.quote).query(try SQLParser.parse(sql))
        #expect(try checker.check(printed) == plan)
    }
}
