import Synchronization

/// Lets at most `burst` log lines of one kind through per window, and tells the next line let
/// through how many were held back, so a client repeating a mistake cannot flood the log yet
/// the count is never lost. Used by tilld (bad requests) and till-web (refused machines).
public final class LogRateLimiter: Sendable {
    private struct Window {
        var start: ContinuousClock.Instant
        var admitted = 0
        var suppressed = 0
    }

    private let burst: Int
    private let window: Duration
    private let state: Mutex<Window>
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(burst: Int, per window: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.burst = burst
        self.window = window
        self.now = now
        state = Mutex(Window(start: now()))
    }

    /// nil: do not log this one. Otherwise log it, noting the returned count of lines
    /// suppressed since the last one logged (0 for none).
    public func admit() -> Int? {
        let instant = now()
        return state.withLock { state -> Int? in
            if instant - state.start >= window {
                state.start = instant
                state.admitted = 0
            }
            guard state.admitted < burst else {
                state.suppressed += 1
                return nil
            }
            state.admitted += 1
            defer { state.suppressed = 0 }
            return state.suppressed
        }
    }
}
