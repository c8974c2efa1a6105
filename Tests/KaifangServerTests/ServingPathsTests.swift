import Foundation
import KaifangServer
import Storage
import Testing

/// Every path that serves a dataset's values — the rows API, the API's CSV and JSON Lines
/// exports, `kaifang dataset export`, `kaifang mask` on the source file, the portal's preview
/// and the synthetic rows — gives one caller the same columns, and the same values byte for
/// byte, because all of them compile their plan in one place (`ServingPlan`).
@Suite struct ServingPathsTests {
    /// Runs the built `kaifang` against the server's data directory.
    static func cli(_ args: [String], server s: LiveServer) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = SandboxAPITests.kaifang
        p.arguments = args + ["--data-dir", s.dataDir] + TestStore.arguments(for: s.catalog)
        p.currentDirectoryURL = LiveServer.repo
        var env = ProcessInfo.processInfo.environment
        env["KAIFANG_DATA_DIR"] = nil
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// RFC 4180 records of a CSV text (quotes, doubled quotes, embedded commas and newlines).
    static func csvRecords(_ text: String) -> [[String]] {
        var records: [[String]] = [], record: [String] = [], field = "", quoted = false, afterQuote = false
        var it = text.makeIterator()
        while let c = it.next() {
            if quoted {
                if c == "\"" { quoted = false; afterQuote = true } else { field.append(c) }
                continue
            }
            switch c {
            case "\"": if afterQuote { field.append("\"") }; quoted = true; afterQuote = false
            case ",": record.append(field); field = ""; afterQuote = false
            case "\n": record.append(field); records.append(record); record = []; field = ""; afterQuote = false
            default: field.append(c); afterQuote = false
            }
        }
        if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
        return records
    }

    /// A JSON value as the CSV cell it must be: text as is, numbers as the same number, null empty.
    static func sameValue(_ json: Any?, _ cell: String) -> Bool {
        switch json {
        case nil, is NSNull: return cell.isEmpty
        case let s as String: return s == cell
        case let n as NSNumber: return Double(cell) == n.doubleValue
        default: return false
        }
    }

    /// The preview table of a portal page: header and cells, HTML entities decoded.
    static func preview(_ html: String) -> (header: [String], rows: [[String]]) {
        func unescape(_ s: Substring) -> String {
            String(s).replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
                .replacingOccurrences(of: "&#x27;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
        }
        func cells(_ s: Substring, _ tag: String) -> [String] {
            var out: [String] = []
            var rest = s[...]
            while let open = rest.range(of: "<\(tag)[ >]", options: .regularExpression), let gt = rest[open.lowerBound...].range(of: ">"),
                  let close = rest[gt.upperBound...].range(of: "</\(tag)>") {
                out.append(unescape(rest[gt.upperBound..<close.lowerBound]))
                rest = rest[close.upperBound...]
            }
            return out
        }
        guard let start = html.range(of: "<table class=\"preview\">"), let end = html[start.upperBound...].range(of: "</table>") else { return ([], []) }
        let table = html[start.upperBound..<end.lowerBound]
        let header = table.range(of: "</thead>").map { cells(table[..<$0.lowerBound], "th") } ?? []
        let body = table.range(of: "<tbody>").map { table[$0.upperBound...] } ?? table
        var rows: [[String]] = []
        var rest = body[...]
        while let open = rest.range(of: "<tr>"), let close = rest[open.upperBound...].range(of: "</tr>") {
            rows.append(cells(rest[open.upperBound..<close.lowerBound], "td"))
            rest = rest[close.upperBound...]
        }
        return (header, rows)
    }

    /// Asserts that the rows API, both API exports, the CLI export and the CLI masker give `key`
    /// the same columns and values; returns the rows API's fields and first rows.
    func sameOnEveryPath(_ s: LiveServer, dataset: String, key: String?, cliAudience: [String]) async throws -> (fields: [String], rows: [[String: Any]]) {
        let n = 40
        let page = try await s.get("/v1/datasets/\(dataset)/rows?_limit=\(n)", key: key)
        #expect(page.status == 200, "\(page.text)")
        let fields = try #require(page.object["fields"] as? [String])
        let rows = try #require(page.object["rows"] as? [[String: Any]])
        #expect(rows.count == n)

        let csv = try await s.get("/v1/datasets/\(dataset)/export?format=csv", key: key)
        #expect(csv.status == 200)
        let records = Self.csvRecords(csv.text)
        #expect(records.first == fields)
        for (i, row) in rows.enumerated() {
            for (j, f) in fields.enumerated() {
                #expect(Self.sameValue(row[f], records[i + 1][j]), "\(dataset) row \(i + 1) field \(f): rows API and CSV export differ")
            }
        }

        let jsonl = try await s.get("/v1/datasets/\(dataset)/export?format=jsonl", key: key)
        let objects = jsonl.text.split(separator: "\n").prefix(n).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? NSDictionary }
        #expect(objects.count == n)
        for (i, row) in rows.enumerated() { #expect(objects[i] == row as NSDictionary, "\(dataset) row \(i + 1): rows API and JSON Lines export differ") }

        let exported = try Self.cli(["dataset", "export", dataset] + cliAudience, server: s)
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stdout == csv.text, "\(dataset): `kaifang dataset export` and the API's CSV export differ")

        let masked = try Self.cli(["mask", "datasets/\(dataset)/\(dataset).csv", "--manifest", "datasets/\(dataset)/dataset.json"] + cliAudience, server: s)
        #expect(masked.status == 0, "\(masked.stderr)")
        #expect(masked.stdout == csv.text, "\(dataset): `kaifang mask` of the source file and the API's CSV export differ")

        let synthetic = try await s.get("/v1/datasets/\(dataset)/synthetic?rows=5", key: key)
        #expect(synthetic.object["fields"] as? [String] == fields)
        return (fields, rows)
    }

    @Test func aVisitorGetsThePublicViewAlikeOnEveryPathThePortalIncluded() async throws {
        try await LiveServer.with { s in
            let (fields, rows) = try await sameOnEveryPath(s, dataset: "enterprises", key: nil, cliAudience: ["--view", "public"])
            #expect(rows.contains { ($0["legal_representative"] as? String)?.contains("*") == true })
            let portal = try await s.get("/datasets/enterprises")
            let (header, cells) = Self.preview(portal.text)
            #expect(header == fields)
            #expect(!cells.isEmpty)
            for (i, r) in cells.enumerated() {
                for (j, f) in fields.enumerated() {
                    #expect(Self.sameValue(rows[i][f], r[j]), "portal preview row \(i + 1) field \(f) differs from the rows API")
                }
            }
        }
    }

    @Test func aLicenseGetsItsFieldsAndPseudonymsAlikeOnEveryPath() async throws {
        try await LiveServer.with { s in
            let (record, key) = try s.catalog.createKey(role: .developer, name: "d", actor: "t")
            let app = try s.catalog.createApplication(keyID: record.id, dataset: "residents", purpose: "研究低保发放的区县分布 study",
                                                      fields: ["name", "phone", "district", "benefit_amount"], use: .rows, durationDays: 30)
            let license = try s.catalog.approve(application: app.id, actor: "cli:steward")
            let (fields, rows) = try await sameOnEveryPath(s, dataset: "residents", key: key, cliAudience: ["--license", license.id])
            #expect(fields == ["name", "phone", "district", "benefit_amount"])
            #expect(rows.allSatisfy { ($0["phone"] as? String)?.hasPrefix("tel_") == true })
        }
    }
}
