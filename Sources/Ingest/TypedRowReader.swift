import KaifangCore
import Foundation

/// One problem found in an input row: where, which field, why. Never carries the value itself.
public struct ImportIssue: Sendable, Equatable, CustomStringConvertible {
    /// The file name.
    public var file: String
    /// Where in the file.
    public var position: TextPosition
    /// The field concerned, if any.
    public var field: String?
    /// Why the value or row was refused, and what to do.
    public var reason: String

    public init(file: String, position: TextPosition, field: String?, reason: String) {
        self.file = file; self.position = position; self.field = field; self.reason = reason
    }

    /// `file:line:column: field 'x': reason`.
    public var description: String {
        if let field { return "\(file):\(position): field '\(field)': \(reason)" }
        return "\(file):\(position): \(reason)"
    }
}

/// A row read from a file: typed values in manifest field order, or the reasons it was refused.
public enum RowResult: Sendable {
    /// A valid row, one cell per manifest field.
    case row([Cell])
    /// A refused row: its issues and its raw fields (for a rejects file).
    case rejected([ImportIssue], raw: [String])
}

/// Something that yields typed rows for a manifest: a CSV file, a JSON Lines file, a bundle member.
public protocol RowSource: AnyObject {
    /// The manifest the rows conform to.
    var manifest: DatasetManifest { get }
    /// The next row, or nil at the end.
    /// - Throws: `KaifangError.badInput` for a structural problem that stops reading.
    func next() throws -> RowResult?
    /// Bytes consumed so far, for progress.
    var bytesRead: Int64 { get }
}

/// Reads a CSV file whose header names the fields of a manifest (by name or by title) and
/// converts each value to its field's type, checking bounds and UTF-8.
public final class CSVRowSource: RowSource {
    public let manifest: DatasetManifest
    private let reader: CSVReader
    private let byteSource: (any ByteSource)?
    /// For each manifest field, the CSV column holding it.
    private let columnOfField: [Int]
    private let headerCount: Int
    /// What each field's values are checked against (no names: nothing to retain per value).
    private let checks: [FieldCheck]

    /// Opens the reader and reads the header.
    /// - Throws: `KaifangError.badInput` naming the header cell that does not match the manifest.
    public init(reader: CSVReader, manifest: DatasetManifest, byteSource: (any ByteSource)? = nil) throws {
        self.reader = reader
        self.manifest = manifest
        self.byteSource = byteSource
        guard try reader.next() else {
            throw KaifangError.badInput("\(reader.fileName): the file is empty: it needs a header line naming the fields (\(manifest.fields.map(\.name).joined(separator: ", ")))")
        }
        var columnOfField = Array(repeating: -1, count: manifest.fields.count)
        for col in 0..<reader.fieldCount {
            let header = reader.string(col)
            guard let fi = manifest.fields.firstIndex(where: { $0.matches(header: header) }) else {
                let pos = reader.position(ofField: col)
                throw KaifangError.badInput("\(reader.fileName):\(pos): header column \(col + 1) '\(header.trimmingCharacters(in: .whitespaces))' is not a field of the manifest: add it to 'fields' or remove the column (fields: \(manifest.fields.map(\.name).joined(separator: ", ")))")
            }
            if columnOfField[fi] != -1 {
                let pos = reader.position(ofField: col)
                throw KaifangError.badInput("\(reader.fileName):\(pos): header column \(col + 1) names field '\(manifest.fields[fi].name)' a second time: remove one of the two columns")
            }
            columnOfField[fi] = col
        }
        if let missing = columnOfField.firstIndex(of: -1) {
            throw KaifangError.badInput("\(reader.fileName):1:1: field '\(manifest.fields[missing].name)' of the manifest has no column in the header: add a column named '\(manifest.fields[missing].name)'\(manifest.fields[missing].title.map { " or '\($0)'" } ?? "") or remove the field")
        }
        self.columnOfField = columnOfField
        self.headerCount = reader.fieldCount
        self.checks = manifest.fields.map(FieldCheck.init)
    }

