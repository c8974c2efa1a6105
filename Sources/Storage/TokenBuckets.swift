import Foundation

/// Rate-limit buckets in memory, one per name, by the generic cell rate algorithm: a bucket
/// is its theoretical arrival time `tat`; a request at `now` is admitted when
/// `tat - now <= (burst - 1) / rate`, and moves `tat` on by `1 / rate`. The same rule, in one
/// UPDATE, is what the shared store keeps in PostgreSQL.
final class TokenBuckets: @unchecked Sendable {
    private let lock = NSLock()
    private var tat: [String: Double] = [:]

    /// Admits one request on `name`; nil when admitted, else the seconds until one would be.
    func take(_ name: String, rate: Double, burst: Double, now: Double) -> Double? {
        guard rate > 0 else { return nil }
        let interval = 1 / rate, tolerance = max(0, burst - 1) * interval
        lock.lock()
        defer { lock.unlock() }
        let current = max(tat[name] ?? now, now)
        if current - now > tolerance { return current - now - tolerance }
        tat[name] = current + interval
        if tat.count > 100_000 { tat = tat.filter { $0.value > now } }
        return nil
    }
}
