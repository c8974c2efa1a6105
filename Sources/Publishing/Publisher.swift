import Foundation
import Ingest
import KaifangCore
import Storage
import VersionFormat

/// What to do with rows that fail validation.
public enum OnError: String, Sendable, CaseIterable {
    /// Refuse the whole file; nothing is written.
    case reject
    /// Import the good rows; write the refused ones, with reasons, to `rejects/`.
    case skip
}

/// Imports files into immutable versions and publishes them: the one path that the CLI, the
/// demo and the harvester share.
public struct Publisher: Sendable {
    public let catalog: any CatalogStore
    /// How many issues an error message lists before counting the rest.
    public static let listedIssues = 20

    public init(catalog: any CatalogStore) { self.catalog = catalog }

    /// The manifest to import `datasetID` with: the given one (whose id must match), else the
    /// catalog's current one.
    /// - Throws: `KaifangError.badInput` when neither exists or the ids differ.
    public func resolveManifest(datasetID: String, given: DatasetManifest?) throws -> DatasetManifest {
        guard DatasetManifest.isValidID(datasetID) else {
            throw KaifangError.badInput("--id '\(datasetID)' is not a valid dataset id: use 1–64 lower-case letters, digits, '-' or '_'")
        }
        if let given {
            guard given.id == datasetID else {
                throw KaifangError.badInput("the manifest's id is '\(given.id)' but --id is '\(datasetID)': make them the same")
            }
            return given
        }
        guard let existing = try catalog.dataset(datasetID) else {
            throw KaifangError.badInput("dataset '\(datasetID)' is not in the catalog yet: give --manifest FILE (a dataset.json describing its fields; see docs/steward-guide.md)")
        }
        return existing.manifest
    }

    /// Imports a CSV file as a new version of a dataset. Nothing is written to the catalog unless
    /// the whole file is valid (or, with `.skip`, unless at least the header is valid).
    /// - Parameter progress: called now and then with (rows, bytes read).
    /// - Throws: `KaifangError.badInput` listing `file:line:column: field 'x': reason` for the
    ///   first 20 problems and the count of the rest.
    public func importCSV(path: String, datasetID: String, manifest given: DatasetManifest?, onError: OnError = .reject,
                          delimiter: UInt8 = UInt8(ascii: ","), encoding: TextEncoding? = nil, inferIfNew: Bool = false, actor: String,
                          progress: ((Int, Int64) -> Void)? = nil) throws -> ImportOutcome {
        let manifest: DatasetManifest
        if given == nil, inferIfNew, DatasetManifest.isValidID(datasetID), try catalog.dataset(datasetID) == nil {
            let (reader, _) = try CSVRowSource.openReader(path: path, delimiter: delimiter, encoding: encoding)
            manifest = try SchemaInference.infer(reader: reader, id: datasetID)
        } else {
            manifest = try resolveManifest(datasetID: datasetID, given: given)
        }
        let source = try CSVRowSource(path: path, manifest: manifest, delimiter: delimiter, encoding: encoding)
        return try importRows(source, sourceName: (path as NSString).lastPathComponent, onError: onError, actor: actor, progress: progress)
    }

    /// Imports a JSON Lines file (one object per line) as a new version.
    /// - Throws: `KaifangError.badInput` listing the refused lines.
    public func importJSONLines(path: String, datasetID: String, manifest given: DatasetManifest?, onError: OnError = .reject,
                                actor: String, progress: ((Int, Int64) -> Void)? = nil) throws -> ImportOutcome {
        let manifest = try resolveManifest(datasetID: datasetID, given: given)
        let name = (path as NSString).lastPathComponent
        let source = JSONLinesRowSource(source: try FileByteSource(path: path), fileName: name, manifest: manifest)
        return try importRows(source, sourceName: name, onError: onError, actor: actor, progress: progress)
    }

