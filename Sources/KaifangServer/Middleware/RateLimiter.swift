import Foundation
import Storage

/// Rate limits per API key (its account tier's, else the server's) and per anonymous address:
/// `rate` requests a second in bursts of `burst` (GCRA, kept by the store, so a shared store holds them across every replica); a
/// request over the limit gets 429 with `Retry-After`.
final class RateLimiter: Sendable {
    let store: any CatalogStore
    let keyRate: Double, keyBurst: Double
    let anonymousRate: Double, anonymousBurst: Double

    init(store: any CatalogStore, keyRate: Double, keyBurst: Double, anonymousRate: Double, anonymousBurst: Double) {
        self.store = store
        self.keyRate = keyRate; self.keyBurst = keyBurst; self.anonymousRate = anonymousRate; self.anonymousBurst = anonymousBurst
    }

    /// Admits the caller's request or throws 429.
    func admit(_ caller: Caller) throws {
        let (bucket, rate, burst) = caller.key.map { ("k:\($0.id)", $0.limits?.rate ?? keyRate, $0.limits?.burst ?? keyBurst) }
            ?? ("a:\(caller.remote)", anonymousRate, anonymousBurst)
        guard rate > 0 else { return }
        guard let wait = try store.takeToken(bucket: bucket, rate: rate, burst: burst) else { return }
        let seconds = max(1, Int(wait.rounded(.up)))
        throw Problem(status: .tooManyRequests, detail: "rate limit: \(Int(rate)) requests a second (bursts of \(Int(burst))) per \(caller.key == nil ? "address; a key gets more" : "key"); retry after \(seconds) s",
                      retryAfter: seconds)
    }
}
