import Audit
import Foundation
import Storage

/// Group commit for read events: concurrent requests hand their event over and wait; one of
/// them — the leader — appends everything waiting in a single transaction on its own thread,
/// releases the others, and hands the lead to the next waiter if more arrived meanwhile. Every
/// read is still recorded before its response is sent, but a busy server pays one SQLite
/// commit per batch instead of one per request, and no thread hop to a writer thread.
final class AuditBatcher: @unchecked Sendable {
    private enum Role { case done, lead }
    private typealias Waiter = (event: PendingAuditEvent, continuation: CheckedContinuation<Role, any Error>)

    private let catalog: any CatalogStore
    private let lock = NSLock()
    private var pending: [Waiter] = []
    private var leading = false

    init(catalog: any CatalogStore) { self.catalog = catalog }

    /// Records an event; returns once it is committed.
    /// - Throws: the catalog's error when the commit fails.
    func record(_ event: PendingAuditEvent) async throws {
        let first = lock.withLock { () -> Bool in
            if leading { return false }
            leading = true
            return true
        }
        if first {
            try lead(own: event)
            return
        }
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
        if role == .lead { try lead(own: event) }
    }

    /// Commits `own` with everything waiting, releases the waiters, passes the lead on.
    private func lead(own: PendingAuditEvent) throws {
        lock.lock()
        let batch = pending
        pending = []
        lock.unlock()
        var failure: (any Error)?
        do {
            try catalog.audit(batch: [own] + batch.map(\.event))
        } catch {
            failure = error
        }
        for w in batch {
            if let failure { w.continuation.resume(throwing: failure) } else { w.continuation.resume(returning: .done) }
        }
        lock.lock()
        if pending.isEmpty {
            leading = false
            lock.unlock()
        } else {
            let next = pending.removeFirst()
            lock.unlock()
            next.continuation.resume(returning: .lead)
        }
        if let failure { throw failure }
    }
}
