import Audit
import Dispatch
import Foundation
import Storage

/// Group commit for read events: concurrent requests hand their event over and wait; one
/// writer appends everything waiting in a single transaction, then releases them all. Every
/// read is still recorded before its response is sent, but a busy server pays one SQLite
/// commit per batch instead of one per request.
final class AuditBatcher: @unchecked Sendable {
    private let catalog: CatalogDatabase
    private let lock = NSLock()
    private var pending: [(CatalogDatabase.PendingEvent, CheckedContinuation<Void, any Error>)] = []
    private var flushing = false
    private let queue = DispatchQueue(label: "kaifang.audit")

    init(catalog: CatalogDatabase) { self.catalog = catalog }

    /// Records an event; returns once it is committed.
    /// - Throws: the catalog's error when the commit fails.
    func record(_ event: CatalogDatabase.PendingEvent) async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            lock.lock()
            pending.append((event, cont))
            let start = !flushing
            flushing = true
            lock.unlock()
            if start { queue.async { self.flush() } }
        }
    }

    private func flush() {
        while true {
            lock.lock()
            let batch = pending
            pending = []
            if batch.isEmpty { flushing = false; lock.unlock(); return }
            lock.unlock()
            do {
                try catalog.audit(batch: batch.map(\.0))
                for (_, c) in batch { c.resume() }
            } catch {
                for (_, c) in batch { c.resume(throwing: error) }
            }
        }
    }
}
