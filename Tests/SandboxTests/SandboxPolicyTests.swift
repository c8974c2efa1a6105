import Foundation
import KaifangCore
import Sandbox
import Testing

@Suite struct SandboxPolicyTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theCommittedDefaultPolicyIsTheDesignsDefaults() throws {
        let data = try Data(contentsOf: Self.repo.appendingPathComponent("sandbox/policy.json"))
        #expect(try SandboxPolicy.decode(data, source: "policy.json") == .defaults)
    }

    @Test func omittedKeysKeepTheDefaults() throws {
        let p = try SandboxPolicy.decode(Data(#"{"min_units_per_row": 20}"#.utf8), source: "p")
        #expect(p.minUnitsPerRow == 20)
        #expect(p.dominanceShare == 0.9 && p.maxOutputRows == 5000)
    }

    @Test func unknownKeysAndBadValuesAreRefusedByName() {
        #expect(throws: KaifangError.self) { try SandboxPolicy.decode(Data(#"{"min_units": 5}"#.utf8), source: "p") }
        do { _ = try SandboxPolicy.decode(Data(#"{"dominance_share": 1.5}"#.utf8), source: "p"); Issue.record("accepted") } catch let e as KaifangError {
            #expect(e.message.contains("'dominance_share' must be in (0, 1]"))
        } catch { Issue.record("\(error)") }
        #expect(throws: KaifangError.self) { try SandboxPolicy.decode(Data(#"{"min_units_per_row": true}"#.utf8), source: "p") }
    }

    @Test func theStrictestOfTwoPoliciesTakesEachStricterValue() throws {
        let a = try SandboxPolicy.decode(Data(#"{"min_units_per_row": 20, "dominance_share": 0.95, "max_output_rows": 100}"#.utf8), source: "a")
        let b = try SandboxPolicy.decode(Data(#"{"min_units_per_row": 15, "dominance_share": 0.8, "round_counts_to": 5, "monthly_epsilon": 4, "max_epsilon_per_query": 0.5}"#.utf8), source: "b")
        let s = a.strictest(b)
        #expect(s.minUnitsPerRow == 20 && s.dominanceShare == 0.8 && s.maxOutputRows == 100 && s.roundCountsTo == 5)
        #expect(s.monthlyEpsilon == 4 && s.maxEpsilonPerQuery == 0.5)
        #expect(s == b.strictest(a))
    }
}
