import Foundation
@testable import KaifangServer
import Testing

/// Both tests hold under any load: a busy machine only makes waits longer, and they assert
/// which waiter a timeout resumes and a lower bound on waiting, never an upper one on speed.
@Suite struct JobWakeTests {
    /// A waiter's timeout resumes that waiter and no other: B, with a long timeout, still waits
    /// after A's short one has passed, and `wake()` then resumes B.
    @Test func aTimeoutResumesOnlyItsOwnWaiter() async throws {
        let wake = JobWake()
        let b = Task { () -> ContinuousClock.Instant in
            await wake.wait(timeout: .seconds(120))
            return .now
        }
        while await wake.waiting < 1 { try await Task.sleep(for: .milliseconds(5)) }
        await wake.wait(timeout: .milliseconds(20))   // A, timed out
        #expect(await wake.waiting == 1)
        let woken = ContinuousClock.now
        await wake.wake()
        let resumed = await b.value
        #expect(resumed - woken < .seconds(60))
        #expect(await wake.waiting == 0)
    }

    /// Two idle workers waiting in turn (as the sandbox's do) each wait out their own timeouts,
    /// not a storm of wake-ups: five waits of 100 ms take each at least half a second.
    @Test func idleWaitersDoNotWakeEachOther() async {
        let wake = JobWake()
        let took = await withTaskGroup(of: Duration.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    let start = ContinuousClock.now
                    for _ in 0..<5 { await wake.wait(timeout: .milliseconds(100)) }
                    return ContinuousClock.now - start
                }
            }
            return await group.reduce(into: [Duration]()) { $0.append($1) }
        }
        #expect(took.count == 2)
        for t in took { #expect(t >= .milliseconds(490), "five waits took \(took)") }
    }
}
