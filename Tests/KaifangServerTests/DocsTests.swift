import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The curl examples of docs/api-guide.md, run in order against a live server: each answers
/// the status its `# →` comment promises.
@Suite struct DocsTests {
    struct Example {
        let line: String
        let url: String
        let headers: [(String, String)]
        let body: String?
        let expected: Int
    }

    static func examples() throws -> [Example] {
        let text = try String(contentsOf: LiveServer.repo.appendingPathComponent("docs/api-guide.md"), encoding: .utf8)
        var joined: [String] = []
        var current = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if current.isEmpty && !line.hasPrefix("curl ") { continue }
            if line.hasSuffix("\\") { current += line.dropLast() + " "; continue }
            current += line
            joined.append(current)
            current = ""
        }
        return joined.compactMap { line in
            guard let arrow = line.range(of: "# → "), let status = Int(line[arrow.upperBound...].prefix(3)) else { return nil }
            let command = String(line[..<arrow.lowerBound])
            // Single- and double-quoted arguments.
            var args: [String] = []
            var i = command.startIndex
            while i < command.endIndex {
                let c = command[i]
                if c == "'" || c == "\"" {
                    let close = command[command.index(after: i)...].firstIndex(of: c)!
                    args.append(String(command[command.index(after: i)..<close]))
                    i = command.index(after: close)
                } else if c == " " {
                    i = command.index(after: i)
                } else {
                    let end = command[i...].firstIndex(of: " ") ?? command.endIndex
                    args.append(String(command[i..<end]))
                    i = end
                }
            }
            var headers: [(String, String)] = []
            var body: String?
            var url = ""
            var query: [String] = []
            var k = 1
            while k < args.count {
                if args[k] == "-G" { k += 1; continue }
                if args[k] == "--data-urlencode" {
                    let kv = args[k + 1].split(separator: "=", maxSplits: 1).map(String.init)
                    let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~,"))
                    query.append(kv[0] + "=" + (kv[1].addingPercentEncoding(withAllowedCharacters: allowed) ?? kv[1]))
                    k += 2
                    continue
                }
                if args[k] == "-H" { let h = args[k + 1].split(separator: ":", maxSplits: 1); headers.append((String(h[0]), h[1].trimmingCharacters(in: .whitespaces))); k += 2 }
                else if args[k] == "-d" { body = args[k + 1]; k += 2 }
                else { url = args[k]; k += 1 }
            }
            if !query.isEmpty { url += (url.contains("?") ? "&" : "?") + query.joined(separator: "&") }
            return Example(line: line, url: url, headers: headers, body: body, expected: status)
        }
    }

    @Test func everyCurlExampleAnswersWhatTheGuideSays() async throws {
        let examples = try Self.examples()
        #expect(examples.count >= 15)
        try await LiveServer.with { s in
            let (_, key) = try s.catalog.createKey(role: .developer, name: "docs", actor: "test")
            // $MYKEY: a key of a signed-up account.
            let (_, _, mine) = try s.catalog.createAccount(email: "docs@example.org", name: "docs", organisation: "", tier: nil, keyName: "docs", actor: "test")
            for e in examples {
                let url = e.url.replacingOccurrences(of: "http://127.0.0.1:8080", with: "http://127.0.0.1:\(s.port)")
                // The guide's URLs must be ASCII: a raw non-ASCII value is refused by the HTTP parser.
                let ascii = url.unicodeScalars.allSatisfy { $0.isASCII }
                #expect(ascii, "\(e.line)")
                var req = URLRequest(url: URL(string: url)!)
                for (k, v) in e.headers { req.setValue(v.replacingOccurrences(of: "$KEY", with: key).replacingOccurrences(of: "$MYKEY", with: mine), forHTTPHeaderField: k) }
                if let body = e.body { req.httpMethod = "POST"; req.httpBody = Data(body.utf8) }
                let (_, response) = try await URLSession.shared.data(for: req)
                #expect((response as! HTTPURLResponse).statusCode == e.expected, "\(e.line)")
            }
        }
    }
}
