// libFuzzer target: the streaming CSV reader over arbitrary bytes (small chunks, so records
// straddle refills). Any throw is fine (a refused file); a crash or a sanitizer report is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let delimiter: UInt8 = bytes.first.map { $0 % 3 == 0 ? UInt8(ascii: ";") : UInt8(ascii: ",") } ?? UInt8(ascii: ",")
    let reader = CSVReader(source: MemoryByteSource(bytes), fileName: "fuzz.csv", delimiter: delimiter, chunkSize: 64)
    var rows = 0
    do {
        while try reader.next() {
            for i in 0..<reader.fieldCount {
                _ = reader.string(i)
                _ = reader.position(ofField: i)
            }
            rows += 1
            if rows > 100_000 { break }
        }
    } catch {}
    return 0
}
