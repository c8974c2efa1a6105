import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KaifangCore
import Testing
import VersionFormat

/// `--sqlite-only`: SQLite alone writes and reads version files. The files it writes are
/// equivalent to Kaifang's own (each passes `integrity_check`; the same schema, rows,
/// statistics, row sets and content hash), and a server reading through SQLite alone answers
/// byte for byte as the default one does.
@Suite struct SQLiteOnlyTests {
    static let datasets = ["residents", "enterprises"]

    /// A data directory with the sample datasets imported and published, by either engine.
    static func dataDirectory(_ scratch: Scratch, sqliteOnly: Bool) throws -> (dir: String, hashes: [String]) {
        let dir = scratch.url.appendingPathComponent(sqliteOnly ? "sqlite" : "pages").path
        let flag = sqliteOnly ? ["--sqlite-only"] : []
        #expect(try CLI.run(flag + ["init", "--data-dir", dir]).status == 0)
        var hashes: [String] = []
        for id in datasets {
            let imported = try CLI.run(flag + ["--json", "dataset", "import", "datasets/\(id)/\(id).csv", "--id", id,
                                              "--manifest", "datasets/\(id)/dataset.json", "--data-dir", dir])
            #expect(imported.status == 0, "\(imported.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(imported.stdout.utf8)) as? [String: Any]
            hashes.append(json?["sha256"] as? String ?? "")
            let published = try CLI.run(flag + ["dataset", "publish", id, "--tier", "open", "--force", "--reason", "comparison", "--data-dir", dir])
            #expect(published.status == 0, "\(published.stderr)")
        }
        return (dir, hashes)
    }

    /// `kaifang serve` on a free port; the port it announced.
    static func serve(_ dir: String, sqliteOnly: Bool) throws -> (Process, Int) {
        let server = Process()
        server.executableURL = CLI.binary
        server.arguments = (sqliteOnly ? ["--sqlite-only"] : []) + ["serve", "--data-dir", dir, "--port", "0", "--sandbox-workers", "0",
                                                                    "--anonymous-rate", "0"]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = FileHandle.nullDevice
        try server.run()
        var announced = ""
        let deadline = Date().addingTimeInterval(30)
        while !announced.contains("(Ctrl-C stops)") && Date() < deadline && server.isRunning {
            announced += String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard let port = announced.split(separator: ":").last.flatMap({ Int($0.prefix { $0.isNumber }) }) else {
            server.terminate()
            throw KaifangError.runtime("serve did not announce its port: \(announced)")
        }
        return (server, port)
    }

    static func get(_ port: Int, _ path: String) async throws -> (Int, Data) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    @Test func sqliteAloneWritesEquivalentFilesAndServesTheSameBytes() async throws {
        let scratch = Scratch()
        let pages = try Self.dataDirectory(scratch, sqliteOnly: false)
        let sqlite = try Self.dataDirectory(scratch, sqliteOnly: true)
        #expect(pages.hashes == sqlite.hashes && !pages.hashes.contains(""), "content hashes: \(pages.hashes) vs \(sqlite.hashes)")

        for id in Self.datasets {
            let a = try VersionReader(path: "\(pages.dir)/versions/\(id)/1.sqlite")
            let b = try VersionReader(path: "\(sqlite.dir)/versions/\(id)/1.sqlite")
            for r in [a, b] { #expect(try r.query("PRAGMA integrity_check") == [[.text("ok")]], "\(r.path)") }
            // Two writers: the bytes are laid out differently (SQLite builds its indexes after the table).
            #expect(try Data(contentsOf: URL(fileURLWithPath: a.path)) != Data(contentsOf: URL(fileURLWithPath: b.path)))
            #expect(try a.query("PRAGMA page_size") == b.query("PRAGMA page_size"))
            for sql in ["SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
                        "SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx",
                        "SELECT key, value FROM kaifang_version ORDER BY key",
                        "SELECT field, chunks FROM kaifang_rowset_fields ORDER BY field",
                        "SELECT field, value, chunk, hex(bits) FROM kaifang_rowsets ORDER BY field, value, chunk",
                        "SELECT * FROM rows ORDER BY _row"] {
                let (x, y) = (try a.query(sql), try b.query(sql))
                #expect(!x.isEmpty && x == y, "\(id): \(sql)")
            }
            // Stored as the same storage classes, not only read back as equal values.
            let columns = try a.query("SELECT name FROM pragma_table_info('rows')").compactMap { $0.first?.text }
            let types = "SELECT " + columns.map { "typeof(\(quoteIdentifier($0)))" }.joined(separator: " || ',' || ") + " FROM rows ORDER BY _row"
            #expect(try a.query(types) == b.query(types), "\(id): storage classes")
        }

        let (one, portA) = try Self.serve(pages.dir, sqliteOnly: false)
        defer { one.terminate() }
        let (two, portB) = try Self.serve(sqlite.dir, sqliteOnly: true)
        defer { two.terminate() }
        let district = "%E7%8E%84%E6%AD%A6%E5%8C%BA"   // 玄武区
        var paths = ["/v1/datasets/residents/rows?_limit=100", "/v1/datasets/residents/rows?_limit=7&district=\(district)",
                     "/v1/datasets/residents/rows?district=\(district)&gender=%E5%A5%B3", "/v1/datasets/residents/rows?_limit=3&_fields=district,benefit_amount",
                     "/v1/datasets/enterprises/rows?_limit=1000", "/v1/datasets/residents/export?format=csv", "/v1/datasets/enterprises/export?format=jsonl"]
        // Follow the cursors of a filtered listing to its end.
        var next: String? = "/v1/datasets/residents/rows?_limit=90&district=\(district)"
        var followed = 0
        while let path = next, followed < 50 {
            paths.append(path)
            followed += 1
            let (_, body) = try await Self.get(portA, path)
            let cursor = (try JSONSerialization.jsonObject(with: body) as? [String: Any])?["next_cursor"] as? String
            next = cursor.map { "/v1/datasets/residents/rows?_limit=90&district=\(district)&_cursor=\($0)" }
        }
        #expect(followed > 1, "the filtered listing spans pages")
        for path in paths {
            let (sa, ba) = try await Self.get(portA, path)
            let (sb, bb) = try await Self.get(portB, path)
            #expect(sa == 200 && sb == 200, "\(path): \(sa) \(sb)")
            #expect(ba == bb && !ba.isEmpty, "\(path): the two servers differ")
        }
    }
}