    /// Imports a bundle (`.zip`/`.tar.gz` holding `datapackage.json` and a CSV) as a new version:
    /// the manifest given, else the one Kaifang embedded when it exported the bundle, else the
    /// package's Table Schema (levels L2; classify after).
    /// - Throws: `KaifangError.badInput` for a bundle without a package or a CSV resource.
    public func importBundle(path: String, datasetID: String, manifest given: DatasetManifest?, onError: OnError = .reject,
                             actor: String, upload: UploadKey? = nil, progress: ((Int, Int64) -> Void)? = nil) throws -> ImportOutcome {
        let descriptor = try Bundle.descriptor(path: path)
        var (manifest, member) = try Bundle.manifest(descriptor: descriptor, id: datasetID)
        if let given {
            manifest = try resolveManifest(datasetID: datasetID, given: given)
        } else if let existing = try catalog.dataset(datasetID) {
            manifest = existing.manifest
        }
        let source = try Bundle.MemberSource(bundle: path, member: member)
        let name = (path as NSString).lastPathComponent + "/" + member
        let rows = try CSVRowSource(reader: CSVReader(source: source, fileName: name), manifest: manifest, byteSource: source)
        return try importRows(rows, sourceName: (path as NSString).lastPathComponent, onError: onError, actor: actor, upload: upload, progress: progress)
    }

    /// Imports rows from any row source as a new version.
    /// - Throws: `KaifangError.badInput` (invalid rows), `.runtime` (disk).
    /// With `upload`, the version answers that upload (`CatalogStore.commitVersion`).
    /// `remedy` is what a refusal tells the sender to do.
    public func importRows(_ source: any RowSource, sourceName: String, onError: OnError, actor: String, upload: UploadKey? = nil,
                           remedy: String = "Fix the file, or import the good rows with --on-error skip",
                           progress: ((Int, Int64) -> Void)? = nil) throws -> ImportOutcome {
        let manifest = source.manifest
        let tmp = catalog.directory.temporaryFile(suffix: ".sqlite")
        // Whatever stops the import before its commit leaves no file behind (the commit moves it).
        defer { unlink(tmp) }
        let writer = try VersionWriter(path: tmp, manifest: manifest)
        // Reading and validating on this thread, writing SQLite on another: the two halves
        // of an import take about the same time, and the machine has two cores.
        let pipe = RowPipe(name: "kaifang-import") { batch in for row in batch { try writer.append(row) } }
        defer { pipe.stop() }
        // The quality report's figures are gathered on a third thread from the same batches
        // (`KAIFANG_BENCH_NO_QUALITY=1` leaves them out: bench/quality.sh's control, never a setting).
        let profiler = ProcessInfo.processInfo.environment["KAIFANG_BENCH_NO_QUALITY"] == "1" ? nil : QualityProfiler(manifest: manifest)
        let profiling = profiler.map { p in RowPipe(name: "kaifang-quality") { p.add(batch: $0) } }
        defer { profiling?.stop() }
        var refused: [String: Int] = [:]
        var batch: [[Cell]] = []
        batch.reserveCapacity(RowPipe.batchSize)
        var issues: [ImportIssue] = []
        var badRows = 0
        var rejects: RejectsWriter?
        defer { rejects?.close() }
        var seen = 0
        while let result = try source.next() {
            seen += 1
            switch result {
            case .row(let cells):
                if badRows == 0 || onError == .skip {
                    batch.append(cells)
                    if batch.count == RowPipe.batchSize {
                        try pipe.put(batch)
                        try profiling?.put(batch)
                        batch.removeAll(keepingCapacity: true)
                    }
                }
            case .rejected(let rowIssues, let raw):
                badRows += 1
                for issue in rowIssues { if let f = issue.field { refused[f, default: 0] += 1 } }
                if issues.count < Self.listedIssues { issues.append(contentsOf: rowIssues.prefix(Self.listedIssues - issues.count)) }
                if onError == .skip {
                    if rejects == nil {
                        rejects = try RejectsWriter(path: catalog.directory.rejectsDir.appendingPathComponent("\(manifest.id)-\(Self.stamp()).csv").path)
                    }
                    try rejects?.write(issues: rowIssues, raw: raw)
                }
            }
            if seen % 65_536 == 0 { progress?(seen, source.bytesRead) }
        }
        progress?(seen, source.bytesRead)
        if badRows > 0 && onError == .reject {
            var lines = issues.map(\.description)
            let more = badRows - Set(issues.map(\.position.line)).count
            if more > 0 { lines.append("… and \(more) more row\(more == 1 ? "" : "s") with problems") }
            throw KaifangError.badInput("\(sourceName): \(badRows) row\(badRows == 1 ? "" : "s") refused; nothing was imported. \(remedy):\n" + lines.joined(separator: "\n"))
        }
        if !batch.isEmpty {
            try pipe.put(batch)
            try profiling?.put(batch)
        }
        try pipe.drain()
        try profiling?.drain()
        let sha = try writer.finish()
        let version = try catalog.commitVersion(manifest: manifest, temporaryFile: tmp, rowCount: writer.rowCount, sha256: sha,
                                                source: sourceName, actor: actor, rejected: badRows, upload: upload)
        // The changes from the version before, by the primary key; a dataset without one (or
        // whose key changed) has none, and the version stands as imported.
        if manifest.primaryKey != nil { _ = try? VersionDiff.of(version.dataset, version.number, catalog: catalog) }
        if let profiler {
            try QualityReport.keep(profiler.report(dataset: version.dataset, version: version.number, rejectedRows: badRows, refused: refused), catalog: catalog)
        }
        return ImportOutcome(version: version, rejected: badRows, rejectsFile: rejects?.path)
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd'T'HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }
}

