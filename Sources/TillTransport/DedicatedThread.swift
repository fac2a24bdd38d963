import Foundation
import Synchronization
import TillSystem

/// A task executor with one thread of its own, for a reader that may block in the kernel.
///
/// A scanner's read loop normally waits on its stream's dispatch queue and is resumed on the
/// cooperative pool: two threads take turns for every scan, and on a two-core till each turn
/// is a wake-up on the scan's way to the subscriber. Run on a `DedicatedThread` (`run`), the
/// loop blocks in `poll` on this thread itself (`ByteStream.readBlocking`), frames the scan
/// and hands it to the bus without leaving it: the thread that the kernel wakes for the bytes
/// is the one that sends the event on. Blocking here never starves the pool, which is why a
/// thread of its own is the price; an idle reader costs nothing (it sleeps in `poll`).
///
/// The thread exists while a `run` is under way (and while jobs it left are still queued), so
/// a device that comes and goes with hotplug leaves no thread behind.
public final class DedicatedThread: TaskExecutor, @unchecked Sendable {
    private let name: String
    private struct State {
        var jobs: [UnownedJob] = []
        var threadRunning = false
        var users = 0
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    public init(name: String) {
        self.name = name
    }

    /// Runs `body` with this thread as its task executor: its code, and every async function it
    /// calls that is not bound to an actor, run on the thread.
    public func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        state.withLock { $0.users += 1 }
        defer {
            state.withLock { $0.users -= 1 }
            wake.signal()  // the thread ends once nothing uses it and nothing is queued
        }
        return try await withTaskExecutorPreference(self) { try await body() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let start = state.withLock { state -> Bool in
            state.jobs.append(job)
            guard !state.threadRunning else { return false }
            state.threadRunning = true
            return true
        }
        if start {
            Thread { [self] in
                ThreadName.set(name)  // for ps, perf and /proc
                ThreadMayBlock.declare()  // the bus may commit a scan right here (EventBus.submit)
                loop()
            }.start()
        } else {
            wake.signal()
        }
    }

    private func loop() {
        let executor = asUnownedTaskExecutor()
        while true {
            let next = state.withLock { state -> [UnownedJob]? in
                if !state.jobs.isEmpty {
                    defer { state.jobs.removeAll(keepingCapacity: true) }
                    return state.jobs
                }
                if state.users == 0 {
                    state.threadRunning = false
                    return nil
                }
                return []
            }
            guard let jobs = next else { return }
            if jobs.isEmpty {
                wake.wait()
                continue
            }
            for job in jobs { job.runSynchronously(on: executor) }
        }
    }
}
