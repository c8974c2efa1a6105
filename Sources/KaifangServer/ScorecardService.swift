import Foundation
import Logging
import Publishing
import ServiceLifecycle
import Storage
import Synchronization

/// Takes the last month's department scorecards once it is over: at start and every hour, so a
/// month is kept within the hour after it ends (as of its last instant, whenever it is taken).
/// Replicas may all try; the store keeps the first.
struct ScorecardService: Service {
    let catalog: any CatalogStore
    let logger: Logger
    var period: Duration = .seconds(3600)

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let month = try ScorecardMonth.previous(ScorecardMonth.of(Date()))
                    let stored = try await StoreThreads.run { [catalog] in try ScorecardSnapshots.take(month, catalog: catalog, actor: "scorecards") }
                    if stored > 0 { logger.info("scorecards kept", metadata: ["month": "\(month)", "departments": "\(stored)"]) }
                } catch {
                    logger.warning("scorecard snapshot failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: period)
            }
        }
    }
}

/// This month's scorecards so far, computed at most once a minute for the API and the portal
/// (each computation reads the whole catalog; figures a minute old are current enough, and
/// the answer says when they were computed).
final class ScorecardCache: Sendable {
    private let kept = Mutex<(at: Date, month: String, cards: [Scorecard])?>(nil)
    let maxAge: TimeInterval = 60

    /// The figures, their month and when they were computed.
    func current(_ catalog: any CatalogStore, now: Date = Date()) async throws -> (at: Date, month: String, cards: [Scorecard]) {
        if let k = kept.withLock({ $0 }), now.timeIntervalSince(k.at) < maxAge, k.month == ScorecardMonth.of(now) { return k }
        let month = ScorecardMonth.of(now)
        let start = try ScorecardMonth.bounds(month).start
        let cards = try await StoreThreads.run { try Scorecard.compute(catalog: catalog, start: start, end: now) }
        kept.withLock { $0 = (now, month, cards) }
        return (now, month, cards)
    }
}
