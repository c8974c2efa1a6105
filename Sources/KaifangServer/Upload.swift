import CSQLiteGuard
import Foundation
import HTTPTypes
import Hummingbird
import KaifangAPI
import Ingest
import KaifangCore
import NIOCore
import NIOPosix
import Publishing
import Storage

/// `POST /v1/datasets/{id}/versions`: a publisher of the dataset's department (or a steward)
/// sends a file, which becomes a new unpublished version exactly as `kaifang dataset import`
/// makes one. Delimited text and JSON Lines are imported while they arrive: the body goes
/// through a pipe to an import thread, so server memory does not grow with the file and the
/// import is done about when the last byte is. A bundle is kept in a temporary file first.
/// Nothing is written unless the whole body arrived and every row is valid; an
/// `Idempotency-Key` makes a retried upload answer with the version the first one made.
struct Uploads {
    let catalog: any CatalogStore
    let maxBytes: Int64

    static let idempotencyHeader = HTTPField.Name("Idempotency-Key")!
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!

    func handle(id: String, request: Request) async throws -> Response {
        let caller = Caller.current
        let key = try APIHandler.requirePublisher(caller, "upload versions")
        guard let dataset = try catalog.dataset(id) else {
            throw Problem(status: .notFound, detail: "no dataset '\(id)' in the catalog: its first version is imported with a manifest (`kaifang dataset import --manifest`)")
        }
        guard caller.mayImport(dataset) else {
            throw Problem(status: .forbidden, detail: "'\(id)' belongs to \(dataset.manifest.department.isEmpty ? "no department" : dataset.manifest.department); your key publishes for \(key.department ?? "none"): only its own department's publishers upload its versions")
        }
        let upload = try request.headers[Self.idempotencyHeader].map { h in
            do { return UploadKey(keyID: key.id, idempotencyKey: try CatalogRules.idempotencyKey(h)) } catch let e as KaifangError {
                throw Problem(status: .badRequest, detail: e.message)
            }
        }
        if let upload, let made = try catalog.uploadedVersion(upload) {
            return try replay(made, id: id, upload: upload)
        }
        let format: StreamFormat
        do { format = try StreamFormat.of(contentType: request.headers[.contentType] ?? "") } catch let e as KaifangError {
            throw Problem(status: .unsupportedMediaType, detail: e.message)
        }
        let gzip: Bool
        switch request.headers[.contentEncoding]?.lowercased().trimmingCharacters(in: .whitespaces) {
        case nil, "", "identity": gzip = false
        case "gzip", "x-gzip": gzip = true
        case let other?: throw Problem(status: .unsupportedMediaType, detail: "Content-Encoding '\(other)' is not taken: send gzip, or the file as it is")
        }
        if case .bundle = format, gzip {
            throw Problem(status: .unsupportedMediaType, detail: "a bundle is compressed already: send it without Content-Encoding")
        }
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > maxBytes {
            throw tooLarge()
        }
        let publisher = Publisher(catalog: catalog)
        let body = BodyFeed(limit: maxBytes)
        do {
            let outcome: ImportOutcome
            if case .bundle(let suffix) = format {
                let path = catalog.directory.temporaryFile(suffix: suffix)
                defer { unlink(path) }
                try await body.spool(request.body, to: path)
                outcome = try await Self.onThread {
                    try publisher.importBundle(path: path, datasetID: id, manifest: nil, actor: caller.actor, upload: upload)
                }
            } else {
                outcome = try await body.stream(request.body) { source in
                    // Inflated bytes count against the limit too (a small body may inflate a thousandfold).
                    let text: any ByteSource = gzip ? InflatedLimit(try GzipByteSource(source, name: format.fileName), feed: body) : source
                    return try publisher.importStream(text, format: format, datasetID: id, actor: caller.actor, upload: upload)
                }
            }
            return try created(outcome.version, id: id, upload: upload)
        } catch let e as KaifangError {
            if body.overLimit { throw tooLarge() }
            if let upload, e.kind == .conflict, let made = try catalog.uploadedVersion(upload) {
                return try replay(made, id: id, upload: upload)
            }
            switch e.kind {
            case .badInput: throw Problem(status: .unprocessableContent, detail: e.message)
            case .runtime: throw e
            default: throw Problem(e, instance: nil)
            }
        } catch {
            if body.overLimit { throw tooLarge() }
            if let upload, let made = try catalog.uploadedVersion(upload) {
                return try replay(made, id: id, upload: upload)
            }
            // The body failed to arrive (the connection ended): nothing was written, and the
            // answer is seldom read.
            throw Problem(status: .badRequest, detail: "the upload ended before its last byte: nothing was imported; send it again with the same Idempotency-Key")
        }
    }

