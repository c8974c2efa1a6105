import Foundation
import KaifangCore
import Testing

/// The fuzz target `cursor` replayed: its seed corpus and every input that once failed it. A
/// cursor that decodes re-encodes to one that decodes to the same value and row.
@Suite struct CursorFuzzRegressionTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func inputs(_ target: String) -> [String] {
        ["corpus", "regressions"].flatMap { kind in
            let dir = repo.appendingPathComponent("fuzz/\(kind)/\(target)")
            return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted().map { "\(kind)/\(target)/\($0)" }
        }
    }

    @Test func theCorpusIsThereAndDecodes() throws {
        let inputs = Self.inputs("cursor")
        #expect(inputs.count >= 3)
        let decoded = try inputs.filter { path in
            let text = try String(contentsOf: Self.repo.appendingPathComponent("fuzz/\(path)"), encoding: .utf8)
            return RowCursor.decode(text, sortColumn: nil, descending: false) != nil || RowCursor.decode(text, sortColumn: 2, descending: true) != nil
        }
        #expect(!decoded.isEmpty, "no corpus cursor decodes: the replay would test refusals only")
    }

    @Test(arguments: inputs("cursor"))
    func aDecodedCursorRoundTrips(_ path: String) throws {
        let text = String(decoding: try Data(contentsOf: Self.repo.appendingPathComponent("fuzz/\(path)")), as: UTF8.self)
        for (col, desc) in [(nil, false), (Optional(2), true)] as [(Int?, Bool)] {
            guard let (value, row) = RowCursor.decode(text, sortColumn: col, descending: desc) else { continue }
            let again = RowCursor.encode(sortColumn: col, descending: desc, value: value, row: row)
            let decoded = RowCursor.decode(again, sortColumn: col, descending: desc)
            #expect(decoded?.1 == row)
            if case .real(let a) = value, case .real(let b)? = decoded?.0 { #expect(a.bitPattern == b.bitPattern) } else { #expect(decoded?.0 == value) }
        }
    }
}
