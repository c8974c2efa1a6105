import Foundation
import KaifangCore
import Testing

/// Freshness at the boundaries of every frequency, with the clock given; and the thresholds
/// the policy documentation states are the ones applied.
@Suite struct FreshnessTests {
    static let made = Date(timeIntervalSince1970: 1_796_000_000)

    @Test(arguments: UpdateFrequency.allCases)
    func eachStateBeginsExactlyAtItsThreshold(_ f: UpdateFrequency) throws {
        func at(_ age: Double) -> Freshness { Freshness.of(frequency: f.rawValue, updatedAt: Self.made, now: Self.made.addingTimeInterval(age)) }
        guard let t = f.thresholds else {
            #expect(at(0) == .unscheduled && at(1e9) == .unscheduled)
            #expect(Freshness.nextDue(frequency: f.rawValue, updatedAt: Self.made) == nil)
            return
        }
        #expect(t.due < t.overdue && t.overdue < t.delinquent)
        let ms = 0.001
        #expect(at(0) == .fresh && at(t.due - ms) == .fresh)
        #expect(at(t.due) == .due && at(t.overdue - ms) == .due)
        #expect(at(t.overdue) == .overdue && at(t.delinquent - ms) == .overdue)
        #expect(at(t.delinquent) == .delinquent && at(t.delinquent * 10) == .delinquent)
        #expect(Freshness.nextDue(frequency: f.rawValue, updatedAt: Self.made) == Self.made.addingTimeInterval(t.due))
    }

    @Test func anUnknownFrequencyPromisesNothingAndAManifestRefusesIt() throws {
        #expect(Freshness.of(frequency: "fortnightly", updatedAt: Self.made, now: Self.made.addingTimeInterval(1e9)) == .unscheduled)
        var m = DatasetManifest(id: "d", title: "t", updateFrequency: "fortnightly", fields: [FieldSpec(name: "a", type: .string, level: .L1)])
        #expect { try m.validate() } throws: { ($0 as? KaifangError)?.message.contains("update_frequency 'fortnightly' is not one of hourly, daily") == true }
        m.updateFrequency = "weekly"
        try m.validate()
    }

    /// docs/quality.md states the thresholds in a table (`| frequency | due | overdue | delinquent |`).
    @Test func theDocumentedThresholdsAreTheOnesApplied() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: repo.appendingPathComponent("docs/quality.md"), encoding: .utf8)
        func seconds(_ cell: String) -> Double? {
            let parts = cell.trimmingCharacters(in: .whitespaces).split(separator: " ")
            guard parts.count == 2, let n = Double(parts[0]) else { return nil }
            return parts[1].hasPrefix("hour") ? n * 3600 : parts[1].hasPrefix("day") ? n * 86_400 : nil
        }
        var documented: [String: (Double, Double, Double)] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, let d = seconds(cells[1]), let o = seconds(cells[2]), let x = seconds(cells[3]) else { continue }
            documented[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = (d, o, x)
        }
        for f in UpdateFrequency.allCases {
            guard let t = f.thresholds else { continue }
            let doc = try #require(documented[f.rawValue], "docs/quality.md has no row for \(f.rawValue)")
            #expect(doc == (t.due, t.overdue, t.delinquent), "\(f.rawValue)")
        }
    }
}
