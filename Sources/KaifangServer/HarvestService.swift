import Publishing
import ServiceLifecycle

/// The server's harvest scheduler: checks for due sources every `period` until shutdown.
struct HarvestService: Service {
    let harvester: Harvester
    let period: Duration

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await harvester.syncDue()
                try await Task.sleep(for: period)
            }
        }
    }
}
