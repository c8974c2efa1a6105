import Foundation
@testable import KaifangAPI
import Testing

/// The generated code follows the one spec in openapi/.
@Suite struct ContractTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theTargetReadsTheOneSpecInOpenapiFolder() throws {
        let inTarget = Self.repo.appendingPathComponent("Sources/KaifangAPI/openapi.yaml")
        let dest = try FileManager.default.destinationOfSymbolicLink(atPath: inTarget.path)
        #expect(dest == "../../openapi/openapi.yaml")
        let a = try Data(contentsOf: inTarget)
        let b = try Data(contentsOf: Self.repo.appendingPathComponent(APIContract.specPath))
        #expect(a == b && a.count > 1000)
    }

    @Test func problemsEncodeWithTheRFC9457Keys() throws {
        let p = Components.Schemas.Problem(_type: "about:blank", title: "Not Found", status: 404, detail: "no dataset", instance: "/v1/datasets/x")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(p)) as? [String: Any]
        #expect(Set(json?.keys.map { $0 } ?? []) == ["type", "title", "status", "detail", "instance"])
    }

    @Test func datasetSummariesUseSnakeCaseKeysOfTheSpec() throws {
        let s = Components.Schemas.DatasetSummary(id: "a", title: "A", department: "d", topic: "t", publishedVersion: 2, rowCount: 5, updateFrequency: "daily")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(s)) as? [String: Any]
        #expect(json?["published_version"] as? Int == 2)
        #expect(json?["row_count"] as? Int == 5)
        #expect(json?["update_frequency"] as? String == "daily")
    }

    @Test func theTiersAndLevelsOfTheSpecAreTheDesignsNames() {
        #expect(Components.Schemas.Tier.allCases.map(\.rawValue) == ["open", "conditional", "restricted"])
        #expect(Components.Schemas.Level.allCases.map(\.rawValue) == ["L1", "L2", "L3", "L4"])
    }
}
