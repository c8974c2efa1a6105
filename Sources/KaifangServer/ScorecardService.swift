import Foundation
import Logging
import Publishing
import ServiceLifecycle
import Storage

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
