import Synchronization
import Testing
import TillCore

@Suite("Log rate limiting", .timeLimit(.minutes(1)))
struct LogRateLimiterTests {
    @Test("a burst per window, then silence, then the count of what was held back")
    func burst() {
        let clock = Mutex(ContinuousClock.now)
        let limiter = LogRateLimiter(burst: 3, per: .seconds(10), now: { clock.withLock { $0 } })
        #expect((0..<3).map { _ in limiter.admit() } == [0, 0, 0])
        #expect((0..<5).map { _ in limiter.admit() } == [nil, nil, nil, nil, nil])
        clock.withLock { $0 += .seconds(10) }
        #expect(limiter.admit() == 5, "the first line of the next window says how many were suppressed")
        #expect(limiter.admit() == 0)
    }
}
