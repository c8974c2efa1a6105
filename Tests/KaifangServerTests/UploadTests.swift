import Foundation
import Glibc
import KaifangCore
import KaifangServer
import Publishing
import Storage
import Testing

/// `POST /v1/datasets/{id}/versions` and the two-person rule against the live server: a city
/// department's publisher uploads its dataset (interrupted, retried, compressed, refused and
/// oversized uploads) and proposes publishing it; its reviewer and a security reviewer approve.
@Suite struct UploadTests {
    static let city = "南京市民政局"

    /// A server whose `nanjing-residents` (the residents sample as a city's dataset) belongs to
    /// 南京市民政局 under 江苏省; keys of its publisher and reviewer, and of another city's
    /// publisher.
    static func withCity(configure: @escaping (inout AppConfiguration) -> Void = { _ in },
                         _ body: (LiveServer, _ publisher: String, _ reviewer: String, _ other: String) async throws -> Void) async throws {
        try await LiveServer.with(configure: configure) { s in
            _ = try s.catalog.createDepartment(name: "江苏省", parent: nil, actor: "t")
            _ = try s.catalog.createDepartment(name: city, parent: "江苏省", actor: "t")
            _ = try s.catalog.createDepartment(name: "苏州市民政局", parent: "江苏省", actor: "t")
            var m = try s.catalog.requireDataset("residents").manifest
            m.id = "nanjing-residents"
            m.department = city
            _ = try Publisher(catalog: s.catalog).importCSV(path: Self.residents.path, datasetID: m.id, manifest: m, actor: "t")
            let (_, publisher) = try s.catalog.createKey(role: .publisher, name: "南京 publisher", account: nil, department: city, actor: "t")
            let (_, reviewer) = try s.catalog.createKey(role: .reviewer, name: "南京 reviewer", account: nil, department: city, actor: "t")
            let (_, other) = try s.catalog.createKey(role: .publisher, name: "苏州 publisher", account: nil, department: "苏州市民政局", actor: "t")
            try await body(s, publisher, reviewer, other)
        }
    }

    static let residents = LiveServer.repo.appendingPathComponent("datasets/residents/residents.csv")
    static let path = "/v1/datasets/nanjing-residents/versions"

    static func upload(_ s: LiveServer, key: String?, body: Data, type: String = "text/csv", headers: [String: String] = [:]) async throws -> LiveServer.Reply {
        var h = headers
        h["Content-Type"] = type
        return try await s.get(path, key: key, method: "POST", body: body, headers: h)
    }

    @Test func aCityPublisherUploadsAndARetryMakesOneVersion() async throws {
        try await Self.withCity { s, publisher, reviewer, other in
            let csv = try Data(contentsOf: Self.residents)
            let first = try await Self.upload(s, key: publisher, body: csv, headers: ["Idempotency-Key": "nj-2026-12-a"])
            #expect(first.status == 201, "\(first.text)")
            #expect(first.object["number"] as? Int == 2)
            #expect(first.object["row_count"] as? Int == 2000)
            #expect(first.object["published"] as? Bool == false)
            // The upload's content is the CLI import's: the same content hash.
            let v1 = try #require(try s.catalog.version("nanjing-residents", 1))
            #expect(first.object["sha256"] as? String == v1.sha256)
            // A retry with the same key answers with the same version and makes none.
            let retry = try await Self.upload(s, key: publisher, body: csv, headers: ["Idempotency-Key": "nj-2026-12-a"])
            #expect(retry.status == 200)
            #expect(retry.headers["idempotent-replayed"] == "true")
            #expect(retry.object["number"] as? Int == 2)
            #expect(try s.catalog.versions("nanjing-residents").count == 2)
            // The key does not open another department's dataset.
            let elsewhere = try await s.get("/v1/datasets/residents/versions", key: publisher, method: "POST", body: csv,
                                            headers: ["Content-Type": "text/csv", "Idempotency-Key": "nj-2026-12-a"])
            #expect(elsewhere.status == 403)
            // Nothing is published: readers of the public API still see no version 2.
            #expect(try s.catalog.dataset("nanjing-residents")?.publishedVersion == nil)
            // The department's reviewer reads the unpublished version's quality report; another
            // city's publisher does not.
            let quality = try await s.get("/v1/datasets/nanjing-residents/versions/2/quality", key: reviewer)
            #expect(quality.status == 200, "\(quality.text)")
            #expect(try await s.get("/v1/datasets/nanjing-residents/versions/2/quality", key: other).status == 404)
            // Another city's publisher may not upload it.
            let refused = try await Self.upload(s, key: other, body: csv)
            #expect(refused.status == 403)
            #expect(refused.text.contains(Self.city))
            // Nor may the reviewer (reviewers approve; they do not propose).
            #expect(try await Self.upload(s, key: reviewer, body: csv).status == 403)
            #expect(try s.catalog.versions("nanjing-residents").count == 2)
            // The import is an audit event naming the uploading key and its Idempotency-Key.
            let events = try s.catalog.auditEvents(dataset: "nanjing-residents", actor: nil, limit: nil).map(\.event).filter { $0.action == "dataset.import" }
            #expect(events.last?.detail["idempotency_key"] == .string("nj-2026-12-a"))
            #expect(events.last?.actor.hasPrefix("key:") == true)
        }
    }

