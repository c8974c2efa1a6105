import Audit
import Foundation
import Storage

/// Group commit for read events: concurrent requests hand their event over and wait; one of
/// them — the leader — appends everything waiting in a single transaction on its own thread,
/// releases the others, and hands the lead to the next waiter if more arrived meanwhile. Every
/// read is still recorded before its response is sent, but a busy server pays one commit per
/// batch instead of one per request, and no thread hop to a writer thread.
final class AuditBatcher: @unchecked Sendable {
    private enum Role { case done(Int64), lead }
    private typealias Waiter = (event: PendingAuditEvent, continuation: CheckedContinuation<Role, any Error>)

    private let catalog: any CatalogStore
    private let lock = NSLock()
    private var pending: [Waiter] = []
    /// Whether a batch is committing. One at a time, on either store: SQLite has one writer, and
    /// the shared store's batches from one replica go out on one connection in order anyway; a
    /// second batch in flight would only halve the batches, and PostgreSQL's cost per batch
    /// (planning the call, the commit, waking its WAL writer) is most of its cost per read.
    private var leading = false

    init(catalog: any CatalogStore) {
        self.catalog = catalog
    }

    /// Records an event; returns once it is committed, with the change mark it committed under.
    /// - Throws: the catalog's error when the commit fails.
    @discardableResult
    func record(_ event: PendingAuditEvent) async throws -> Int64 {
        let first = lock.withLock { () -> Bool in
            if leading { return false }
            leading = true
            return true
        }
        if first { return try await lead(own: event) }
        let role: Role = try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if leading {
                pending.append((event, continuation))
                lock.unlock()
            } else {
                // The leader finished between the two locks: lead ourselves.
                leading = true
                lock.unlock()
                continuation.resume(returning: .lead)
            }
        }
        switch role {
        case .lead: return try await lead(own: event)
        case .done(let mark): return mark
        }
    }

    /// Appends a batch. A shared store's transaction waits on the network several times over:
    /// it runs on a thread of its own, so no thread of the concurrency pool (one per core)
    /// waits with it.
    private func append(_ events: [PendingAuditEvent]) async throws -> Int64 {
        try await catalog.appendBatch(events)
    }

    /// Commits `own` with everything waiting, releases the waiters, passes the lead on.
    private func lead(own: PendingAuditEvent) async throws -> Int64 {
        let batch = lock.withLock {
            defer { pending = [] }
            return pending
        }
        var failure: (any Error)?
        var mark: Int64 = 0
        do {
            mark = try await append([own] + batch.map(\.event))
        } catch {
            failure = error
        }
        for w in batch {
            if let failure { w.continuation.resume(throwing: failure) } else { w.continuation.resume(returning: .done(mark)) }
        }
        let next = lock.withLock { () -> Waiter? in
            if pending.isEmpty {
                leading = false
                return nil
            }
            return pending.removeFirst()
        }
        next?.continuation.resume(returning: .lead)
        if let failure { throw failure }
        return mark
    }
}
