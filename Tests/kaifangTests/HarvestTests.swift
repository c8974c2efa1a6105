import Foundation
import Storage
import Testing

/// A local HTTP server (Python, started by the test on 127.0.0.1) that serves one file with an
/// ETag and answers 304 to a matching If-None-Match.
final class FileServer {
    let process: Process
    let port: Int
    let file: URL

    init(file: URL, scratch: Scratch) throws {
        self.file = file
        let script = """
        import hashlib, http.server, sys
        path, port = sys.argv[1], int(sys.argv[2])
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = open(path, 'rb').read()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get('If-None-Match') == etag:
                    self.send_response(304); self.send_header('ETag', etag); self.end_headers(); return
                self.send_response(200); self.send_header('ETag', etag); self.send_header('Content-Type', 'text/csv')
                self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
            def log_message(self, *a): pass
        http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()
        """
        let scriptPath = scratch.write("server.py", script)
        // A free port: bind to 0, read it, release it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        close(fd)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = ["python3", scriptPath, file.path, String(port)]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        self.process = child
        // Wait until it accepts connections.
        for _ in 0..<100 {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            a.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
            close(s)
            if ok { return }
            usleep(50_000)
        }
    }

    /// SIGKILL, not `terminate()`: the child may inherit a blocked SIGTERM from the test
    /// process (it then outlived the tests), and a KILL cannot be blocked.
    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

@Suite struct HarvestTests {
    let scratch = Scratch()

    @Test func aHarvestMakesAVersionOnlyWhenTheContentChanges() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        let m = scratch.write("dataset.json", CLITests.manifest)
        let served = scratch.url.appendingPathComponent("served.csv")
        try Data("pid,age\nA,1\n".utf8).write(to: served)
        #expect(try CLI.run(["dataset", "import", served.path, "--id", "people", "--manifest", m, "--data-dir", dir]).status == 0)
        let server = try FileServer(file: served, scratch: scratch)
        let url = "http://127.0.0.1:\(server.port)/people.csv"
        #expect(try CLI.run(["source", "add", "people", "--url", url, "--every", "1h", "--data-dir", dir]).status == 0)

        try Data("pid,age\nA,1\nB,2\n".utf8).write(to: served)
        let first = try CLI.run(["source", "sync", "people", "--data-dir", dir])
        #expect(first.status == 0 && first.stdout.contains("new version 2 with 2 rows"), "\(first.stdout)\(first.stderr)")
        let second = try CLI.run(["source", "sync", "people", "--data-dir", dir])
        #expect(second.stdout.contains("not modified (304)"), "\(second.stdout)")
        try Data("pid,age\nA,1\nB,2\nC,3\n".utf8).write(to: served)
        let third = try CLI.run(["source", "sync", "people", "--data-dir", dir])
        #expect(third.stdout.contains("new version 3 with 3 rows"), "\(third.stdout)")
        let catalog = try CatalogDatabase(directory: DataDirectory(path: dir))
        #expect(try catalog.versions("people").map(\.rowCount) == [1, 2, 3])
        #expect(try catalog.source("people")?.etag?.isEmpty == false)

        // A broken file never replaces a good version: the sync fails, counts, and backs off.
        try Data("pid,age\nD,not-a-number\n".utf8).write(to: served)
        let bad = try CLI.run(["source", "sync", "people", "--data-dir", dir])
        #expect(bad.status == 1 && bad.stderr.contains("the previous version stays"), "\(bad.stderr)")
        #expect(try catalog.versions("people").count == 3)
        let source = try #require(try catalog.source("people"))
        #expect(source.failures == 1 && source.lastError?.contains("age") == true)
        #expect(!(source.lastError ?? "").contains("not-a-number"))
        let list = try CLI.run(["source", "list", "--data-dir", dir])
        #expect(list.stdout.contains("people") && list.stdout.contains(url))
    }

    @Test func badSourcesAreRefused() throws {
        let dir = scratch.dataDir
        #expect(try CLI.run(["init", "--data-dir", dir]).status == 0)
        #expect(try CLI.run(["source", "add", "ghost", "--url", "http://127.0.0.1:9/x.csv", "--every", "1h", "--data-dir", dir]).status == 2)
        #expect(try CLI.run(["source", "add", "ghost", "--url", "ftp://x", "--every", "1h", "--data-dir", dir]).status == 2)
        #expect(try CLI.run(["source", "add", "ghost", "--url", "http://x/y.csv", "--every", "soon", "--data-dir", dir]).status == 2)
        #expect(try CLI.run(["source", "sync", "ghost", "--data-dir", dir]).status == 2)
    }
}