    @Test func anInterruptedUploadLeavesNoVersionAndItsRetryMakesOne() async throws {
        try await Self.withCity { s, publisher, _, _ in
            let csv = try Data(contentsOf: Self.residents)
            // Half the body, then the connection closes.
            try Self.sendPartial(port: s.port, key: publisher, body: csv, sending: csv.count / 2, idempotencyKey: "cut-1")
            try await Task.sleep(for: .milliseconds(500))
            #expect(try s.catalog.versions("nanjing-residents").count == 1)
            #expect(try s.catalog.uploadedVersion(UploadKey(keyID: String(publisher.split(separator: "_")[1]), idempotencyKey: "cut-1")) == nil)
            // No temporary file is left behind.
            let tmp = s.catalog.directory.temporaryFile(suffix: "").components(separatedBy: "/").dropLast().joined(separator: "/")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []
            #expect(left.filter { $0.hasSuffix(".sqlite") }.isEmpty, "\(left)")
            let retry = try await Self.upload(s, key: publisher, body: csv, headers: ["Idempotency-Key": "cut-1"])
            #expect(retry.status == 201)
            #expect(try s.catalog.versions("nanjing-residents").count == 2)
        }
    }

    @Test func twoUploadsWithOneKeyAtOnceMakeOneVersion() async throws {
        try await Self.withCity { s, publisher, _, _ in
            let csv = try Data(contentsOf: Self.residents)
            async let a = Self.upload(s, key: publisher, body: csv, headers: ["Idempotency-Key": "race"])
            async let b = Self.upload(s, key: publisher, body: csv, headers: ["Idempotency-Key": "race"])
            let (ra, rb) = try await (a, b)
            // One made the version; the other answered with it (checked before its import, or
            // refused at its commit and then replayed).
            #expect([ra.status, rb.status].sorted() == [200, 201], "\(ra.text) \(rb.text)")
            #expect(ra.object["number"] as? Int == rb.object["number"] as? Int)
            #expect(try s.catalog.versions("nanjing-residents").count == 2)
        }
    }

    @Test func compressedAndJSONLinesUploadsGiveTheSameContent() async throws {
        try await Self.withCity { s, publisher, _, _ in
            let csv = try Data(contentsOf: Self.residents)
            let gz = try Self.gzip(csv)
            #expect(gz.count < csv.count / 2)
            let r = try await Self.upload(s, key: publisher, body: gz, headers: ["Content-Encoding": "gzip"])
            #expect(r.status == 201, "\(r.text)")
            let v1 = try #require(try s.catalog.version("nanjing-residents", 1))
            #expect(r.object["sha256"] as? String == v1.sha256)
            // The published residents' JSON Lines export as uploaded JSON Lines: same rows.
            _ = try s.catalog.publish(dataset: "nanjing-residents", version: 1, tier: .open, actor: "t", reason: "test", detail: [:])
            let steward = try s.catalog.createKey(role: .steward, name: "s", actor: "t").1
            let jsonl = try await s.get("/v1/datasets/nanjing-residents/export?format=jsonl", key: steward)
            #expect(jsonl.status == 200)
            let j = try await Self.upload(s, key: publisher, body: jsonl.body, type: "application/x-ndjson")
            #expect(j.status == 201, "\(j.text)")
            #expect(j.object["sha256"] as? String == v1.sha256)
            // Bytes that are not gzip, sent as gzip: refused, nothing written.
            let bad = try await Self.upload(s, key: publisher, body: csv, headers: ["Content-Encoding": "gzip"])
            #expect(bad.status == 422, "\(bad.text)")
            #expect(bad.text.contains("not gzip"))
            // A gzip stream cut short: refused.
            let cut = try await Self.upload(s, key: publisher, body: gz.prefix(gz.count / 2), headers: ["Content-Encoding": "gzip"])
            #expect(cut.status == 422, "\(cut.text)")
            #expect(try s.catalog.versions("nanjing-residents").count == 3)
        }
    }

