import Foundation
import KaifangCore
@testable import Publishing
import Storage
import Testing

/// Each version's quality report, computed at import: the figures of a small file counted by
/// hand, served through the API to whom it may be, and the distinct counter's two regimes.
@Suite struct QualityTests {
    static let manifest = DatasetManifest(id: "permits", title: "许可 permits", updateFrequency: "weekly", fields: [
        FieldSpec(name: "permit", type: .string, level: .L1),
        FieldSpec(name: "district", type: .string, level: .L1),
        FieldSpec(name: "area", type: .number, level: .L1, min: 0, max: 1000),
        FieldSpec(name: "issued", type: .date, level: .L1),
    ], primaryKey: ["permit"])

    /// Eight lines: one refused (area out of range), one refused twice over (area not a number,
    /// issued not a date); of the six kept, P2 appears three times and P5 twice.
    static let csv = """
        permit,district,area,issued
        P1,玄武区,10,2026-01-02
        P2,玄武区,,2026-01-03
        P2,秦淮区,12.5,
        P3,秦淮区,5000,2026-01-04
        P2,,12.5,2026-01-05
        P4,鼓楼区,abc,2026-13-01
        P5,鼓楼区,7,2026-01-06
        P5,鼓楼区,7,2026-01-06

        """

    @Test func theFiguresOfASmallFileAreTheOnesCountedByHand() async throws {
        try await LiveServer.with { s in
            let path = try VersionChangesTests.write(Self.csv, s.dataDir, "permits.csv")
            let outcome = try Publisher(catalog: s.catalog).importCSV(path: path, datasetID: "permits", manifest: Self.manifest, onError: .skip, actor: "t")
            #expect(outcome.rejected == 2)
            let r = try QualityReport.of("permits", 1, catalog: s.catalog)
            #expect(r.stats.rows == 6 && r.stats.fields == 4 && r.stats.rejectedRows == 2 && !r.valid)
            func field(_ n: String) throws -> QualityReport.Field { try #require(r.fields.first { $0.name == n }) }
            // permit: P1 P2 P2 P2 P5 P5 → 6 present, 3 distinct.
            #expect(try field("permit").present == 6 && field("permit").distinct == 3 && field("permit").distinctExact)
            // district: one empty → 5 present; 玄武区 秦淮区 鼓楼区 → 3 distinct.
            #expect(try field("district").present == 5 && field("district").distinct == 3 && abs(field("district").completeness - 5.0 / 6) < 1e-12)
            // area: one empty → 5 present: 10, 12.5, 12.5, 7, 7 → 3 distinct; refused in 2 rows.
            #expect(try field("area").present == 5 && field("area").distinct == 3 && field("area").refused == 2)
            // issued: one empty → 5 present, 4 distinct (2026-01-06 twice); refused once.
            #expect(try field("issued").present == 5 && field("issued").distinct == 4 && field("issued").refused == 1)
            #expect(try field("permit").refused == 0)
            #expect(r.primaryKey == .init(fields: ["permit"], duplicateKeys: 2, duplicateRows: 3))

            // The published version's report is public; an unpublished one is for stewards.
            #expect(try await s.get("/v1/datasets/permits/versions/1/quality").status == 404)
            let (_, steward) = try s.catalog.createKey(role: .steward, name: "s", actor: "t")
            let seen = try await s.get("/v1/datasets/permits/versions/1/quality", key: steward)
            #expect(seen.status == 200 && (seen.object["primary_key"] as? [String: Any])?["duplicate_rows"] as? Int == 3)
            try s.catalog.publish(dataset: "permits", version: 1, tier: .open, actor: "t")
            let open = try await s.get("/v1/datasets/permits/versions/1/quality")
            #expect(open.status == 200 && open.object["valid"] as? Bool == false)
            let fields = try #require(open.object["fields"] as? [[String: Any]])
            #expect(fields.map { $0["name"] as? String } == ["permit", "district", "area", "issued"])
            #expect(fields[2]["refused"] as? Int == 2 && fields[1]["present"] as? Int == 5)
            #expect(!open.text.contains("玄武区"), "counts only, never a value")
            #expect(try await s.get("/v1/datasets/permits/versions/2/quality").status == 404)
            let page = try await s.get("/datasets/permits")
            #expect(page.text.contains("mean completeness") && page.text.contains("/v1/datasets/permits/versions/1/quality"))
            #expect(page.text.contains("rows with a repeated key</span> 3"))

            // The version file read back gives the figures gathered during the import (a version
            // made before reports were kept is profiled from its file the same way).
            let kept = try QualityReport.of("enterprises", 1, catalog: s.catalog)
            var fromFile = try QualityReport.profile("enterprises", 1, catalog: s.catalog)
            #expect(kept.stats.rows == 1000 && kept.stats.rejectedRows == 0 && fromFile.stats.rejectedRows == nil)
            fromFile.stats.rejectedRows = 0
            for i in fromFile.fields.indices { fromFile.fields[i].refused = 0 }
            #expect(fromFile == kept)
        }
    }

    /// Exact up to 65 536 distinct values; beyond, the HyperLogLog estimate is within 2 %.
    @Test func distinctCountsAreExactThenEstimated() {
        var small = DistinctCounter(), big = DistinctCounter()
        for i in 0..<DistinctCounter.exactLimit {
            small.add(CountingHash.of(.integer(Int64(i % 1000))))
        }
        #expect(small.isExact && small.count == 1000)
        // Hash 0 (no table slot) and runs of one value count once each.
        var edges = DistinctCounter()
        for h: UInt64 in [0, 0, 7, 7, 7, 0, 1 << 63, 7, 0] { edges.add(h) }
        #expect(edges.isExact && edges.count == 3)
        for i in 0..<300_000 {
            big.add(CountingHash.of(.text("户籍地址 \(i)")))
            if i == DistinctCounter.exactLimit - 1 { #expect(big.isExact && big.count == DistinctCounter.exactLimit) }
        }
        #expect(!big.isExact && abs(Double(big.count) - 300_000) / 300_000 < 0.02, "\(big.count)")
    }

    /// The metadata score of the samples, counted by hand from docs/quality.md's table.
    @Test func theMetadataScoreIsCountedIndicatorByIndicator() async throws {
        try await LiveServer.with { s in
            // enterprises, open, CC BY 4.0, topic, department, spatial and temporal coverage:
            // findability 30+30+20+20, accessibility 50+20+30, interoperability 20+10+10+20+20,
            // reusability 20+10+10+5+10, contextuality 4×5.
            let open = try await s.get("/v1/datasets/enterprises").object["metadata_score"] as? [String: Any]
            #expect(open?["points"] as? Int == 100 + 100 + 80 + 55 + 20 && open?["max"] as? Int == 405 && open?["rating"] as? String == "excellent")
            // residents, conditional, a license in words: no anonymous download (−30), no license vocabulary (−10).
            let conditional = try await s.get("/v1/datasets/residents").object["metadata_score"] as? [String: Any]
            #expect(conditional?["points"] as? Int == 355 - 30 - 10 && conditional?["rating"] as? String == "good")
            let indicators = try #require(conditional?["indicators"] as? [[String: Any]])
            #expect(indicators.count == 23 && indicators.map { $0["max"] as? Int ?? 0 }.reduce(0, +) == 405)
            // Withdrawn: only what the manifest says is left (topic, department, coverage, license, publisher).
            try s.catalog.withdraw(dataset: "enterprises", actor: "t")
            let record = try #require(try s.catalog.dataset("enterprises"))
            let score = MetadataScore.of(record)
            #expect(score.points == 30 + 30 + 20 + 20 + 20 + 10 + 10 && score.rating == "sufficient")
            var bare = record
            bare.manifest.spatial = nil
            bare.manifest.temporal = nil
            #expect(MetadataScore.of(bare).points == score.points - 40)
            #expect(try await s.get("/datasets/residents").text.contains("315 / 405 (good)"))
        }
    }
}
