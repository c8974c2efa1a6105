import Foundation
import Ingest
import KaifangCore
import Testing

/// A source that hands out a few bytes at a time, to cut multi-byte characters anywhere.
final class TrickleSource: ByteSource {
    let bytes: [UInt8]
    var offset = 0
    let step: Int
    init(_ bytes: [UInt8], step: Int) { self.bytes = bytes; self.step = step }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(step, buffer.count, bytes.count - offset)
        if n <= 0 { return 0 }
        for i in 0..<n { buffer[i] = bytes[offset + i] }
        offset += n
        return n
    }
}

@Suite struct EncodingTests {
    static let text = "身份证号,姓名,地址\n320102199003071239,欧阳娜娜,\"江苏省南京市玄武区中山路18号,3栋\"\n11010519491231002X,张三,北京市朝阳区\n"

    /// GB18030 bytes of `text`, made by the system's iconv command (an independent encoder).
    static func gb18030(_ s: String) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/iconv")
        p.arguments = ["-f", "UTF-8", "-t", "GB18030"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        input.fileHandleForWriting.write(Data(s.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Array(data)
    }

    func rows(_ source: any ByteSource) throws -> [[String]] {
        let r = CSVReader(source: source, fileName: "f.csv", chunkSize: 16)
        var out: [[String]] = []
        while try r.next() { out.append(r.strings()) }
        return out
    }

    @Test(arguments: [1, 2, 3, 7, 4096])
    func aGBKFileReadsAsTheSameRowsAsItsUTF8Twin(step: Int) throws {
        let gbk = try Self.gb18030(Self.text)
        #expect(gbk != Array(Self.text.utf8))
        let fromGBK = try rows(try GB18030Source(TrickleSource(gbk, step: step), fileName: "f.csv"))
        let fromUTF8 = try rows(MemoryByteSource(Self.text))
        #expect(fromGBK == fromUTF8)
        #expect(fromGBK[1][1] == "欧阳娜娜")
    }

    @Test func detectionTellsUTF8FromGBK() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let u = dir.appendingPathComponent("u.csv"), g = dir.appendingPathComponent("g.csv"), a = dir.appendingPathComponent("a.csv")
        try Data(Self.text.utf8).write(to: u)
        try Data(try Self.gb18030(Self.text)).write(to: g)
        try Data("a,b\n1,2\n".utf8).write(to: a)
        #expect(try TextEncoding.detect(path: u.path) == .utf8)
        #expect(try TextEncoding.detect(path: g.path) == .gb18030)
        #expect(try TextEncoding.detect(path: a.path) == .utf8)
        #expect(try TextEncoding.parse("GBK") == .gb18030 && TextEncoding.parse("auto") == nil)
        #expect(throws: KaifangError.self) { try TextEncoding.parse("latin1") }
    }

    @Test func bytesThatAreNotGB18030AreRefusedWithTheLine() throws {
        // 0xFF never starts a GB18030 character.
        let bad = Array("a,b\n1,2\n".utf8) + [0xFF, 0x2C, 0x33, 0x0A]
        do {
            _ = try rows(try GB18030Source(MemoryByteSource(bad), fileName: "f.csv"))
            Issue.record("accepted")
        } catch let e as KaifangError {
            #expect(e.message.hasPrefix("f.csv:3:"), "\(e.message)")
            #expect(e.message.contains("not valid GB18030"))
        }
    }

    @Test func aSchemaIsInferredFromTheValues() throws {
        let csv = "身份证号,age,score,active,joined,seen,code,district\n"
            + "320102199003071239,34,1.5,是,2024-01-02,2024-01-02 08:00,007,玄武区\n"
            + "11010519491231002X,41,2,否,2023-12-31,2024-01-03T09:30:00,012,鼓楼区\n"
        let m = try SchemaInference.infer(reader: CSVReader(source: MemoryByteSource(csv), fileName: "x.csv"), id: "x")
        #expect(m.fields.map(\.type) == [.string, .integer, .number, .boolean, .date, .datetime, .string, .string])
        #expect(m.fields[0].name == "field_1" && m.fields[0].title == "身份证号")
        #expect(m.fields[0].semantic == .resident_id && m.fields[0].level == .L4)
        #expect(m.fields[1].name == "age" && m.fields[1].qi)
        #expect(m.fields[6].level >= .L2)        // unknown columns are never below L2
        #expect(m.fields[7].name == "district" && m.fields[7].qi)
        try m.validate()
    }
}
