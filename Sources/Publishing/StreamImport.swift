import Foundation
import Ingest
import KaifangCore
import Storage

/// What an uploaded stream holds: delimited text or JSON Lines (read as they arrive), or a
/// bundle (kept whole first: a zip's directory is at its end).
public enum StreamFormat: Sendable, Equatable {
    /// CSV with `delimiter`, in `encoding` (nil: detected from the first MiB).
    case delimited(delimiter: UInt8, encoding: TextEncoding?)
    case jsonLines
    /// A `.zip` or `.tar.gz` bundle; `suffix` is the file extension it is kept under.
    case bundle(suffix: String)

    /// The format of an HTTP body from its `Content-Type` (media type and `charset`).
    /// - Throws: `KaifangError.badInput` naming the media types taken.
    public static func of(contentType: String) throws -> StreamFormat {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        let media = parts.first?.lowercased() ?? ""
        var charset: String?
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if kv.count == 2, kv[0].lowercased() == "charset" { charset = kv[1] }
        }
        let encoding = try charset.flatMap { c -> TextEncoding? in
            do { return try TextEncoding.parse(c) } catch {
                throw KaifangError.badInput("charset=\(c) is not supported: send UTF-8 or GB18030 (charset=utf-8 or charset=gb18030), or leave charset out to have it detected")
            }
        }
        switch media {
        case "text/csv": return .delimited(delimiter: UInt8(ascii: ","), encoding: encoding)
        case "text/tab-separated-values": return .delimited(delimiter: UInt8(ascii: "\t"), encoding: encoding)
        case "application/x-ndjson", "application/jsonl", "application/jsonlines": return .jsonLines
        case "application/zip": return .bundle(suffix: ".zip")
        case "application/gzip", "application/x-gzip", "application/x-tar+gzip": return .bundle(suffix: ".tar.gz")
        default:
            throw KaifangError.badInput("Content-Type '\(media)' is not taken: send text/csv (charset utf-8 or gb18030), text/tab-separated-values, application/x-ndjson (JSON Lines), application/zip or application/gzip (a .tar.gz bundle)")
        }
    }

    /// The file name its refusals are reported against.
    public var fileName: String {
        switch self {
        case .delimited(let d, _): d == UInt8(ascii: "\t") ? "upload.tsv" : "upload.csv"
        case .jsonLines: "upload.jsonl"
        case .bundle(let suffix): "upload" + suffix
        }
    }
}

extension Publisher {
    /// Imports a stream of delimited text or JSON Lines as a new version of an existing
    /// dataset, reading it as it arrives (memory does not grow with it). Nothing is written
    /// unless the whole stream is read and valid.
    /// - Throws: `KaifangError.badInput` listing refused rows as `upload.csv:line:column`, or
    ///   whatever `source` throws (an upload cut short); `.notFound` for an unknown dataset.
    public func importStream(_ source: any ByteSource, format: StreamFormat, datasetID: String, actor: String,
                             upload: UploadKey?) throws -> ImportOutcome {
        let manifest = try catalog.requireDataset(datasetID).manifest
        let name = format.fileName
        let rows: any RowSource
        switch format {
        case .delimited(let delimiter, let given):
            var text: any ByteSource = source
            let encoding: TextEncoding
            if let given {
                encoding = given
            } else {
                let (sample, replay) = try PrefixedByteSource.sample(source, count: 1 << 20)
                encoding = TextEncoding.detect(sample: sample[...])
                text = replay
            }
            if encoding == .gb18030 { text = try GB18030Source(text, fileName: name) }
            rows = try CSVRowSource(reader: CSVReader(source: text, fileName: name, delimiter: delimiter), manifest: manifest, byteSource: text)
        case .jsonLines:
            rows = JSONLinesRowSource(source: source, fileName: name, manifest: manifest)
        case .bundle:
            throw KaifangError.badInput("a bundle is imported from a file (importBundle), not read as a stream")
        }
        return try importRows(rows, sourceName: name, onError: .reject, actor: actor, upload: upload, remedy: "Fix the file and send it again")
    }
}