    func tooLarge() -> Problem {
        Problem(status: .contentTooLarge, detail: "the upload is larger than this server takes (\(maxBytes >> 20) MiB, `kaifang serve --max-upload-mib`): split the file, or ask the platform's steward")
    }

    func replay(_ v: VersionRecord, id: String, upload: UploadKey) throws -> Response {
        guard v.dataset == id else {
            throw Problem(status: .unprocessableContent, detail: "Idempotency-Key '\(upload.idempotencyKey)' already made version \(v.number) of '\(v.dataset)': use a new key for each upload")
        }
        return try respond(.ok, v, id: id, upload: upload, replayed: true)
    }

    func created(_ v: VersionRecord, id: String, upload: UploadKey?) throws -> Response {
        try respond(.created, v, id: id, upload: upload, replayed: false)
    }

    func respond(_ status: HTTPResponse.Status, _ v: VersionRecord, id: String, upload: UploadKey?, replayed: Bool) throws -> Response {
        var object: [String: Any] = [
            "dataset": v.dataset, "number": v.number, "row_count": v.rowCount, "sha256": v.sha256, "source": v.source,
            "created_at": v.createdAt, "created_by": v.createdBy, "published": false,
            "quality": "/v1/datasets/\(id)/versions/\(v.number)/quality",
        ]
        if let upload { object["idempotency_key"] = upload.idempotencyKey }
        if let d = try catalog.dataset(id) { object["published"] = d.publishedVersion == v.number }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .location: "/v1/datasets/\(id)"]
        if replayed { headers[Self.replayedHeader] = "true" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Runs blocking work on a thread of its own (an import takes seconds; the task pool's
    /// threads stay free).
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.name = "kaifang-upload"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

/// Moves a request body to a consumer: through a pipe to an import thread, or into a file;
/// counts its bytes against the limit.
final class BodyFeed: @unchecked Sendable {
    let limit: Int64
    private let lock = NSLock()
    private var complete = false
    private var tooLarge = false

    init(limit: Int64) { self.limit = limit }

    /// Whether the body passed the limit (the answer is then 413).
    var overLimit: Bool { lock.withLock { tooLarge } }

    func passedLimit() { lock.withLock { tooLarge = true } }

    /// Feeds `body` through a pipe to `consume`, which runs on a thread of its own and reads it as
    /// a `ByteSource`. The source ends only after the last byte; a body that stops early (a
    /// connection lost, the limit passed) makes it throw instead, so nothing half-read is kept.
    func stream<T: Sendable>(_ body: RequestBody, consume: @escaping @Sendable (any ByteSource) throws -> T) async throws -> T {
        Self.ignoreSIGPIPE
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw KaifangError.runtime("cannot make a pipe for the upload: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, 1031 /* F_SETPIPE_SZ */, 1 << 20)
        // Chunks go straight into the pipe while it has room; only a full pipe waits, off the task pool.
        _ = fcntl(writeEnd, F_SETFL, fcntl(writeEnd, F_GETFL) | O_NONBLOCK)
        let source = PipeSource(fd: readEnd, feed: self)
        async let imported: T = Uploads.onThread {
            defer {
                close(readEnd)
                // What the import held (index keys, batches) goes back to the system now.
                kaifang_trim_malloc()
            }
            return try consume(source)
        }
        var feedError: (any Error)?
        do {
            var total: Int64 = 0
            for try await buffer in body {
                total += Int64(buffer.readableBytes)
                if total > limit {
                    lock.withLock { tooLarge = true }
                    break
                }
                var rest = buffer
                var open = true
                while open && rest.readableBytes > 0 {
                    switch Self.writeAvailable(writeEnd, &rest) {
                    case .closed: open = false
                    case .progressed: continue
                    case .full:
                        // The import is behind: wait for room on a thread-pool thread.
                        open = try await NIOThreadPool.singleton.runIfActive { Self.waitWritable(writeEnd) }
                    }
                }
                if !open { break }  // the import stopped (a refused row): its error is the answer
            }
            lock.withLock { if !tooLarge { complete = total <= limit } }
        } catch {
            feedError = error
        }
        close(writeEnd)
        let result: Result<T, any Error>
        do { result = .success(try await imported) } catch { result = .failure(error) }
        if let feedError, case .failure = result { throw feedError }
        return try result.get()
    }

    /// Writes `body` into a new file at `path`.
    func spool(_ body: RequestBody, to path: String) async throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KaifangError.runtime("cannot keep the upload at \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var total: Int64 = 0
        for try await buffer in body {
            total += Int64(buffer.readableBytes)
            if total > limit {
                lock.withLock { tooLarge = true }
                throw KaifangError.badInput("the upload passed the size limit")
            }
            guard try await NIOThreadPool.singleton.runIfActive({ Self.writeAll(fd, buffer) }) else {
                throw KaifangError.runtime("cannot keep the upload at \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    enum WriteProgress { case progressed, full, closed }

    /// Writes what a non-blocking pipe takes of `buffer` now, moving its reader index.
    static func writeAvailable(_ fd: Int32, _ buffer: inout ByteBuffer) -> WriteProgress {
        while true {
            let n = buffer.withUnsafeReadableBytes { write(fd, $0.baseAddress!, $0.count) }
            if n > 0 { buffer.moveReaderIndex(forwardBy: n); return .progressed }
            if n < 0 && errno == EINTR { continue }
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? .full : .closed
        }
    }

    /// Waits until the pipe has room; false when its reader is gone.
    static func waitWritable(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            let r = poll(&p, 1, -1)
            if r < 0 && errno == EINTR { continue }
            return r > 0 && (p.revents & Int16(POLLERR | POLLHUP)) == 0
        }
    }

    /// Writes every byte; false when the reader is gone (or the disk refuses).
    static func writeAll(_ fd: Int32, _ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            var at = 0
            while at < bytes.count {
                let n = write(fd, bytes.baseAddress! + at, bytes.count - at)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                at += n
            }
            return true
        }
    }

    /// Whether the body arrived whole (read by the import thread when its pipe ends).
    fileprivate var arrivedWhole: Bool { lock.withLock { complete } }

    /// A write into a pipe whose reader has gone fails with EPIPE instead of killing the process.
    static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
}

/// Inflated bytes, counted against the feed's limit.
private final class InflatedLimit: ByteSource, @unchecked Sendable {
    let base: any ByteSource
    let feed: BodyFeed
    var total: Int64 = 0

    init(_ base: any ByteSource, feed: BodyFeed) { self.base = base; self.feed = feed }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try base.read(into: buffer)
        total += Int64(n)
        if total > feed.limit {
            feed.passedLimit()
            throw KaifangError.badInput("the upload inflates past the size limit")
        }
        return n
    }
}

/// The import thread's end of the pipe.
private final class PipeSource: ByteSource, @unchecked Sendable {
    let fd: Int32
    let feed: BodyFeed

    init(fd: Int32, feed: BodyFeed) { self.fd = fd; self.feed = feed }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return n }
            if n == 0 {
                guard feed.arrivedWhole else {
                    throw KaifangError.badInput("the upload ended before its last byte (the connection closed, or the size limit was passed): nothing was imported; send it again with the same Idempotency-Key")
                }
                return 0
            }
            if errno == EINTR { continue }
            throw KaifangError.runtime("reading the upload failed: \(String(cString: strerror(errno)))")
        }
    }
}

extension APIHandler {
    /// Never registered: `Uploads` serves the route, streaming the body to the import as it
    /// arrives (the generated path would hand it over as a typed body). Kept for the protocol.
    func uploadVersion(_ input: Operations.UploadVersion.Input) async throws -> Operations.UploadVersion.Output {
        throw Problem(status: .internalServerError, detail: "uploads are served by the streaming route POST /v1/datasets/{id}/versions")
    }
}
