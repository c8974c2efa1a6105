import CByteScan
import KaifangCore
import Foundation

/// A place in an input file, for error messages: 1-based line and character column.
public struct TextPosition: Sendable, Equatable, CustomStringConvertible {
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in characters (Unicode scalars), not bytes.
    public var column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public var description: String { "\(line):\(column)" }
}

/// A streaming RFC 4180 CSV reader over UTF-8 bytes: quoted fields, doubled quotes, embedded
/// CR/LF, CRLF or LF line ends, a UTF-8 BOM, a final newline or none, any one-byte delimiter.
/// Memory is bounded by the longest record, not the file. Blank lines are skipped.
public final class CSVReader {
    private let source: any ByteSource
    /// The one-byte field delimiter.
    public let delimiter: UInt8
    /// The file name used in error messages.
    public let fileName: String

    // The reader's state is private to this class and used by one thread at a time (a reader
    // is not Sendable), so the per-access exclusivity checks of class properties (a few per
    // record, about 4 % of a masking run) are turned off for it.
    @exclusivity(unchecked) private var buf: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private var end = 0
    @exclusivity(unchecked) private var pos = 0
    @exclusivity(unchecked) private var eof = false
    @exclusivity(unchecked) private var line = 1
    @exclusivity(unchecked) private var lineStart = 0
    @exclusivity(unchecked) private var atFileStart = true

    /// Unquoted records are read in place: their fields are spans of `buf` (`ends` are offsets
    /// into it, a delimiter between fields). A record with a quoted field is parsed again and
    /// copied, unquoted, into `storage` (`ends` are offsets into it, no gap).
    @exclusivity(unchecked) private var storage = ByteBuilder(capacity: 4096)
    @exclusivity(unchecked) private var ends: UnsafeMutablePointer<Int>
    @exclusivity(unchecked) private var endsCount = 0
    @exclusivity(unchecked) private var endsCapacity = 64
    /// The structural index of `buf[0..<end]` (computed with vector compares once per read):
    /// bit i of `delims` set when byte i is the delimiter, of `specials` when it is a quote, CR
    /// or LF. A record's fields are the delimiter bits before its first special bit: a few
    /// instructions per field instead of a loop per byte.
    @exclusivity(unchecked) private var delims: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var specials: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var bitsCapacity: Int
    @exclusivity(unchecked) private var copied = false
    /// Where the current record starts in `buf`, and the offset of its line's start: positions
    /// of fields are found again from there when an error message needs one (keeping them for
    /// every field cost a fifth of a masking run).
    @exclusivity(unchecked) private var recordStart = 0
    @exclusivity(unchecked) private var recordLineStart = 0
    /// The line on which the current record starts.
    @exclusivity(unchecked) public private(set) var recordLine = 0
    /// Records returned so far.
    @exclusivity(unchecked) public private(set) var recordCount = 0

    /// The largest record accepted, in bytes; a longer one is most likely an unterminated quote.
    public static let maxRecordBytes = 64 << 20

    /// Makes a reader.
    public init(source: any ByteSource, fileName: String, delimiter: UInt8 = UInt8(ascii: ","), chunkSize: Int = 1 << 20) {
        self.source = source
        self.fileName = fileName
        self.delimiter = delimiter
        self.capacity = max(chunkSize, 16)
        self.buf = .allocate(capacity: capacity)
        self.bitsCapacity = capacity / 64 + 1
        self.delims = .allocate(capacity: bitsCapacity)
        self.specials = .allocate(capacity: bitsCapacity)
        self.ends = .allocate(capacity: 64)
    }

    deinit {
        buf.deallocate()
        delims.deallocate()
        specials.deallocate()
        ends.deallocate()
    }

    /// Number of fields in the current record.
    public var fieldCount: Int { endsCount }

    /// Whether the current record was read in place: it held no quote, so none of its fields
    /// holds a quote, CR, LF or the delimiter.
    public var readInPlace: Bool { !copied }

