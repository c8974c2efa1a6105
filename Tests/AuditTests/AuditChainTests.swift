import Audit
import Foundation
import Testing

@Suite struct AuditChainTests {
    /// Event times against the C library's `gmtime_r` + `strftime`, milliseconds truncated
    /// (written out by hand: `.001` is one millisecond although the double is a hair under it).
    @Test func timestampsAgreeWithGmtime() {
        for (t, millis) in [(0.0, 0), (0.9999, 999), (951_782_400.5, 500), (1_764_498_467.123_9, 123), (4_102_444_799.999, 999), (1_709_164_800.001, 1)] {
            var tt = time_t(t.rounded(.down))
            var tmv = tm()
            gmtime_r(&tt, &tmv)
            var buf = [Int8](repeating: 0, count: 32)
            let n = strftime(&buf, 32, "%Y-%m-%dT%H:%M:%S", &tmv)
            let expected = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) + String(format: ".%03dZ", millis)
            #expect(AuditChain.timestamp(Date(timeIntervalSince1970: t)) == expected)
        }
    }

    /// A timestamp read back and written again is the same text, for every millisecond tried.
    @Test func aTimestampReadBackIsWrittenTheSame() {
        for i in Int64(0)..<20_000 {
            // Spread over 1970–2100 by a multiplicative hash of i: every millisecond digit occurs.
            let ms = (i &* 2_654_435_761 &* 7_919 &+ 12_345) % 4_102_444_800_000
            let text = AuditChain.timestamp(Date(timeIntervalSince1970: Double(ms) / 1000))
            #expect(AuditChain.date(text).map { AuditChain.timestamp($0) } == text, "\(text)")
            #expect(text.hasSuffix(String(format: ".%03dZ", ms % 1000)))
        }
    }

    func chain(_ n: Int) -> [(event: AuditEvent, previous: String, hash: String)] {
        var prev = AuditChain.genesis
        var out: [(event: AuditEvent, previous: String, hash: String)] = []
        for i in 1...n {
            let e = AuditEvent(seq: Int64(i), at: "2026-11-22T00:00:0\(i % 10).000Z", actor: "cli:test", action: "dataset.import",
                               dataset: i % 2 == 0 ? "residents" : nil, detail: ["version": .int(Int64(i)), "source": "a,\"b\"\n.csv"])
            let h = AuditChain.hash(previous: prev, event: e)
            out.append((e, prev, h))
            prev = h
        }
        return out
    }

    @Test func canonicalJSONSortsKeysAndEscapesControls() {
        let v: JSONValue = ["b": 1, "a": ["x\n\"y\"", true, .null], "中": "文\u{01}"]
        #expect(v.canonical == #"{"a":["x\n\"y\"",true,null],"b":1,"中":"文\u0001"}"#)
    }

    /// The event's hand-ordered serialization is exactly the generic canonical JSON of the
    /// event as an object (so chains written before and after stay verifiable).
    @Test func anEventSerializesAsItsCanonicalObject() {
        for (dataset, actor) in [(nil, "cli:test"), (Optional("居民\"x\""), "anonymous:127.0.0.1"), (Optional(""), "key:\u{1F}\\")] {
            let e = AuditEvent(seq: 42, at: "2026-11-22T01:02:03.004Z", actor: actor, action: "rows.read", dataset: dataset,
                               detail: ["fields": ["name": "mask", "年龄": "keep"], "rows": 100, "note": "a\tb"])
            var o: [String: JSONValue] = ["seq": .int(e.seq), "at": .string(e.at), "actor": .string(e.actor), "action": .string(e.action),
                                          "detail": .object(e.detail)]
            o["dataset"] = e.dataset.map(JSONValue.string) ?? .null
            #expect(e.canonicalJSON == JSONValue.object(o).canonical)
        }
    }

    @Test func theSameEventAlwaysHashesTheSame() {
        #expect(chain(3).map(\.hash) == chain(3).map(\.hash))
        #expect(Set(chain(5).map(\.hash)).count == 5)
    }

    /// The verifier a store streams its rows through hashes the detail as stored; a detail kept
    /// in another but equivalent JSON form still verifies (parsed again), an altered one does not.
    @Test func storedDetailsVerifyAsStoredOrAfterParsing() {
        let c = chain(3)
        func run(_ detail: (Int) -> String) -> AuditChain.Verdict {
            var v = AuditChain.Verifier(remembering: [2])
            for (i, item) in c.enumerated() {
                let e = item.event
                if let broken = v.check(seq: e.seq, at: e.at, actor: e.actor, action: e.action, dataset: e.dataset,
                                        detailJSON: Array(detail(i).utf8), previous: item.previous, hash: item.hash) { return broken }
            }
            #expect(v.remembered == [2: c[1].hash])
            return v.verdict
        }
        let canonical = c.map { JSONValue.object($0.event.detail).canonical }
        #expect(run { canonical[$0] } == .intact(count: 3, head: c[2].hash))
        #expect(run { " " + canonical[$0].replacingOccurrences(of: "\":", with: "\" : ") } == .intact(count: 3, head: c[2].hash))
        #expect(run { $0 == 1 ? canonical[1].replacingOccurrences(of: "2", with: "3") : canonical[$0] }
                == .broken(seq: 2, reason: "event 2 was altered: its content no longer matches its hash"))
    }

    @Test func anIntactChainVerifies() {
        let c = chain(6)
        #expect(AuditChain.verify(c) == .intact(count: 6, head: c.last!.hash))
        #expect(AuditChain.verify([]) == .intact(count: 0, head: AuditChain.genesis))
    }

    @Test(arguments: 0..<6)
    func alteringAnyEventBreaksTheChainThere(index: Int) {
        var c = chain(6)
        c[index].event.detail["version"] = 99
        #expect(AuditChain.verify(c) == .broken(seq: Int64(index + 1), reason: "event \(index + 1) was altered: its content no longer matches its hash"))
    }

    @Test(arguments: 0..<5)
    func deletingAnEventIsNamed(index: Int) {
        var c = chain(6)
        c.remove(at: index)
        guard case .broken(let seq, let reason) = AuditChain.verify(c) else { Issue.record("not broken"); return }
        #expect(seq == Int64(index + 1))
        #expect(reason.contains("deleted"))
    }

    @Test func rewritingAHashWithoutItsSuccessorIsCaught() {
        var c = chain(4)
        c[1].event.actor = "cli:mallory"
        c[1].hash = AuditChain.hash(previous: c[1].previous, event: c[1].event)
        #expect(AuditChain.verify(c) == .broken(seq: 3, reason: "event 3 does not point at the hash of event 2"))
    }
}
