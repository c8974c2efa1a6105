import Foundation

/// Token buckets per API key and per anonymous address (DESIGN §4): `rate` tokens a second up
/// to `burst`; a request without a token gets 429 with `Retry-After`.
final class RateLimiter: @unchecked Sendable {
    struct Bucket { var tokens: Double; var stamp: Double }
    private let lock = NSLock()
    private var buckets: [String: Bucket] = [:]
    let keyRate: Double, keyBurst: Double
    let anonymousRate: Double, anonymousBurst: Double

    init(keyRate: Double, keyBurst: Double, anonymousRate: Double, anonymousBurst: Double) {
        self.keyRate = keyRate; self.keyBurst = keyBurst; self.anonymousRate = anonymousRate; self.anonymousBurst = anonymousBurst
    }

    /// Takes a token for the caller or throws 429.
    func admit(_ caller: Caller) throws {
        let (id, rate, burst) = caller.key.map { ("k:\($0.id)", keyRate, keyBurst) } ?? ("a:\(caller.remote)", anonymousRate, anonymousBurst)
        guard rate > 0 else { return }
        let now = Date().timeIntervalSince1970
        lock.lock()
        var b = buckets[id] ?? Bucket(tokens: burst, stamp: now)
        b.tokens = min(burst, b.tokens + (now - b.stamp) * rate)
        b.stamp = now
        let ok = b.tokens >= 1
        if ok { b.tokens -= 1 }
        buckets[id] = b
        if buckets.count > 100_000 { buckets = buckets.filter { now - $0.value.stamp < 60 } }
        lock.unlock()
        if !ok {
            let wait = max(1, Int(((1 - b.tokens) / rate).rounded(.up)))
            throw Problem(status: .tooManyRequests, detail: "rate limit: \(Int(rate)) requests a second (bursts of \(Int(burst))) per \(caller.key == nil ? "address; a key gets more" : "key"); retry after \(wait) s",
                          retryAfter: wait)
        }
    }
}
