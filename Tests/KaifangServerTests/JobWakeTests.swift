import Foundation
@testable import KaifangServer
import Testing

@Suite struct JobWakeTests {
    /// A waiter's timeout resumes that waiter and no other: B, with a long timeout, still waits
    /// after A's short one has passed, and `wake()` then resumes B at once.
    @Test func aTimeoutResumesOnlyItsOwnWaiter() async throws {
        let wake = JobWake()
        let a = Task { await wake.wait(timeout: .milliseconds(20)) }
        let b = Task { () -> ContinuousClock.Instant in
            await wake.wait(timeout: .seconds(30))
            return .now
        }
        await a.value
        try await Task.sleep(for: .milliseconds(300))
        #expect(await wake.waiting == 1)
        let woken = ContinuousClock.now
        await wake.wake()
        let resumed = await b.value
        #expect(resumed - woken < .seconds(5))
        #expect(await wake.waiting == 0)
    }

    /// Two idle workers waiting in turn (as the sandbox's do) each come round once per timeout,
    /// not in a storm of wake-ups.
    @Test func idleWaitersDoNotWakeEachOther() async {
        let wake = JobWake()
        let end = ContinuousClock.now + .milliseconds(600)
        let rounds = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    var n = 0
                    while ContinuousClock.now < end {
                        await wake.wait(timeout: .milliseconds(100))
                        n += 1
                    }
                    return n
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(rounds.count == 2)
        for r in rounds { #expect(r >= 1 && r <= 8, "rounds: \(rounds)") }
    }
}