    @Test func refusedUploadsSayWhatToDoAndWriteNothing() async throws {
        try await Self.withCity(configure: { $0.maxUploadBytes = 100_000 }) { s, publisher, _, _ in
            let csv = try Data(contentsOf: Self.residents)
            // A bad value on line 4: the error names the line, column and field, not the value.
            var lines = String(decoding: csv.prefix(20_000), as: UTF8.self).split(separator: "\n").map(String.init)
            lines.removeLast()
            var cells = lines[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let header = lines[0].split(separator: ",").map(String.init)
            let amount = try #require(header.firstIndex(of: "benefit_amount"))
            cells[amount] = "lots"
            lines[3] = cells.joined(separator: ",")
            let bad = try await Self.upload(s, key: publisher, body: Data((lines.joined(separator: "\n") + "\n").utf8))
            #expect(bad.status == 422)
            #expect(bad.headers["content-type"]?.hasPrefix("application/problem+json") == true)
            let detail = try #require(bad.object["detail"] as? String)
            #expect(detail.contains("upload.csv:4:"), "\(detail)")
            #expect(detail.contains("benefit_amount"))
            #expect(!detail.contains("lots"))
            #expect(!detail.contains("--on-error"))
            // Over the server's limit: 413, by Content-Length and by counting a chunked body.
            let big = try await Self.upload(s, key: publisher, body: csv)
            #expect(big.status == 413, "\(big.text)")
            // A body that inflates past the limit is refused too.
            let gz = try Self.gzip(csv)
            #expect(gz.count < 100_000)
            let bomb = try await Self.upload(s, key: publisher, body: gz, headers: ["Content-Encoding": "gzip"])
            #expect(bomb.status == 413, "\(bomb.text)")
            #expect(try await Self.upload(s, key: publisher, body: csv.prefix(5000), type: "application/pdf").status == 415)
            #expect(try await Self.upload(s, key: publisher, body: csv.prefix(5000), headers: ["Content-Encoding": "br"]).status == 415)
            #expect(try await Self.upload(s, key: publisher, body: csv.prefix(5000), headers: ["Idempotency-Key": "has space"]).status == 400)
            #expect(try await Self.upload(s, key: nil, body: csv.prefix(5000)).status == 401)
            #expect(try s.catalog.versions("nanjing-residents").count == 1)
        }
    }

    @Test func aProposalTakesEffectOnlyWithAnotherPersonsApprovals() async throws {
        try await Self.withCity { s, publisher, reviewer, other in
            let csv = try Data(contentsOf: Self.residents)
            #expect(try await Self.upload(s, key: publisher, body: csv, headers: ["Idempotency-Key": "p-1"]).status == 201)
            let (_, security) = try s.catalog.createKey(role: .security, name: "安全审核", account: nil, department: nil, actor: "t")
            let (_, suzhouReviewer) = try s.catalog.createKey(role: .reviewer, name: "苏州 reviewer", account: nil, department: "苏州市民政局", actor: "t")
            let proposals = "/v1/datasets/nanjing-residents/proposals"
            // Open below the k-anonymity gate: refused without a reason, with the figures.
            let below = try await s.get(proposals, key: publisher, json: ["tier": "open", "version": 2])
            #expect(below.status == 409, "\(below.text)")
            #expect(below.text.contains("anonymous"))
            // Another city's publisher and the reviewer do not propose.
            #expect(try await s.get(proposals, key: other, json: ["tier": "conditional"]).status == 403)
            #expect(try await s.get(proposals, key: reviewer, json: ["tier": "conditional"]).status == 403)
            // With an override reason: pending, waiting for the department's reviewer and security.
            let filed = try await s.get(proposals, key: publisher, json: ["tier": "open", "version": 2, "override_reason": "汇总到区县，已与安全部门确认 district totals"])
            #expect(filed.status == 201, "\(filed.text)")
            let id = try #require(filed.object["id"] as? String)
            #expect(filed.object["needs_security"] as? Bool == true)
            #expect(filed.object["awaiting"] as? [String] == ["reviewer", "security"])
            // The department's queue shows it to its reviewer; another city's reviewer sees nothing.
            let queue = try await s.get("/v1/proposals?status=pending", key: reviewer)
            #expect((queue.object["proposals"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            #expect((try await s.get("/v1/proposals", key: suzhouReviewer).object["proposals"] as? [Any])?.isEmpty == true)
            // Nobody approves it but the department's reviewer and a security reviewer.
            #expect(try await s.get("/v1/proposals/\(id)/approval", key: publisher, method: "POST").status == 403)
            #expect(try await s.get("/v1/proposals/\(id)/approval", key: suzhouReviewer, method: "POST").status == 404)
            #expect(try await s.get("/v1/proposals/\(id)/approval", key: other, method: "POST").status == 404)
            let reviewed = try await s.get("/v1/proposals/\(id)/approval", key: reviewer, method: "POST")
            #expect(reviewed.status == 200, "\(reviewed.text)")
            #expect(reviewed.object["status"] as? String == "pending" && reviewed.object["awaiting"] as? [String] == ["security"])
            #expect(try s.catalog.dataset("nanjing-residents")?.publishedVersion == nil)
            #expect(try await s.get("/v1/proposals/\(id)/approval", key: reviewer, method: "POST").status == 409)
            let published = try await s.get("/v1/proposals/\(id)/approval", key: security, method: "POST")
            #expect(published.status == 200, "\(published.text)")
            #expect(published.object["status"] as? String == "published")
            let d = try #require(try s.catalog.dataset("nanjing-residents"))
            #expect(d.tier == .open && d.publishedVersion == 2)
            // Readers see version 2 now; the audit log holds the whole story.
            #expect(try await s.get("/v1/datasets/nanjing-residents/rows?_limit=1").status == 200)
            let events = try s.catalog.auditEvents(dataset: "nanjing-residents", actor: nil, limit: nil).map(\.event)
            #expect(events.map(\.action).filter { $0.hasPrefix("proposal.") || $0 == "dataset.publish" }
                    == ["proposal.create", "proposal.approve", "proposal.approve", "dataset.publish"])
            let publish = try #require(events.last { $0.action == "dataset.publish" })
            #expect(publish.detail["proposal"] == .string(id) && publish.detail["forced"] == .bool(true) && publish.detail["reason"] != nil)
            // A proposal refused takes no effect.
            let second = try await s.get(proposals, key: publisher, json: ["tier": "restricted", "version": 1])
            #expect(second.status == 201 && second.object["needs_security"] as? Bool == false)
            let sid = try #require(second.object["id"] as? String)
            #expect(try await s.get("/v1/proposals/\(sid)/refusal", key: reviewer, json: ["reason": ""]).status == 400)
            let refused = try await s.get("/v1/proposals/\(sid)/refusal", key: reviewer, json: ["reason": "撤回理由不充分 not justified"])
            #expect(refused.status == 200 && refused.object["status"] as? String == "refused")
            #expect(try s.catalog.dataset("nanjing-residents")?.tier == .open)
        }
    }

