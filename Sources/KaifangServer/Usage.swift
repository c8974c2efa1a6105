import Audit
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Storage

/// Counts every answered request by UTC day, key and dataset — requests, rows, body bytes,
/// exports — in memory, and adds the counts to the store in one batch every `period` (and when
/// the server stops, and before usage is read in this process). A process that dies loses at
/// most one period of counts; nothing else is lost.
final class UsageMeter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [UsageKey: Counts] = [:]
    private var prunedDay = ""
    let store: any CatalogStore

    struct UsageKey: Hashable { var day: String; var key: String; var dataset: String }
    struct Counts { var requests: Int64 = 0, rows: Int64 = 0, bytes: Int64 = 0, exports: Int64 = 0 }

    init(store: any CatalogStore) { self.store = store }

    /// Today's UTC date, formatted once a day.
    private var dayNumber = -1
    private var dayText = ""

    /// Counts one answered request.
    func count(key: String, dataset: String, rows: Int64, bytes: Int64, export: Bool) {
        let number = Int(Date().timeIntervalSince1970 / 86_400)
        lock.lock()
        if number != dayNumber {
            dayNumber = number
            dayText = String(AuditChain.timestamp(Date(timeIntervalSince1970: Double(number) * 86_400)).prefix(10))
        }
        let k = UsageKey(day: dayText, key: key, dataset: dataset)
        var c = counts[k] ?? Counts()
        c.requests += 1; c.rows += rows; c.bytes += bytes
        if export { c.exports += 1 }
        counts[k] = c
        lock.unlock()
    }

    /// Adds what was counted to the store (and, once a day, forgets usage older than kept). On
    /// failure the counts are kept for the next flush.
    func flush() throws {
        let (taken, today, pruned) = lock.withLock { () -> ([UsageKey: Counts], String, String) in
            defer { counts = [:] }
            return (counts, String(AuditChain.timestamp().prefix(10)), prunedDay)
        }
        let prune = pruned == today ? nil : CatalogRules.usageStart(today: today)
        guard !taken.isEmpty || prune != nil else { return }
        do {
            try store.addUsage(taken.map { k, c in
                UsageEntry(day: k.day, keyID: k.key, dataset: k.dataset, requests: c.requests, rows: c.rows, bytes: c.bytes, exports: c.exports)
            }, pruneBefore: prune)
            if prune != nil { lock.withLock { prunedDay = today } }
        } catch {
            lock.withLock {
                for (k, c) in taken {
                    var merged = counts[k] ?? Counts()
                    merged.requests += c.requests; merged.rows += c.rows; merged.bytes += c.bytes; merged.exports += c.exports
                    counts[k] = merged
                }
            }
            throw error
        }
    }
}

/// What a request read, set by the handler that serves rows (`APIHandler.recordRead`).
final class RequestUsage: @unchecked Sendable {
    @TaskLocal static var current: RequestUsage?
    var dataset = ""
    var rows: Int64 = 0
    var export = false
}

/// Counts each request in the `UsageMeter` once its answer is written: a body of known length
/// counts that length, a streamed one (an export) what was written. Runs inside `AuthMiddleware`,
/// so it knows the caller's key; an error is turned into its problem document here, so its
/// bytes count like any answer's.
struct UsageMiddleware<Context: RequestContext>: RouterMiddleware {
    let meter: UsageMeter
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let usage = RequestUsage()
        let caller = Caller.current
        let key = caller.key?.id ?? ""
        let response: Response
        do {
            response = try await RequestUsage.$current.withValue(usage) { try await next(request, context) }
        } catch {
            response = ProblemMiddleware<AppRequestContext>.problem(for: error, path: request.uri.path, logger: logger, requestID: caller.requestID).response()
        }
        if let length = response.body.contentLength {
            meter.count(key: key, dataset: usage.dataset, rows: usage.rows, bytes: Int64(length), export: usage.export)
            return response
        }
        var counted = response
        let body = response.body
        let meter = meter
        let dataset = usage.dataset, rows = usage.rows, export = usage.export
        counted.body = ResponseBody { writer in
            let box = ByteCount()
            do {
                try await body.write(CountingWriter(parent: writer, count: box))
            } catch {
                meter.count(key: key, dataset: dataset, rows: rows, bytes: box.value, export: export)
                throw error
            }
            meter.count(key: key, dataset: dataset, rows: rows, bytes: box.value, export: export)
        }
        return counted
    }
}

final class ByteCount: @unchecked Sendable { var value: Int64 = 0 }

/// A body writer that counts the bytes passing through it.
struct CountingWriter: ResponseBodyWriter {
    var parent: any ResponseBodyWriter
    let count: ByteCount

    mutating func write(_ buffer: ByteBuffer) async throws {
        count.value += Int64(buffer.readableBytes)
        try await parent.write(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await parent.finish(trailingHeaders)
    }
}

/// Adds the meter's counts to the store every `period`, and once more when the server stops.
struct UsageFlushService: Service {
    let meter: UsageMeter
    let period: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: period) }
            do {
                try await StoreThreads.run { [meter] in try meter.flush() }
            } catch {
                logger.error("usage counts not stored yet; kept for the next try", metadata: ["error": "\(error)"])
            }
        }
    }
}
