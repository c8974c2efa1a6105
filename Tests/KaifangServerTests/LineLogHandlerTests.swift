import Foundation
import KaifangCore
@testable import KaifangServer
import Logging
import Synchronization
import Testing

@Suite struct LineLogHandlerTests {
    /// The timestamps against the C library's `gmtime_r` + `strftime` over random instants
    /// from 1970 to 2200 and the calendar's edges (leap days, century years).
    @Test func timestampsAgreeWithGmtime() {
        var rng = SeededGenerator(seed: 7)
        var instants: [Int64] = [0, 951_782_400, 951_868_799, 4_107_542_400, 4_102_444_799, 1_767_225_599, 1_772_323_200]
        for _ in 0..<20_000 { instants.append(Int64.random(in: 0...7_258_118_400, using: &rng)) }
        for t in instants {
            var out: [UInt8] = []
            UTCTimestamp.append(seconds: t, milliseconds: 7, into: &out)
            var tt = time_t(t)
            var tmv = tm()
            gmtime_r(&tt, &tmv)
            var buf = [Int8](repeating: 0, count: 32)
            let n = strftime(&buf, 32, "%Y-%m-%dT%H:%M:%S", &tmv)
            let expected = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) + ".007Z"
            #expect(String(decoding: out, as: UTF8.self) == expected, "\(t)")
            if String(decoding: out, as: UTF8.self) != expected { break }
        }
    }

    /// One line per event, sorted keys, values that could break the line quoted and escaped.
    @Test func oneLinePerEventWithEscapedValues() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "kaifang") { label in
            LineLogHandler(label: label) { bytes in lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
        }
        logger[metadataKey: "z.base"] = "from the logger"
        logger.info("request", metadata: [
            "http.status": .stringConvertible(200),
            "note": "two\nlines \"quoted\" a=b \\ tab\t",
            "empty": "",
            "plain": "value",
        ])
        logger.debug("not at info level")
        let got = lines.withLock { $0 }
        try #require(got.count == 1)
        let line = got[0]
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false)
        let body = line.drop { $0 != " " }.dropFirst()
        #expect(body == #"info kaifang: request empty="" http.status=200 note="two\nlines \"quoted\" a=b \\ tab\t" plain=value z.base="from the logger""# + "\n")
        let stamp = String(line.prefix { $0 != " " })
        #expect(stamp.count == 24 && stamp.hasSuffix("Z"))
    }
}

@Suite struct RequestIDTests {
    /// Ids are distinct, and each is a UUID of version 4, variant 10, in lower case.
    @Test func idsAreDistinctVersion4UUIDs() {
        var seen = Set<String>()
        for _ in 0..<200_000 {
            let id = RequestID.next()
            seen.insert(id)
            guard let uuid = UUID(uuidString: id) else { Issue.record("\(id) is not a UUID"); return }
            let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
            #expect(bytes[6] >> 4 == 4 && bytes[8] >> 6 == 2, "\(id)")
            #expect(id == id.lowercased() && id.count == 36)
        }
        #expect(seen.count == 200_000)
    }
}
