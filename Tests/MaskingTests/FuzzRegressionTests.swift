import Foundation
import KaifangCore
import Masking
import Testing

/// The fuzz target `validators` replayed: its seed corpus and every input that once failed it
/// (`fuzz/regressions/validators`), through the target's own checks.
@Suite struct FuzzRegressionTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `corpus/<target>/<name>` and `regressions/<target>/<name>` paths under fuzz/.
    static func inputs(_ target: String) -> [String] {
        ["corpus", "regressions"].flatMap { kind in
            let dir = repo.appendingPathComponent("fuzz/\(kind)/\(target)")
            return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted().map { "\(kind)/\(target)/\($0)" }
        }
    }

    @Test func theCorpusAndTheRegressionsAreThere() {
        #expect(Self.inputs("validators").count >= 5)
        #expect(Self.inputs("validators").contains { $0.hasPrefix("regressions/") })
    }

    @Test(arguments: inputs("validators"))
    func detectionAgreesWithValidation(_ path: String) throws {
        let bytes = Array(try Data(contentsOf: Self.repo.appendingPathComponent("fuzz/\(path)")))
        var folded = ByteBuilder(), compacted = ByteBuilder()
        bytes.withUnsafeBufferPointer { all in
            let raw = UnsafeBufferPointer(rebasing: all.prefix(256))
            let d = Detector.detect(raw, folded: &folded, compacted: &compacted)
            if let type = d.type, d.valid {
                #expect(Detector.isValid(raw, as: type, folded: &folded, compacted: &compacted), "detect calls it a valid \(type), isValid does not")
            }
            // The String path (UTF-8 repaired) agrees with the byte path on valid UTF-8.
            if String(validating: raw, as: UTF8.self) != nil {
                #expect(Detector.detect(String(decoding: raw, as: UTF8.self)) == d)
            }
        }
    }

    /// The IPv6 case found by fuzzing, spelled out: spaces inside an address make it no address.
    @Test func anAddressWithSpacesInsideIsNotAnAddress() {
        #expect(Detector.detect("2db8::21   3").type != .ip)
        #expect(Detector.detect("2001:db8::1") == Detection(type: .ip, valid: true))
        #expect(Detector.isValid("苏A 12345", as: .license_plate) == (Detector.detect("苏A 12345").valid))
    }
}
