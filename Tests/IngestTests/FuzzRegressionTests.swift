import Foundation
import Ingest
import KaifangCore
import Testing

/// The fuzz target `csv` replayed: its seed corpus and every input that once failed it. Each
/// input is read in 64-byte chunks (records straddle refills, as the fuzzer reads them) and in
/// one chunk; both readings give the same records, or the same error.
@Suite struct CSVFuzzRegressionTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func inputs(_ target: String) -> [String] {
        ["corpus", "regressions"].flatMap { kind in
            let dir = repo.appendingPathComponent("fuzz/\(kind)/\(target)")
            return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted().map { "\(kind)/\(target)/\($0)" }
        }
    }

    struct Failure: Error { let text: String }

    @Test func theCorpusIsThere() {
        #expect(Self.inputs("csv").count >= 5)
    }

    /// Every record's fields, or the error's text.
    static func read(_ bytes: [UInt8], chunk: Int) -> Result<[[String]], Failure> {
        let delimiter: UInt8 = bytes.first.map { $0 % 3 == 0 ? UInt8(ascii: ";") : UInt8(ascii: ",") } ?? UInt8(ascii: ",")
        let reader = CSVReader(source: MemoryByteSource(bytes), fileName: "fuzz.csv", delimiter: delimiter, chunkSize: chunk)
        var records: [[String]] = []
        do {
            while try reader.next() { records.append(reader.strings()) }
            return .success(records)
        } catch {
            return .failure(Failure(text: "\(error)"))
        }
    }

    @Test(arguments: inputs("csv"))
    func smallChunksReadWhatOneChunkReads(_ path: String) throws {
        let bytes = Array(try Data(contentsOf: Self.repo.appendingPathComponent("fuzz/\(path)")))
        let small = Self.read(bytes, chunk: 64), whole = Self.read(bytes, chunk: bytes.count + 64)
        switch (small, whole) {
        case (.success(let a), .success(let b)): #expect(a == b)
        case (.failure, .failure): break
        default: Issue.record("64-byte chunks and one chunk disagree: \(small) / \(whole)")
        }
    }
}