    @Test func aPolicyChangeOverHTTPWaitsForTheReviewerDescriptionsDoNot() async throws {
        try await Self.withCity { s, publisher, reviewer, other in
            let path = "/v1/datasets/nanjing-residents"
            let current = try #require(try s.catalog.dataset("nanjing-residents")).manifest
            func body(_ m: DatasetManifest) throws -> Data { try JSONEncoder().encode(m) }
            // Descriptions alone apply at once.
            var described = current
            described.title = "南京市居民服务记录"
            let d = try await s.get(path, key: publisher, method: "PUT", body: try body(described), headers: ["Content-Type": "application/json"])
            #expect(d.status == 200 && d.object["applied"] as? Bool == true && (d.object["changes"] as? [Any])?.isEmpty == true, "\(d.text)")
            #expect(try s.catalog.dataset("nanjing-residents")?.manifest.title == "南京市居民服务记录")
            // A level lowered waits for the department's reviewer, and says what it changes.
            var lowered = described
            let i = try #require(lowered.fields.firstIndex { $0.name == "name" })
            lowered.fields[i].level = .L2
            let p = try await s.get(path, key: publisher, method: "PUT", body: try body(lowered), headers: ["Content-Type": "application/json"])
            #expect(p.status == 202, "\(p.text)")
            let proposal = try #require(p.object["proposal"] as? [String: Any])
            #expect(proposal["kind"] as? String == "policy" && proposal["status"] as? String == "pending")
            #expect((p.object["changes"] as? [String])?.contains("name: level L3 → L2") == true, "\(p.text)")
            #expect(try s.catalog.dataset("nanjing-residents")?.manifest.field(named: "name")?.level == .L3)
            // Another city's publisher, a manifest that moves department or drops a field: refused.
            #expect(try await s.get(path, key: other, method: "PUT", body: try body(lowered), headers: ["Content-Type": "application/json"]).status == 403)
            var moved = lowered
            moved.department = "苏州市民政局"
            #expect(try await s.get(path, key: publisher, method: "PUT", body: try body(moved), headers: ["Content-Type": "application/json"]).status == 403)
            var dropped = lowered
            dropped.fields.removeLast()
            #expect(try await s.get(path, key: publisher, method: "PUT", body: try body(dropped), headers: ["Content-Type": "application/json"]).status == 400)
            #expect(try await s.get(path, key: publisher, method: "PUT", body: Data("{".utf8), headers: ["Content-Type": "application/json"]).status == 400)
            let id = try #require(proposal["id"] as? String)
            let listed = try await s.get("/v1/proposals/\(id)", key: reviewer)
            #expect((listed.object["changes"] as? [String]) == ["name: level L3 → L2"])
            let applied = try await s.get("/v1/proposals/\(id)/approval", key: reviewer, method: "POST")
            #expect(applied.status == 200 && applied.object["status"] as? String == "applied", "\(applied.text)")
            #expect(try s.catalog.dataset("nanjing-residents")?.manifest.field(named: "name")?.level == .L2)
        }
    }

