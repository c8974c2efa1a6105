// libFuzzer target: detection and every validator over arbitrary bytes, as Strings (UTF-8
// repaired) and as raw bytes. The detector must never crash, and must agree with isValid.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzValidators(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeBufferPointer(start: data, count: min(size, 256))
    var folded = ByteBuilder(), compacted = ByteBuilder()
    let d = Detector.detect(raw, folded: &folded, compacted: &compacted)
    if let type = d.type, d.valid {
        precondition(Detector.isValid(raw, as: type, folded: &folded, compacted: &compacted), "detect and isValid disagree")
    }
    for type in SemanticType.allCases {
        _ = Detector.isValid(raw, as: type, folded: &folded, compacted: &compacted)
    }
    _ = Detector.detect(String(decoding: raw, as: UTF8.self))
    return 0
}
