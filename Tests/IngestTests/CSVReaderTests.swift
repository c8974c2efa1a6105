import Foundation
import Ingest
import KaifangCore
import CByteScan
import Testing

/// RFC 4180 parsing over bytes, streamed in chunks of any size.
@Suite struct CSVReaderTests {
    func parse(_ text: String, delimiter: Character = ",", chunk: Int = 1 << 20) throws -> [[String]] {
        try parse(Array(text.utf8), delimiter: delimiter, chunk: chunk)
    }

    func parse(_ bytes: [UInt8], delimiter: Character = ",", chunk: Int = 1 << 20) throws -> [[String]] {
        let r = CSVReader(source: MemoryByteSource(bytes), fileName: "t.csv", delimiter: delimiter.asciiValue!, chunkSize: chunk)
        var out: [[String]] = []
        while try r.next() { out.append(r.strings()) }
        return out
    }

    func badInputMessage(_ text: String, chunk: Int = 1 << 20) -> String? {
        do { _ = try parse(text, chunk: chunk); return nil } catch let e as KaifangError { return e.message } catch { return "\(error)" }
    }

    @Test(arguments: [16, 17, 64, 1 << 20])
    func quotedFieldsDoubledQuotesAndEmbeddedNewlinesSurvive(chunk: Int) throws {
        let text = "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"line1\r\nline2\nline3\"\r\nplain,,\"\"\n"
        #expect(try parse(text, chunk: chunk) == [["a", "b", "c"], ["x, y", "say \"hi\"", "line1\r\nline2\nline3"], ["plain", "", ""]])
    }

    @Test func aBOMIsSkippedAndTheLastLineNeedsNoNewline() throws {
        #expect(try parse([0xEF, 0xBB, 0xBF] + Array("名称,值\n甲,1".utf8)) == [["名称", "值"], ["甲", "1"]])
    }

    @Test func blankLinesAreSkippedAndATrailingDelimiterMakesAnEmptyField() throws {
        #expect(try parse("a,b\n\n1,\n\r\n2,3\n\n") == [["a", "b"], ["1", ""], ["2", "3"]])
    }

    @Test func anyOneByteDelimiterWorks() throws {
        #expect(try parse("a;b\n\"1;2\";3\n", delimiter: ";") == [["a", "b"], ["1;2", "3"]])
        #expect(try parse("a\tb\n1\t2\n", delimiter: "\t") == [["a", "b"], ["1", "2"]])
    }

    @Test func lineNumbersCountEmbeddedNewlines() throws {
        let r = CSVReader(source: MemoryByteSource("h1,h2\n\"a\nb\",c\nd,e\n"), fileName: "t.csv")
        #expect(try r.next() && r.recordLine == 1)
        #expect(try r.next() && r.recordLine == 2)
        #expect(try r.next() && r.recordLine == 4)
        #expect(r.position(ofField: 1) == TextPosition(line: 4, column: 3))
        #expect(try !r.next())
    }

    /// Positions are found again from the record's bytes when asked: after quoted fields with
    /// doubled quotes and embedded CRLF, a BOM, and a record cut across buffer refills.
    @Test(arguments: [16, 23, 1 << 20])
    func fieldPositionsAfterQuotedMultiLineFields(chunk: Int) throws {
        let text = [0xEF, 0xBB, 0xBF] + Array("名,说明,值,末\r\n甲,\"一\"\"二\r\n三四\",\"x,y\",5\r\n乙,,\"\",\"q\nr\"\n".utf8)
        let r = CSVReader(source: MemoryByteSource(text), fileName: "t.csv", chunkSize: chunk)
        #expect(try r.next())
        #expect(r.position(ofField: 0) == TextPosition(line: 1, column: 1))
        #expect(r.position(ofField: 3) == TextPosition(line: 1, column: 8))
        #expect(try r.next() && r.recordLine == 2)
        #expect(r.position(ofField: 1) == TextPosition(line: 2, column: 3))
        #expect(r.position(ofField: 2) == TextPosition(line: 3, column: 5))
        #expect(r.position(ofField: 3) == TextPosition(line: 3, column: 11))
        #expect(try r.next() && r.recordLine == 4)
        #expect(r.position(ofField: 2) == TextPosition(line: 4, column: 4))
        #expect(r.position(ofField: 3) == TextPosition(line: 4, column: 7))
        #expect(try !r.next())
    }

    @Test func columnsCountCharactersNotBytes() throws {
        let r = CSVReader(source: MemoryByteSource("姓名,手机\n张三,138\n"), fileName: "t.csv")
        _ = try r.next(); _ = try r.next()
        #expect(r.position(ofField: 1) == TextPosition(line: 2, column: 4))
    }

