import Audit
import Foundation
import KaifangCore
@testable import KaifangServer
import Testing

@Suite struct ReadEventDetailTests {
    /// The read event's detail written straight from its values is byte for byte the canonical
    /// form of the dictionary the chain's other events go through (random field names with
    /// Chinese, quotes, backslashes and control characters; with and without a license).
    @Test func detailIsTheCanonicalFormOfItsDictionary() {
        var rng = SeededGenerator(seed: 5)
        let pieces = ["a", "b", "Z", "_", "姓名", "身份证", "\"", "\\", "\u{01}", "\n", "é", "0", " ", "~"]
        func word() -> String { (0..<Int.random(in: 1...5, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined() }
        for _ in 0..<2_000 {
            var names: [String] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                let w = word()
                if !names.contains(w) { names.append(w) }
            }
            let fields = names.map { ($0, ["keep", "mask", "pseudonymize", "generalize", "suppress"].randomElement(using: &rng)!) }
            let version = Int.random(in: 1...1_000_000, using: &rng)
            let rows = Int.random(in: 0...1_000_000, using: &rng)
            let license: String? = Bool.random(using: &rng) ? "lic_" + word() : nil
            let view = ["public", "licensed", "steward"].randomElement(using: &rng)!
            let requestID = UUID().uuidString
            var expected: [String: JSONValue] = [
                "version": .int(Int64(version)), "view": .string(view), "rows": .int(Int64(rows)),
                "fields": .object(Dictionary(uniqueKeysWithValues: fields.map { ($0.0, JSONValue.string($0.1)) })), "request_id": .string(requestID),
            ]
            if let license { expected["license"] = .string(license) }
            let got = APIHandler.readEventDetail(version: version, view: view, rows: rows, fields: fields, requestID: requestID, license: license)
            #expect(got == JSONValue.object(expected).canonicalBytes)
            if got != JSONValue.object(expected).canonicalBytes { break }
        }
    }
}
