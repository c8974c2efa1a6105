import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Publishing
import Storage

/// Atom feeds (RFC 4287) of publications and withdrawals: the catalog's and each dataset's.
extension APIHandler {
    static let feedLength = 50

    func getCatalogFeed(_ input: Operations.GetCatalogFeed.Input) async throws -> Operations.GetCatalogFeed.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let events = try catalog.datasetEvents(dataset: nil, limit: Self.feedLength)
        let xml = try atom(events, title: "开放 Kaifang — 数据发布 Publications", path: "/v1/feed.atom", alternate: "/datasets", baseURL: caller.baseURL)
        return .ok(.init(body: .applicationAtomXml(HTTPBody(xml))))
    }

    func getDatasetFeed(_ input: Operations.GetDatasetFeed.Input) async throws -> Operations.GetDatasetFeed.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let id = input.path.id
        // A dataset that was never published has no public feed (nor any entry in one).
        let events = try catalog.datasetEvents(dataset: id, limit: Self.feedLength)
        guard !events.isEmpty, let d = try catalog.dataset(id) else {
            throw Problem(status: .notFound, detail: "no published dataset '\(id)': GET /v1/datasets lists them; GET /v1/feed.atom follows the whole catalog")
        }
        let xml = try atom(events, title: "\(d.manifest.title) — 开放 Kaifang", path: "/v1/datasets/\(id)/feed.atom", alternate: "/datasets/\(id)", baseURL: caller.baseURL)
        return .ok(.init(body: .applicationAtomXml(HTTPBody(xml))))
    }

    /// The feed document for `events` (newest first).
    func atom(_ events: [DatasetEvent], title: String, path: String, alternate: String, baseURL: String) throws -> String {
        var titles: [String: String] = [:]
        func datasetTitle(_ id: String) throws -> String {
            if let t = titles[id] { return t }
            let t = try catalog.dataset(id)?.manifest.title ?? id
            titles[id] = t
            return t
        }
        var out = """
            <?xml version="1.0" encoding="utf-8"?>
            <feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">
            <id>\(Self.xml(baseURL + path))</id>
            <title>\(Self.xml(title))</title>
            <updated>\(Self.xml(events.first?.at ?? AuditTime.now()))</updated>
            <author><name>开放 Kaifang</name></author>
            <generator version="\(version)">Kaifang</generator>
            <link rel="self" type="application/atom+xml" href="\(Self.xml(baseURL + path))"/>
            <link rel="alternate" type="text/html" href="\(Self.xml(baseURL + alternate))"/>

            """
        for e in events {
            let name = try datasetTitle(e.dataset)
            let api = "\(baseURL)/v1/datasets/\(e.dataset)"
            var heading: String, summary: String
            if e.kind == "published", let n = e.version {
                heading = "\(name)：第 \(n) 版发布（\(Self.tierName(e.tier))）— version \(n) published"
                let rows = try catalog.version(e.dataset, n)?.rowCount
                summary = rows.map { "\($0) 行 rows." } ?? ""
                if let json = try catalog.versionChanges(e.dataset, n), let diff = try? JSONDecoder().decode(VersionDiff.self, from: Data(json.utf8)) {
                    summary += " 较第 \(diff.base) 版 since version \(diff.base): +\(diff.added) −\(diff.removed) ~\(diff.changed)."
                }
            } else {
                heading = "\(name)：已撤回 — withdrawn"
                summary = "不再开放。No longer published."
            }
            out += """
                <entry>
                <id>tag:kaifang,2026:dataset-event/\(e.seq)</id>
                <title>\(Self.xml(heading))</title>
                <updated>\(Self.xml(e.at))</updated>
                <link rel="alternate" type="text/html" href="\(Self.xml("\(baseURL)/datasets/\(e.dataset)"))"/>
                <link rel="related" type="application/json" href="\(Self.xml(api))"/>
                <category term="\(Self.xml(e.dataset))"/>
                <summary>\(Self.xml(summary))</summary>
                </entry>

                """
        }
        out += "</feed>\n"
        return out
    }

    static func tierName(_ tier: Tier?) -> String {
        switch tier {
        case .open?: "无条件开放 open"
        case .conditional?: "有条件开放 conditional"
        case .restricted?: "不予开放 restricted"
        case nil: "-"
        }
    }

    /// Text escaped for XML content and attribute values.
    static func xml(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            // XML 1.0 allows no control character but tab, newline and carriage return.
            case _ where c.value < 0x20 && c != "\t" && c != "\n" && c != "\r": out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
