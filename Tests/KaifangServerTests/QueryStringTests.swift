import Foundation
import KaifangCore
@testable import KaifangServer
import Testing

@Suite struct QueryStringTests {
    /// Random query strings (percent-encoded Chinese, `+`, `=` inside values, empty items)
    /// split and decoded as Foundation does it: split at `&` and the first `=`, `+` as a
    /// space, then `removingPercentEncoding`.
    @Test func itemsAgreeWithFoundationsDecoding() throws {
        var rng = SeededGenerator(seed: 11)
        let pieces = ["a", "Z", "_", "__", "-", ".", "~", "+", "=", "%E7%8E%84", "%E6%AD%A6", "%2C", "%26", "%3D", "%25", "%2b", "0", "9", ","]
        for _ in 0..<3_000 {
            var items: [String] = []
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                var item = ""
                for _ in 0..<Int.random(in: 0...6, using: &rng) { item += pieces.randomElement(using: &rng)! }
                items.append(item)
            }
            let raw = items.joined(separator: "&")
            var expected: [(String, String)] = []
            for item in raw.split(separator: "&") {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                func decoded(_ s: Substring) throws -> String { try #require(s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding) }
                expected.append((try decoded(kv[0]), kv.count > 1 ? try decoded(kv[1]) : ""))
            }
            let got = QueryString(raw).items
            #expect(got.map(\.key) == expected.map(\.0), "\(raw)")
            #expect(got.map(\.value) == expected.map(\.1), "\(raw)")
        }
    }

    /// A component that is not valid percent-encoded UTF-8 is kept as given; the first of
    /// repeated keys wins; a key without `=` has the empty value.
    @Test func badEncodingsStayAsGiven() {
        let q = QueryString("a=%zz&b=%E7%8E&c=%4&d&a=2&e=%E7%8E%84%E6%AD%A6%E5%8C%BA&&")
        #expect(q.items.map(\.key) == ["a", "b", "c", "d", "a", "e"])
        #expect(q["a"] == "%zz")
        #expect(q["b"] == "%E7%8E")
        #expect(q["c"] == "%4")
        #expect(q["d"] == "")
        #expect(q["e"] == "玄武区")
        #expect(q["f"] == nil)
        #expect(QueryString("").items.isEmpty)
    }

    @Test func operatorsSplitAtTheFirstDoubleUnderscore() {
        #expect(RowQuery.splitOperator("age__gte").map { [$0.0, $0.1] } == ["age", "gte"])
        #expect(RowQuery.splitOperator("a__b__in").map { [$0.0, $0.1] } == ["a", "b__in"])
        #expect(RowQuery.splitOperator("__in").map { [$0.0, $0.1] } == ["", "in"])
        #expect(RowQuery.splitOperator("district") == nil)
        #expect(RowQuery.splitOperator("_") == nil)
    }
}