    @Test func aDepartmentRegistersANewDatasetUploadsItsFirstVersionAndHasItReleased() async throws {
        try await Self.withCity { s, publisher, reviewer, other in
            var m = try #require(try s.catalog.dataset("nanjing-residents")).manifest
            m.id = "nanjing-services"
            m.title = "南京市民政服务"
            let json = ["Content-Type": "application/json"]
            // Another city's publisher may not register a dataset of 南京; the reviewer registers nothing.
            #expect(try await s.get("/v1/datasets/nanjing-services", key: other, method: "PUT", body: try JSONEncoder().encode(m), headers: json).status == 403)
            #expect(try await s.get("/v1/datasets/nanjing-services", key: reviewer, method: "PUT", body: try JSONEncoder().encode(m), headers: json).status == 403)
            let registered = try await s.get("/v1/datasets/nanjing-services", key: publisher, method: "PUT", body: try JSONEncoder().encode(m), headers: json)
            #expect(registered.status == 201, "\(registered.text)")
            // Nobody outside the department sees it yet; its department does.
            #expect(try await s.get("/v1/datasets/nanjing-services").status == 404)
            #expect(try await s.get("/v1/datasets/nanjing-services", key: reviewer).status == 200)
            let csv = try Data(contentsOf: Self.residents)
            let v1 = try await s.get("/v1/datasets/nanjing-services/versions", key: publisher, method: "POST", body: csv, headers: ["Content-Type": "text/csv"])
            #expect(v1.status == 201 && v1.object["number"] as? Int == 1, "\(v1.text)")
            let proposed = try await s.get("/v1/datasets/nanjing-services/proposals", key: publisher, json: ["tier": "restricted"])
            let id = try #require(proposed.object["id"] as? String, "\(proposed.text)")
            #expect(try await s.get("/v1/proposals/\(id)/approval", key: reviewer, method: "POST").object["status"] as? String == "published")
            #expect(try s.catalog.dataset("nanjing-services")?.tier == .restricted)
        }
    }

    /// gzip's bytes of `data` (the system's gzip).
    static func gzip(_ data: Data) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-c"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        let writer = Thread { input.fileHandleForWriting.write(data); try? input.fileHandleForWriting.close() }
        writer.start()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return out
    }

    /// Sends an upload's head announcing all of `body`, then `sending` bytes of it, and closes.
    static func sendPartial(port: Int, key: String, body: Data, sending: Int, idempotencyKey: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(connected == 0)
        let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\nContent-Type: text/csv\r\nIdempotency-Key: \(idempotencyKey)\r\nContent-Length: \(body.count)\r\n\r\n"
        let bytes = Data(head.utf8) + body.prefix(sending)
        var at = 0
        try bytes.withUnsafeBytes { raw in
            while at < raw.count {
                let n = send(fd, raw.baseAddress! + at, raw.count - at, Int32(MSG_NOSIGNAL))
                if n <= 0 { throw POSIXError(.EPIPE) }
                at += n
            }
        }
        usleep(200_000)
    }
}
