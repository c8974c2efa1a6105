import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import KaifangCore
import KaifangServer
import Publishing
import Storage
import Testing

/// The Atom feeds: well-formed, newest first, one entry per publication or withdrawal.
@Suite struct FeedTests {
    /// The entries of an Atom document: (id, title, summary), in order; nil when it does not parse.
    final class Atom: NSObject, XMLParserDelegate {
        var entries: [(id: String, title: String, summary: String)] = []
        private var current: [String: String]?
        private var text = ""

        static func parse(_ data: Data) -> [(id: String, title: String, summary: String)]? {
            let p = XMLParser(data: data)
            let atom = Atom()
            p.delegate = atom
            return p.parse() ? atom.entries : nil
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            if name == "entry" { current = [:] }
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "entry", let c = current {
                entries.append((c["id"] ?? "", c["title"] ?? "", c["summary"] ?? ""))
                current = nil
            } else if current != nil, ["id", "title", "summary"].contains(name) {
                current?[name] = text
            }
        }
    }

    @Test func publicationsAndWithdrawalsAreFollowedInAtom() async throws {
        try await LiveServer.with { s in
            let first = try await s.get("/v1/feed.atom")
            #expect(first.status == 200 && first.headers["content-type"]?.hasPrefix("application/atom+xml") == true)
            let initial = try #require(Atom.parse(first.body))
            #expect(initial.count == 3 && Set(initial.map(\.id)).count == 3)
            #expect(initial.allSatisfy { $0.title.contains("version 1 published") })

            // A second version of enterprises, published; residents withdrawn.
            _ = try VersionChangesTests.secondVersion(s)
            try s.catalog.publish(dataset: "enterprises", version: 2, tier: .open, actor: "t")
            try s.catalog.withdraw(dataset: "residents", actor: "t")
            let after = try #require(Atom.parse(try await s.get("/v1/feed.atom").body))
            #expect(after.count == 5)
            #expect(after[0].title.contains("withdrawn") && after[0].title.contains("居民服务记录"))
            #expect(after[1].title.contains("version 2 published") && after[1].summary.contains("+1 −10 ~10"), "\(after[1])")
            #expect(Array(after.suffix(3).map(\.id)) == initial.map(\.id))

            let one = try await s.get("/v1/datasets/enterprises/feed.atom")
            let entries = try #require(Atom.parse(one.body))
            #expect(entries.count == 2 && entries.allSatisfy { $0.title.hasPrefix("企业登记信息") })
            #expect(entries.map(\.id) == [after[1].id, try #require(initial.first { $0.title.hasPrefix("企业登记信息") }).id])
            // A withdrawn dataset keeps its feed (its followers learn of the withdrawal); one never published has none.
            #expect(try await s.get("/v1/datasets/residents/feed.atom").status == 200)
            let missing = try await s.get("/v1/datasets/nope/feed.atom")
            #expect(missing.status == 404 && missing.headers["content-type"]?.hasPrefix("application/problem+json") == true)
        }
    }

    @Test func markupInATitleIsEscaped() async throws {
        try await LiveServer.with(loadSamples: false) { s in
            let m = DatasetManifest(id: "odd", title: "A <b>&amp;</b> \"quoted\" 数据 & more", fields: [FieldSpec(name: "a", type: .integer, level: .L1)])
            let path = (s.dataDir as NSString).appendingPathComponent("odd.csv")
            try "a\n1\n".write(toFile: path, atomically: true, encoding: .utf8)
            _ = try Publisher(catalog: s.catalog).importCSV(path: path, datasetID: "odd", manifest: m, actor: "t")
            try s.catalog.publish(dataset: "odd", tier: .open, actor: "t")
            let r = try await s.get("/v1/datasets/odd/feed.atom")
            let entries = try #require(Atom.parse(r.body))
            #expect(entries.count == 1 && entries[0].title.hasPrefix(m.title))
            #expect(!r.text.contains("<b>"))
        }
    }
}