    /// Appends `offset` to a buffer of field ends, doubling it when full.
    @inline(__always)
    private static func push(_ offset: Int, _ ends: inout UnsafeMutablePointer<Int>, _ count: inout Int, _ capacity: inout Int) {
        if count == capacity {
            let grown = UnsafeMutablePointer<Int>.allocate(capacity: capacity * 2)
            grown.update(from: ends, count: count)
            ends.deallocate()
            ends = grown
            capacity *= 2
        }
        ends[count] = offset
        count &+= 1
    }

    /// Records the end of a field of the current record.
    @inline(__always) private func pushEnd(_ offset: Int) {
        Self.push(offset, &ends, &endsCount, &endsCapacity)
    }

    /// The bytes of field `i` of the current record, unquoted (a copy).
    public func field(_ i: Int) -> ArraySlice<UInt8> {
        ArraySlice(fieldBytes(i))
    }

    /// Field `i`'s bytes: valid until the next call to `next()`.
    func fieldBytes(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        withRecord { $0.field(i) }
    }

    /// Calls `body` with a view of the current record's fields: one access per record.
    public func withRecord<R>(_ body: (FieldSpans) throws -> R) rethrows -> R {
        let base = copied ? UnsafePointer(storage.base) : UnsafePointer(buf)
        let first = copied ? 0 : recordStart
        let gap = copied ? 0 : 1
        return try body(FieldSpans(base: base, first: first, gap: gap, ends: UnsafeBufferPointer(start: ends, count: endsCount)))
    }