    @Test(arguments: [16, 1 << 20])
    func anUnterminatedQuoteIsRefusedAtTheQuote(chunk: Int) {
        let msg = badInputMessage("a,b\n1,2\n3,\"open\n4,5\n", chunk: chunk)
        #expect(msg?.hasPrefix("t.csv:3:3:") == true, "\(msg ?? "nil")")
        #expect(msg?.contains("never closed") == true)
    }

    @Test func aCharacterAfterAClosingQuoteIsRefusedWhereItIs() {
        let msg = badInputMessage("a,b\n\"x\"y,2\n")
        #expect(msg?.hasPrefix("t.csv:2:4:") == true, "\(msg ?? "nil")")
    }

    /// Property: any table, written with RFC 4180 quoting, reads back the same at any chunk size.
    @Test func randomTablesRoundTripAtEveryChunkSize() throws {
        var rng = SeededGenerator(seed: 42)
        let alphabet: [String] = ["a", "Z", "9", " ", ",", "\"", "\n", "\r\n", "中", "文", "😀", ";", "\t"]
        for _ in 0..<200 {
            let cols = Int(rng.next() % 5) + 1
            // Up to 40 rows: records then cross the structural index's 64-byte words and the
            // read chunks at every offset.
            let rows = Int(rng.next() % 40) + 1
            let table: [[String]] = (0..<rows).map { _ in
                (0..<cols).map { _ in (0..<Int(rng.next() % 8)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined() }
            }
            // A row of one empty field is a blank line, which the reader skips by design.
            let expected = table.filter { !($0.count == 1 && $0[0].isEmpty) }
            let text = table.map { row in
                row.map { f in f.contains(where: { ",\"\n\r".contains($0) }) || f.contains("\r\n") ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f }.joined(separator: ",")
            }.joined(separator: rng.next() % 2 == 0 ? "\n" : "\r\n")
            for chunk in [16, 23, 100, 4096] {
                #expect(try parse(text, chunk: chunk) == expected)
            }
        }
    }
}

/// The structural index (vector compares in C) against the portable loop, at every length and
/// alignment around the 16-, 32- and 64-byte steps of the SSE2 and AVX2 paths, for a comma and
/// for a delimiter that is also a special byte.
@Suite struct StructuralIndexTests {
    @Test(arguments: [UInt8(0x2C), 0x3B, 0x09, 0x0A])
    func vectorPathsAgreeWithThePortableLoop(delimiter: UInt8) {
        var rng = SeededGenerator(seed: 7)
        let alphabet: [UInt8] = [0x2C, 0x22, 0x0D, 0x0A, 0x3B, 0x09, 0x61, 0xE4, 0xB8, 0xAD, 0x00, 0xFF]
        let bytes = (0..<700).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
        typealias Index = (delims: [UInt64], specials: [UInt64])
        func run(_ f: (UnsafePointer<UInt8>, Int, UInt8, UnsafeMutablePointer<UInt64>, UnsafeMutablePointer<UInt64>) -> Void,
                 _ p: UnsafePointer<UInt8>, _ n: Int) -> Index {
            // Words past the input hold garbage before the call: the last word's high bits
            // must be cleared by it.
            var d = [UInt64](repeating: ~0, count: 12), s = d
            f(p, n, delimiter, &d, &s)
            let words = (n + 63) / 64
            return (Array(d[0..<words]), Array(s[0..<words]))
        }
        bytes.withUnsafeBufferPointer { b in
            for start in 0..<3 {
                for n in 0...(b.count - start) where n < 200 || n % 61 == 0 {
                    let p = b.baseAddress! + start
                    let expected = run(kaifang_csv_index_portable, p, n)
                    let avx = run(kaifang_csv_index, p, n), sse = run(kaifang_csv_index_sse2, p, n)
                    #expect(avx.delims == expected.delims && avx.specials == expected.specials, "n \(n) start \(start)")
                    #expect(sse.delims == expected.delims && sse.specials == expected.specials, "n \(n) start \(start)")
                    // And the portable loop is right: the delimiter, else a quote, CR or LF.
                    for i in 0..<n {
                        let dBit = expected.delims[i >> 6] >> UInt64(i & 63) & 1 == 1
                        let sBit = expected.specials[i >> 6] >> UInt64(i & 63) & 1 == 1
                        if dBit != (p[i] == delimiter) || sBit != (p[i] != delimiter && [0x22, 0x0D, 0x0A].contains(p[i])) {
                            Issue.record("bit \(i) of \(n)"); return
                        }
                    }
                    if n % 64 != 0 && n > 0 && (expected.delims.last! | expected.specials.last!) >> UInt64(n % 64) != 0 { Issue.record("bits past \(n) set") }
                }
            }
        }
    }
}