    /// Convenience: opens a CSV file for a manifest, in a given encoding (nil: detect it).
    /// - Throws: `KaifangError.notFound` or `.badInput`.
    public convenience init(path: String, manifest: DatasetManifest, delimiter: UInt8 = UInt8(ascii: ","), encoding: TextEncoding? = .utf8) throws {
        let reader = try Self.openReader(path: path, delimiter: delimiter, encoding: encoding)
        try self.init(reader: reader.0, manifest: manifest, byteSource: reader.1)
    }

    /// A CSV reader over a file in `encoding` (nil: detect it), transcoding GB18030 to UTF-8.
    /// - Throws: `KaifangError.notFound`, `.runtime`.
    public static func openReader(path: String, delimiter: UInt8 = UInt8(ascii: ","), encoding: TextEncoding?) throws -> (CSVReader, any ByteSource) {
        let name = (path as NSString).lastPathComponent
        let file = try FileByteSource(path: path)
        let enc = try encoding ?? TextEncoding.detect(path: path)
        let source: any ByteSource = enc == .gb18030 ? try GB18030Source(file, fileName: name) : file
        return (CSVReader(source: source, fileName: name, delimiter: delimiter), source)
    }

    public var bytesRead: Int64 {
        if let f = byteSource as? FileByteSource { return f.bytesRead }
        if let g = byteSource as? GB18030Source { return g.bytesRead }
        return 0
    }

    public func next() throws -> RowResult? {
        guard try reader.next() else { return nil }
        if reader.fieldCount != headerCount {
            let last = reader.fieldCount - 1
            let pos = reader.fieldCount < headerCount ? reader.position(afterField: last) : reader.position(ofField: headerCount)
            let issue = ImportIssue(file: reader.fileName, position: pos, field: nil,
                                    reason: "expected \(headerCount) columns as in the header, found \(reader.fieldCount): check for a missing or extra delimiter, or quote a value that contains one")
            return .rejected([issue], raw: reader.strings())
        }
        var issues: [ImportIssue] = []
        var cells: [Cell] = []
        cells.reserveCapacity(checks.count)
        for fi in 0..<checks.count {
            let col = columnOfField[fi]
            let outcome: Result<Cell, FieldProblem> = reader.withField(col) { bytes in
                Self.convert(bytes, checks[fi])
            }
            switch outcome {
            case .success(let cell): cells.append(cell)
            case .failure(let problem):
                cells.append(.null)
                var pos = reader.position(ofField: col)
                pos.column += problem.offsetInScalars
                issues.append(ImportIssue(file: reader.fileName, position: pos, field: manifest.fields[fi].name, reason: problem.reason))
            }
        }
        if !issues.isEmpty { return .rejected(issues, raw: reader.strings()) }
        return .row(cells)
    }

    /// Why a value was refused, and at which scalar offset inside the field.
    public struct FieldProblem: Error, Sendable {
        public var reason: String
        public var offsetInScalars: Int
    }

    /// A field's type and bounds: what its values are checked against.
    struct FieldCheck {
        var type: FieldType
        var min: Double?
        var max: Double?
        init(_ f: FieldSpec) { type = f.type; min = f.min; max = f.max }
    }

    /// Converts one raw value to a cell of `field`'s type.
    public static func convert(_ bytes: UnsafeBufferPointer<UInt8>, field: FieldSpec) -> Result<Cell, FieldProblem> {
        convert(bytes, FieldCheck(field))
    }

    /// Converts one raw value to a cell of the checked type.
    @inline(__always)
    static func convert(_ bytes: UnsafeBufferPointer<UInt8>, _ field: FieldCheck) -> Result<Cell, FieldProblem> {
        if field.type == .string { return text(bytes) }
        if ValueParser.trimmed(bytes).isEmpty {
            return .success(.null)
        }
        // The other types accept only ASCII, so only a value they refuse is checked for UTF-8
        // (that is the likelier cause to report).
        let parsed = convertTyped(bytes, field)
        if case .failure = parsed, ValueParser.validUTF8Prefix(bytes) != bytes.count {
            return .failure(invalidUTF8(bytes))
        }
        return parsed
    }

