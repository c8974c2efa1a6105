import Foundation
import KaifangCore

/// Reads JSON Lines (one JSON object per line) whose keys name a manifest's fields (by name or
/// title), converting each value with the same rules as CSV: a number in an integer field must
/// be integral, dates must be real, strings must be valid UTF-8. Blank lines are skipped.
public final class JSONLinesRowSource: RowSource {
    public let manifest: DatasetManifest
    private let source: any ByteSource
    private let fileName: String
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0, end = 0, eof = false
    private var line = 0
    private var pending: [UInt8] = []
    private var read: Int64 = 0
    private let fieldIndex: [String: Int]

    /// A JSON scalar as decoded (objects and arrays are refused).
    enum Scalar: Decodable {
        case null, bool(Bool), integer(Int64), number(Double), string(String)
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .integer(i) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "an object or array where a value was expected") }
        }
        var text: String? {
            switch self {
            case .null: nil
            case .bool(let b): b ? "true" : "false"
            case .integer(let i): String(i)
            case .number(let d): Cell.format(d)
            case .string(let s): s
            }
        }
    }

    public init(source: any ByteSource, fileName: String, manifest: DatasetManifest) {
        self.source = source
        self.fileName = fileName
        self.manifest = manifest
        var index: [String: Int] = [:]
        for (i, f) in manifest.fields.enumerated() {
            index[f.name] = i
            if let t = f.title { index[t] = i }
        }
        fieldIndex = index
    }

    public var bytesRead: Int64 { read }

    /// The next line's bytes, without the line end; nil at the end.
    private func nextLine() throws -> [UInt8]? {
        pending.removeAll(keepingCapacity: true)
        while true {
            if start == end {
                if eof { return pending.isEmpty ? nil : pending }
                let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                if n == 0 { eof = true; continue }
                start = 0; end = n
                read += Int64(n)
            }
            if let nl = buffer[start..<end].firstIndex(of: 0x0A) {
                pending.append(contentsOf: buffer[start..<nl])
                start = nl + 1
                if pending.last == 0x0D { pending.removeLast() }
                return pending
            }
            pending.append(contentsOf: buffer[start..<end])
            start = end
            if pending.count > 64 << 20 { throw KaifangError.badInput("\(fileName):\(line + 1): a line is longer than 64 MiB") }
        }
    }

    public func next() throws -> RowResult? {
        while true {
            guard var bytes = try nextLine() else { return nil }
            line += 1
            if line == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let raw = String(decoding: bytes, as: UTF8.self)
            let object: [String: Scalar]
            do {
                object = try JSONDecoder().decode([String: Scalar].self, from: Data(bytes))
            } catch {
                let issue = ImportIssue(file: fileName, position: TextPosition(line: line, column: 1), field: nil,
                                        reason: "not a JSON object of scalar values: each line must be one {\"field\": value, …} object")
                return .rejected([issue], raw: [raw])
            }
            var cells = Array(repeating: Cell.null, count: manifest.fields.count)
            var issues: [ImportIssue] = []
            for key in object.keys.sorted() {
                guard let i = fieldIndex[key] else {
                    issues.append(ImportIssue(file: fileName, position: TextPosition(line: line, column: 1), field: nil,
                                              reason: "key '\(key)' is not a field of the manifest: add it to 'fields' or drop it"))
                    continue
                }
                guard var text = object[key]!.text else { continue }
                let field = manifest.fields[i]
                if case .bool = object[key]!, field.type != .boolean {
                    issues.append(ImportIssue(file: fileName, position: TextPosition(line: line, column: 1), field: field.name, reason: "expected \(field.type.rawValue), found a boolean"))
                    continue
                }
                let result = text.withUTF8 { CSVRowSource.convert($0, field: field) }
                switch result {
                case .success(let cell): cells[i] = cell
                case .failure(let p): issues.append(ImportIssue(file: fileName, position: TextPosition(line: line, column: 1), field: field.name, reason: p.reason))
                }
            }
            if !issues.isEmpty { return .rejected(issues, raw: [raw]) }
            return .row(cells)
        }
    }
}