/// Hands batches of rows to a thread that consumes them (appends them to a `VersionWriter`,
/// profiles them), in order, with a bounded queue (memory stays at a few batches). What the
/// consumer touches is touched only by that thread until `drain` returns.
final class RowPipe: @unchecked Sendable {
    static let batchSize = 2048
    private static let maxQueued = 4
    private let consume: ([[Cell]]) throws -> Void
    private let cond = NSCondition()
    private var queue: [[[Cell]]] = []
    private var closed = false
    private var failure: (any Error)?
    private var running = true

    /// - Parameter name: the thread's name (15 bytes at most, as Linux keeps them).
    init(name: String, consume: @escaping ([[Cell]]) throws -> Void) {
        self.consume = consume
        let t = Thread { [self] in
            Thread.current.name = name
            run()
        }
        t.start()
    }

    private func run() {
        while true {
            cond.lock()
            while queue.isEmpty && !closed { cond.wait() }
            if queue.isEmpty || failure != nil {
                running = false
                cond.broadcast()
                cond.unlock()
                return
            }
            let batch = queue.removeFirst()
            cond.broadcast()
            cond.unlock()
            do {
                try consume(batch)
            } catch {
                cond.lock()
                failure = error
                queue.removeAll()
                cond.broadcast()
                cond.unlock()
            }
        }
    }

    /// Queues a batch (waits while the queue is full).
    /// - Throws: the writer's error, once it has failed.
    func put(_ batch: [[Cell]]) throws {
        cond.lock()
        defer { cond.unlock() }
        while queue.count >= Self.maxQueued && failure == nil && running { cond.wait() }
        if let failure { throw failure }
        queue.append(batch)
        cond.broadcast()
    }

    /// Waits until every queued row is written.
    /// - Throws: the writer's error.
    func drain() throws {
        stop()
        cond.lock()
        defer { cond.unlock() }
        if let failure { throw failure }
    }

    /// Stops the thread after what is queued (or at once after a failure) and waits for it.
    func stop() {
        cond.lock()
        closed = true
        cond.broadcast()
        while running { cond.wait() }
        cond.unlock()
    }
}

/// Writes refused rows with their reasons as CSV (steward-only: it holds raw values).
final class RejectsWriter {
    let path: String
    private let handle: FileHandle

    init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let h = FileHandle(forWritingAtPath: path) else {
            throw KaifangError.runtime("cannot create the rejects file \(path)")
        }
        handle = h
        handle.write(Data("line,column,field,reason,row\n".utf8))
    }

    func write(issues: [ImportIssue], raw: [String]) throws {
        let row = raw.map(CSVBytes.field).joined(separator: ",")
        for issue in issues {
            let line = [String(issue.position.line), String(issue.position.column), issue.field ?? "", issue.reason].map(CSVBytes.field).joined(separator: ",") + "," + CSVBytes.field(row) + "\n"
            handle.write(Data(line.utf8))
        }
    }

    func close() { try? handle.close() }
}