    public func withField<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(fieldBytes(i))
    }

    /// Field `i` of the current record as a String (invalid UTF-8 is repaired with U+FFFD).
    public func string(_ i: Int) -> String {
        String(decoding: fieldBytes(i), as: UTF8.self)
    }

    /// All fields of the current record as Strings.
    public func strings() -> [String] { (0..<fieldCount).map(string) }

    /// Where field `i` of the current record starts (line, character column).
    /// Valid until the next call to `next()` (the record is still in the buffer until then).
    public func position(ofField i: Int) -> TextPosition {
        guard i < endsCount else { return TextPosition(line: recordLine, column: 1) }
        // Walk the record's raw bytes again, as parseRecord did, up to field i.
        let quote: UInt8 = 0x22, cr: UInt8 = 0x0D, lf: UInt8 = 0x0A
        var p = recordStart, line = recordLine, lineStart = recordLineStart, f = 0
        while f < i && p < end {
            if buf[p] == quote {
                p += 1
                while p < end {
                    if buf[p] == quote {
                        if p + 1 < end && buf[p + 1] == quote { p += 2; continue }
                        p += 1
                        break
                    }
                    if buf[p] == lf { line += 1; lineStart = p + 1 }
                    p += 1
                }
            }
            while p < end && buf[p] != delimiter && buf[p] != lf && buf[p] != cr { p += 1 }
            guard p < end && buf[p] == delimiter else { break }
            p += 1
            f += 1
        }
        return TextPosition(line: line, column: column(from: lineStart, to: p))
    }

    /// Where the end of field `i` is; used for "expected more columns" errors.
    public func position(afterField i: Int) -> TextPosition {
        guard i < endsCount else { return TextPosition(line: recordLine, column: 1) }
        let p = position(ofField: i)
        let len = String(decoding: fieldBytes(i), as: UTF8.self).unicodeScalars.count
        return TextPosition(line: p.line, column: p.column + len)
    }

    private func column(from lineStartIndex: Int, to index: Int) -> Int {
        var col = 1
        var i = max(0, lineStartIndex)
        while i < index && i < end {
            if buf[i] & 0xC0 != 0x80 { col += 1 }
            i += 1
        }
        return col
    }

    private enum Step { case record, needMore, done, quoted }


    /// Advances to the next record.
    /// - Returns: false at the end of the input.
    /// - Throws: `KaifangError.badInput` with file:line:column for an unterminated quoted field
    ///   or a character after a closing quote.
    public func next() throws -> Bool {
        var copy = false
        while true {
            if atFileStart {
                try fill(minimum: 3)
                if end - pos >= 3 && buf[pos] == 0xEF && buf[pos + 1] == 0xBB && buf[pos + 2] == 0xBF {
                    pos += 3
                    lineStart = pos
                }
                atFileStart = false
            }
            let recordStart = pos
            let savedLine = line
            let savedLineStart = lineStart
            switch copy ? try parseQuotedRecord(&storage) : parseInPlace() {
            case .record:
                copied = copy
                // Skip blank lines: one empty unquoted field.
                if !copy && endsCount == 1 && ends[0] == recordStart && pos - recordStart <= 2 {
                    continue
                }
                recordCount += 1
                return true
            case .quoted:
                // A quoted field: parse the record again, copying it unquoted.
                pos = recordStart
                line = savedLine
                lineStart = savedLineStart
                copy = true
            case .done:
                return false
            case .needMore:
                // Move the partial record to the front, read more, parse it again.
                pos = recordStart
                line = savedLine
                lineStart = savedLineStart
                try compactAndRead()
            }
        }
    }

    private func fill(minimum: Int) throws {
        while end - pos < minimum && !eof { try compactAndRead() }
    }

    private func compactAndRead() throws {
        if pos > 0 {
            let keep = end - pos
            if keep > 0 { (buf).update(from: buf + pos, count: keep) }
            lineStart -= pos
            end = keep
            pos = 0
        }
        if end == capacity {
            if capacity >= Self.maxRecordBytes {
                throw KaifangError.badInput("\(fileName):\(line): a record is longer than \(Self.maxRecordBytes >> 20) MiB: most likely a quote is never closed")
            }
            let newCap = capacity * 2
            let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: newCap)
            nb.update(from: buf, count: end)
            buf.deallocate()
            buf = nb
            capacity = newCap
        }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(start: buf + end, count: capacity - end))
        if n == 0 { eof = true } else { end += n }
        if capacity / 64 + 1 > bitsCapacity {
            delims.deallocate()
            specials.deallocate()
            bitsCapacity = capacity / 64 + 1
            delims = .allocate(capacity: bitsCapacity)
            specials = .allocate(capacity: bitsCapacity)
        }
        // The kept part moved to the front, so its bits are computed again with the new bytes.
        kaifang_csv_index(buf, end, delimiter, delims, specials)
    }

    /// Parses one record whose fields are unquoted, in place: its field ends go to `ends` as
    /// offsets into `buf`. Returns `.quoted` at the first quote (the record is then parsed
    /// again by `parseQuotedRecord`), `.needMore` when the record runs past what is read.
    @inline(__always)
    private func parseInPlace() -> Step {
        endsCount = 0
        var p = pos
        let end = self.end
        if p == end { return eof ? .done : .needMore }
        recordLine = line
        recordStart = p
        recordLineStart = lineStart
        let buf = self.buf, delims = self.delims, specials = self.specials
        // The field ends are kept in locals in the loop, stored once per record.
        var ends = self.ends, count = 0, capacity = endsCapacity
        defer { self.ends = ends; endsCount = count; endsCapacity = capacity }
        @inline(__always) func push(_ offset: Int) { Self.push(offset, &ends, &count, &capacity) }
        let lastWord = (end - 1) >> 6
        var w = p >> 6
        let from = ~UInt64(0) << UInt64(p & 63)
        var d = delims[w] & from, s = specials[w] & from
        while s == 0 {
            // No quote, CR or LF in this word from here: every delimiter in it ends a field.
            while d != 0 { push(w << 6 | d.trailingZeroBitCount); d &= d &- 1 }
            w &+= 1
            if w > lastWord {
                if !eof { return .needMore }
                // The last record, without a final newline.
                push(end)
                pos = end
                return .record
            }
            d = delims[w]
            s = specials[w]
        }
        // The delimiters before the first special byte end fields; the special byte ends the
        // record (CR, LF) or sends it to the quoted-field parser.
        let at = s.trailingZeroBitCount
        d &= (UInt64(1) << UInt64(at)) &- 1
        while d != 0 { push(w << 6 | d.trailingZeroBitCount); d &= d &- 1 }
        let q = w << 6 | at
        let b = buf[q]
        if b == 0x22 { return .quoted }
        push(q)
        p = q &+ 1
        if b == 0x0D {
            if p == end && !eof { return .needMore }
            if p < end && buf[p] == 0x0A { p &+= 1 }
        }
        line &+= 1
        lineStart = p
        pos = p
        return .record
    }

    /// Parses one record that holds a quote, copying its fields unquoted into `storage` (`ends`
    /// are offsets into it). Passed inout: one access per record, not one per byte.
    private func parseQuotedRecord(_ storage: inout ByteBuilder) throws -> Step {
        storage.removeAll()
        endsCount = 0
        var line = self.line
        var lineStart = self.lineStart
        let buf = self.buf
        let end = self.end
        let eof = self.eof
        var p = pos
        if p == end {
            return eof ? .done : .needMore
        }
        recordLine = line
        recordStart = p
        recordLineStart = lineStart
        let quote: UInt8 = 0x22, cr: UInt8 = 0x0D, lf: UInt8 = 0x0A
        let delim = delimiter
        let delimWord = SWAR.broadcast(delim)
        while true {
            let fieldLine = line, fieldStart = p, fieldLineStart = lineStart
            if p < end && buf[p] == quote {
                p += 1
                var runStart = p
                while true {
                    if p == end {
                        if !eof { return .needMore }
                        let at = TextPosition(line: fieldLine, column: column(from: fieldLineStart, to: fieldStart))
                        throw KaifangError.badInput("\(fileName):\(at): field \(endsCount + 1): a quoted field is never closed: add the closing '\"' (a quote inside a field is written twice: \"\")")
                    }
                    let b = buf[p]
                    if b == quote {
                        if p + 1 == end && !eof { return .needMore }
                        storage.append(contentsOf: UnsafeBufferPointer(start: buf + runStart, count: p - runStart))
                        if p + 1 < end && buf[p + 1] == quote {
                            storage.append(quote)
                            p += 2
                            runStart = p
                            continue
                        }
                        p += 1
                        break
                    }
                    if b == lf { line += 1; lineStart = p + 1 }
                    p += 1
                }
                if p < end {
                    let b = buf[p]
                    if b != delim && b != cr && b != lf {
                        self.line = line; self.lineStart = lineStart
                        let col = column(from: lineStart, to: p)
                        throw KaifangError.badInput("\(fileName):\(line):\(col): field \(endsCount + 1): unexpected character after a closing quote: a field that starts with '\"' must end with '\"'; write a quote inside it as \"\"")
                    }
                }
                pushEnd(storage.count)
            } else {
                let runStart = p
                // Eight bytes at a time: the lowest byte equal to a delimiter, LF or CR is
                // the lowest set high bit of the zero-byte test (higher ones may be false).
                scan: while p + 8 <= end {
                    let w = SWAR.load(buf + p)
                    let hit = SWAR.zeroBytes(w ^ delimWord) | SWAR.zeroBytes(w ^ 0x0A0A_0A0A_0A0A_0A0A) | SWAR.zeroBytes(w ^ 0x0D0D_0D0D_0D0D_0D0D)
                    if hit != 0 { p += SWAR.firstByte(hit); break scan }
                    p += 8
                }
                while p < end {
                    let b = buf[p]
                    if b == delim || b == lf || b == cr { break }
                    p += 1
                }
                if p == end && !eof { return .needMore }
                storage.append(contentsOf: UnsafeBufferPointer(start: buf + runStart, count: p - runStart))
                pushEnd(storage.count)
            }
            if p == end {
                // Last record without a final newline.
                pos = p
                self.line = line; self.lineStart = lineStart
                return .record
            }
            let b = buf[p]
            if b == delim { p += 1; continue }
            if b == cr {
                if p + 1 == end && !eof { return .needMore }
                p += 1
                if p < end && buf[p] == lf { p += 1 }
            } else {
                p += 1 // lf
            }
            line += 1
            lineStart = p
            pos = p
            self.line = line; self.lineStart = lineStart
            return .record
        }
    }
}