    /// A text value, validated once: decoding replaces each invalid sequence with U+FFFD, and a
    /// replacement always changes the bytes (EF BF BD is itself valid, so it never stands for
    /// an invalid sequence of the input); decoded text equal to the input is valid.
    /// (String(validating:) would do the same but is not specialized: it looked up generic
    /// metadata on every call.)
    @inline(__always)
    static func text(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<Cell, FieldProblem> {
        let s = String(decoding: bytes, as: UTF8.self)
        let same = s.utf8.count == bytes.count && (bytes.isEmpty || s.utf8.withContiguousStorageIfAvailable {
            memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0
        } ?? s.utf8.elementsEqual(bytes))
        guard same else { return .failure(invalidUTF8(bytes)) }
        return ValueParser.trimmed(bytes).isEmpty ? .success(.null) : .success(.text(s))
    }

    static func invalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> FieldProblem {
        let valid = ValueParser.validUTF8Prefix(bytes)
        let scalarsBefore = String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<valid]), as: UTF8.self).unicodeScalars.count
        return FieldProblem(reason: "invalid UTF-8 (byte 0x\(String(bytes[valid], radix: 16, uppercase: true))): the file is not UTF-8; if it came from Excel it is probably GBK: import with --encoding gb18030", offsetInScalars: scalarsBefore)
    }

    @inline(__always)
    static func convertTyped(_ bytes: UnsafeBufferPointer<UInt8>, _ field: FieldCheck) -> Result<Cell, FieldProblem> {
        switch field.type {
        case .string:
            return text(bytes)
        case .integer:
            guard let v = ValueParser.integer(bytes) else {
                return .failure(FieldProblem(reason: "expected an integer (digits with an optional sign), found \(shape(bytes))", offsetInScalars: 0))
            }
            if let problem = bounds(Double(v), field) { return .failure(problem) }
            return .success(.integer(v))
        case .number:
            guard let v = ValueParser.number(bytes) else {
                return .failure(FieldProblem(reason: "expected a number (like 12, -3.5 or 1e6), found \(shape(bytes))", offsetInScalars: 0))
            }
            if let problem = bounds(v, field) { return .failure(problem) }
            return .success(.real(v))
        case .boolean:
            guard let v = ValueParser.boolean(bytes) else {
                return .failure(FieldProblem(reason: "expected a boolean (true/false, 1/0, yes/no, 是/否), found \(shape(bytes))", offsetInScalars: 0))
            }
            return .success(.integer(v ? 1 : 0))
        case .date:
            guard let v = ValueParser.date(bytes) else {
                return .failure(FieldProblem(reason: "expected a real calendar date YYYY-MM-DD (or YYYY/MM/DD, YYYYMMDD), found \(shape(bytes))", offsetInScalars: 0))
            }
            return .success(.text(v))
        case .datetime:
            guard let v = ValueParser.datetime(bytes) else {
                return .failure(FieldProblem(reason: "expected a datetime YYYY-MM-DD HH:MM[:SS] with an optional zone, found \(shape(bytes))", offsetInScalars: 0))
            }
            return .success(.text(v))
        }
    }

    static func bounds(_ v: Double, _ field: FieldCheck) -> FieldProblem? {
        if let lo = field.min, v < lo {
            return FieldProblem(reason: "value is below the declared min \(Cell.format(lo)): fix the value or the field's 'min'", offsetInScalars: 0)
        }
        if let hi = field.max, v > hi {
            return FieldProblem(reason: "value is above the declared max \(Cell.format(hi)): fix the value or the field's 'max'", offsetInScalars: 0)
        }
        return nil
    }

    /// Describes a value's shape without revealing it: "text of 5 characters (letters and digits)".
    static func shape(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var letters = false, digits = false, other = false, nonASCII = false
        for b in bytes {
            if b >= 0x30 && b <= 0x39 { digits = true }
            else if (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) { letters = true }
            else if b >= 0x80 { nonASCII = true }
            else { other = true }
        }
        var kinds: [String] = []
        if digits { kinds.append("digits") }
        if letters { kinds.append("letters") }
        if nonASCII { kinds.append("non-ASCII characters") }
        if other { kinds.append("punctuation or spaces") }
        let count = String(decoding: bytes, as: UTF8.self).unicodeScalars.count
        return "text of \(count) character\(count == 1 ? "" : "s") (\(kinds.joined(separator: ", ")))"
    }
}
