import Audit
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Ingest
import KaifangCore
import Logging
import Storage

/// Fetches harvested sources with conditional GET (`If-None-Match`, `If-Modified-Since`) and
/// makes a new version only when the content changed. A failure is logged, retried with
/// backoff, and never replaces a good version.
public struct Harvester: Sendable {
    public let catalog: any CatalogStore
    let logger: Logger

    public init(catalog: any CatalogStore, logger: Logger) {
        self.catalog = catalog
        self.logger = logger
    }

    /// What one sync did.
    public enum Outcome: Sendable, Equatable {
        /// 304 Not Modified.
        case notModified
        /// 200 with the same content as the last fetch.
        case unchanged
        /// A new version.
        case imported(version: Int, rows: Int)
        /// The fetch or the import failed; the previous version stays.
        case failed(String)
    }

    /// Parses `30m`, `1h`, `2d`, `90s` into seconds.
    public static func interval(_ s: String) -> Int? {
        guard let unit = s.last, let n = Int(s.dropLast()), n > 0 else { return Int(s) }
        switch unit {
        case "s": return n
        case "m": return n * 60
        case "h": return n * 3600
        case "d": return n * 86_400
        default: return nil
        }
    }

    /// Fetches one source now.
    /// - Throws: `KaifangError.notFound` when the dataset has no source.
    public func sync(_ dataset: String, actor: String = "system:harvest") async throws -> Outcome {
        guard let source = try catalog.source(dataset) else {
            throw KaifangError.notFound("dataset '\(dataset)' has no source: add one with `kaifang source add \(dataset) --url URL --every 1h`")
        }
        let backoff = { (failures: Int) in Date().addingTimeInterval(Double(min(source.intervalSeconds, 60 << min(failures, 10)))) }
        let next = Date().addingTimeInterval(Double(source.intervalSeconds))
        var request = URLRequest(url: URL(string: source.url)!, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 60)
        if let etag = source.etag { request.setValue(etag, forHTTPHeaderField: "If-None-Match") }
        if let lm = source.lastModified { request.setValue(lm, forHTTPHeaderField: "If-Modified-Since") }
        // The fetched file keeps the URL's name, so that errors name it.
        let folder = catalog.directory.temporaryFile(suffix: "")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var base = URL(string: source.url)?.lastPathComponent ?? "source"
        if base.isEmpty || base == "/" { base = "source" }
        if !base.lowercased().hasSuffix(Self.suffix(source.url)) { base += Self.suffix(source.url) }
        let tmp = (folder as NSString).appendingPathComponent(base)
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            guard let http = response as? HTTPURLResponse else { throw KaifangError.runtime("not an HTTP response") }
            let etag = http.value(forHTTPHeaderField: "ETag")
            let lastModified = http.value(forHTTPHeaderField: "Last-Modified")
            if http.statusCode == 304 {
                try catalog.recordFetch(dataset: dataset, etag: etag, lastModified: lastModified, contentSHA256: nil, error: nil, nextDue: next)
                return .notModified
            }
            guard http.statusCode == 200 else { throw KaifangError.runtime("HTTP \(http.statusCode)") }
            let sha = SHA256.hash(data: data).hexString
            if sha == source.contentSHA256 {
                try catalog.recordFetch(dataset: dataset, etag: etag, lastModified: lastModified, contentSHA256: sha, error: nil, nextDue: next)
                return .unchanged
            }
            try data.write(to: URL(fileURLWithPath: tmp))
            let publisher = Publisher(catalog: catalog)
            let name = URL(string: source.url)?.lastPathComponent ?? "source"
            let outcome: ImportOutcome
            if tmp.hasSuffix(".jsonl") {
                outcome = try publisher.importJSONLines(path: tmp, datasetID: dataset, manifest: nil, actor: actor)
            } else if Bundle.isBundle(tmp) {
                outcome = try publisher.importBundle(path: tmp, datasetID: dataset, manifest: nil, actor: actor)
            } else {
                outcome = try publisher.importCSV(path: tmp, datasetID: dataset, manifest: nil, encoding: nil, actor: actor)
            }
            try catalog.recordFetch(dataset: dataset, etag: etag, lastModified: lastModified, contentSHA256: sha, error: nil, nextDue: next)
            if source.publish, let tier = try catalog.dataset(dataset)?.tier {
                try Stewardship(catalog: catalog).publish(dataset: dataset, version: outcome.version.number, tier: tier, actor: actor)
            }
            logger.info("harvested", metadata: ["dataset.id": .string(dataset), "version": .stringConvertible(outcome.version.number), "source": .string(name)])
            return .imported(version: outcome.version.number, rows: outcome.version.rowCount)
        } catch {
            // The message names the problem (HTTP status, file:line:column); never a value.
            let message = (error as? KaifangError)?.message.split(separator: "\n").prefix(2).joined(separator: " ") ?? String(describing: type(of: error))
            try? catalog.recordFetch(dataset: dataset, etag: nil, lastModified: nil, contentSHA256: nil, error: message, nextDue: backoff(source.failures + 1))
            logger.warning("harvest failed", metadata: ["dataset.id": .string(dataset), "error": .string(message), "failures": .stringConvertible(source.failures + 1)])
            return .failed(message)
        }
    }

    static func suffix(_ url: String) -> String {
        let path = (URL(string: url)?.path ?? "").lowercased()
        for s in [".jsonl", ".ndjson", ".tar.gz", ".tgz", ".zip"] where path.hasSuffix(s) { return s == ".ndjson" ? ".jsonl" : s }
        return ".csv"
    }

    /// Syncs every due source once.
    public func syncDue() async {
        guard let due = try? catalog.sources(dueAt: AuditChain.timestamp()) else { return }
        for s in due { _ = try? await sync(s.dataset) }
    }
}
