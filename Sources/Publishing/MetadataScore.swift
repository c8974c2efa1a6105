import Foundation
import KaifangCore
import Storage

/// A dataset's metadata score, adapted from the EU data portal's Metadata Quality Assessment
/// (MQA): points per indicator in five dimensions, 405 at most, and the MQA's rating bands.
/// Each indicator and why it scores as it does here is in docs/quality.md.
public struct MetadataScore: Codable, Sendable, Equatable {
    public struct Indicator: Codable, Sendable, Equatable {
        public var dimension: String
        public var name: String
        public var points: Int
        public var max: Int
    }

    public var points: Int
    public var max: Int
    /// `excellent` (351–405), `good` (221–350), `sufficient` (121–220) or `bad` (0–120).
    public var rating: String
    public var indicators: [Indicator]

    /// Licenses from a known vocabulary (SPDX identifiers or their common spellings).
    static let knownLicenses: Set<String> = ["ccby40", "ccby30", "ccbysa40", "ccbysa30", "cc0", "cc010", "odbl", "odbl10", "pddl", "pddl10", "odcby", "odcby10"]

    static func normalizedLicense(_ text: String) -> String {
        String(text.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII })
    }

    /// The score of `record` as published now (an unpublished dataset has no access points).
    public static func of(_ record: DatasetRecord) -> MetadataScore {
        let m = record.manifest
        let published = record.isPublished
        let downloadable = published && (record.tier == .open || record.tier == .conditional)
        let license = m.license.trimmingCharacters(in: .whitespaces)
        let items: [(String, String, Bool, Int)] = [
            ("findability", "keywords (topic)", !m.topic.isEmpty, 30),
            ("findability", "categories (department)", !m.department.isEmpty, 30),
            ("findability", "spatial coverage", !(m.spatial ?? []).isEmpty, 20),
            ("findability", "temporal coverage", m.temporal != nil, 20),
            ("accessibility", "access URL answers", published, 50),
            ("accessibility", "download URL", downloadable, 20),
            ("accessibility", "download URL answers to anyone", published && record.tier == .open, 30),
            ("interoperability", "format", downloadable, 20),
            ("interoperability", "media type", downloadable, 10),
            ("interoperability", "format from a vocabulary", downloadable, 10),
            ("interoperability", "non-proprietary format", downloadable, 20),
            ("interoperability", "machine-readable format", downloadable, 20),
            ("interoperability", "DCAT-AP compliance", false, 30),
            ("reusability", "license", !license.isEmpty, 20),
            ("reusability", "license from a vocabulary", knownLicenses.contains(normalizedLicense(license)), 10),
            ("reusability", "access restrictions", published, 10),
            ("reusability", "access restrictions from a vocabulary", published, 5),
            ("reusability", "contact point", false, 20),
            ("reusability", "publisher", !m.department.isEmpty, 10),
            ("contextuality", "rights", published, 5),
            ("contextuality", "byte size", published, 5),
            ("contextuality", "date of issue", published, 5),
            ("contextuality", "modification date", published, 5),
        ]
        let indicators = items.map { Indicator(dimension: $0.0, name: $0.1, points: $0.2 ? $0.3 : 0, max: $0.3) }
        let points = indicators.map(\.points).reduce(0, +)
        let rating = points > 350 ? "excellent" : points > 220 ? "good" : points > 120 ? "sufficient" : "bad"
        return MetadataScore(points: points, max: indicators.map(\.max).reduce(0, +), rating: rating, indicators: indicators)
    }
}
