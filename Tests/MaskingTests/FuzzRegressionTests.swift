import Foundation
import Ingest
import KaifangCore
import Masking
import Testing

/// Inputs that once crashed a fuzz target (scripts/fuzz.sh), replayed through the same checks.
@Suite struct FuzzRegressionTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func inputs(_ target: String) -> [String] {
        let dir = repo.appendingPathComponent("fuzz/regressions/\(target)")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func data(_ target: String, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: repo.appendingPathComponent("fuzz/regressions/\(target)/\(name)")))
    }

    @Test func thereIsAtLeastOneRegression() {
        #expect(!Self.inputs("validators").isEmpty)
    }

    @Test(arguments: inputs("validators"))
    func detectionAgreesWithValidation(_ name: String) throws {
        let bytes = try Self.data("validators", name)
        var folded = ByteBuilder(), compacted = ByteBuilder()
        try bytes.withUnsafeBufferPointer { raw in
            let d = Detector.detect(UnsafeBufferPointer(rebasing: raw.prefix(256)), folded: &folded, compacted: &compacted)
            if let type = d.type, d.valid {
                #expect(Detector.isValid(UnsafeBufferPointer(rebasing: raw.prefix(256)), as: type, folded: &folded, compacted: &compacted))
            }
            _ = try #require(Optional(d))
        }
    }

    @Test(arguments: inputs("csv"))
    func csvReaderSurvives(_ name: String) throws {
        let reader = CSVReader(source: MemoryByteSource(try Self.data("csv", name)), fileName: name, chunkSize: 64)
        do { while try reader.next() { _ = reader.strings() } } catch {}
    }

    /// The IPv6 case found by fuzzing, spelled out: spaces inside an address make it no address.
    @Test func anAddressWithSpacesInsideIsNotAnAddress() {
        #expect(Detector.detect("2db8::21   3").type != .ip)
        #expect(Detector.detect("2001:db8::1") == Detection(type: .ip, valid: true))
        #expect(Detector.isValid("苏A 12345", as: .license_plate) == (Detector.detect("苏A 12345").valid))
    }
}
