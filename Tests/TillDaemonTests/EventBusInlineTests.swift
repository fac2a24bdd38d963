import Foundation
import Synchronization
import Testing
import TillCore
import TillSystem
@testable import TillDaemon

/// Runs `body` on a new thread that declares it may block (as a scanner's reader does), and
/// returns once it is done.
private func onBlockingThread(_ name: String, _ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        Thread {
            ThreadName.set(name)
            ThreadMayBlock.declare()
            body()
            done.resume()
        }.start()
    }
}

private func currentThreadName() -> String {
    ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
}

/// What completions saw: the seq (or the error) and the thread each ran on.
private final class Completions: Sendable {
    let results = Mutex<[(tag: String, n: Int, seq: Int64?, error: WireError?, thread: String)]>([])
    let done = DispatchSemaphore(value: 0)

    func completion(_ tag: String, _ n: Int) -> @Sendable (Result<Event, any Error>) -> Void {
        { result in
            let thread = currentThreadName()
            self.results.withLock {
                switch result {
                case .success(let event): $0.append((tag, n, event.seq, nil, thread))
                case .failure(let error): $0.append((tag, n, nil, error as? WireError, thread))
                }
            }
            self.done.signal()
        }
    }
}

@Suite("The bus: a device event committed on its reader's own thread", .serialized, .timeLimit(.minutes(1)))
struct EventBusInlineTests {
    @Test("an idle bus commits a blocking thread's event right there: durable, fanned out and completed before submit returns")
    func inlineWhenIdle() async throws {
        let under = try BusUnderTest()
        _ = try await under.bus.publish(topic: "pos.tick", data: ["n": 0])  // the writer is up
        let completions = Completions()
        await onBlockingThread("till-inline") {
            under.bus.submit(topic: "scanner.data", device: "s", data: ["n": 1], origin: .device, completion: completions.completion("scan", 1))
            // Already done when submit returns: nothing was handed to another thread.
            #expect(completions.results.withLock { $0.count } == 1)
        }
        let result = try #require(completions.results.withLock { $0.first })
        #expect(result.thread == "till-inline" && result.seq == 2)
        #expect(try await under.journal.events(after: 1, limit: 10).map(\.topic) == ["scanner.data"])
        try await under.stop()
    }

    @Test("inline and writer commits interleaved from three submitters: one order, continuous seqs, each event once, each submitter's in its order")
    func oneOrder() async throws {
        let under = try BusUnderTest()
        _ = try await under.bus.publish(topic: "pos.tick", data: ["n": 0])
        let completions = Completions()
        let perSubmitter = 1500
        async let reader: Void = onBlockingThread("till-inline") {
            for n in 0..<perSubmitter {
                under.bus.submit(topic: "scanner.data", device: "s", data: ["n": .int(Int64(n))], origin: .device, completion: completions.completion("reader", n))
            }
        }
        async let first: Void = {
            for n in 0..<perSubmitter { _ = try? await under.bus.publish(topic: "pos.a", data: ["n": .int(Int64(n))]) }
        }()
        async let second: Void = {
            for n in 0..<perSubmitter { _ = try? await under.bus.publish(topic: "pos.b", data: ["n": .int(Int64(n))]) }
        }()
        _ = await (reader, first, second)
        let events = try await under.journal.events(after: 1, limit: 10 * perSubmitter)
        #expect(events.count == 3 * perSubmitter, "every event committed once")
        #expect(events.map(\.seq) == Array(2...Int64(1 + 3 * perSubmitter)), "continuous seqs")
        for topic in ["scanner.data", "pos.a", "pos.b"] {
            let ns = events.filter { $0.topic == topic }.map { $0.event.data["n"]?.intValue ?? -1 }
            #expect(ns == Array(0..<perSubmitter).map(Int64.init), "\(topic) in the order submitted")
        }
        let results = completions.results.withLock { $0 }
        #expect(results.count == perSubmitter && results.allSatisfy { $0.seq != nil })
        #expect(results.map(\.seq!) == results.map(\.seq!).sorted(), "the reader's completions in seq order")
        // How many went inline depends on the machine's load (the idle case is the test above);
        // what must hold whatever the mix is the order checked here.
        try await under.stop()
    }

    @Test("a fault met by an inline commit: the event is held, and the writer commits it once the journal is back, with no further event to wake it", .enabled(if: canMakeImmutable, "chattr +i needs root"))
    func faultInline() async throws {
        let under = try BusUnderTest()
        let before = try await under.bus.publish(topic: "pos.tick", data: ["n": 0])
        let completions = Completions()
        try chattr("+i", under.walPath)
        await onBlockingThread("till-inline") {
            under.bus.submit(topic: "scanner.data", device: "s", data: ["n": 1], origin: .device, completion: completions.completion("scan", 1))
        }
        let told = try #require(completions.results.withLock { $0.first })
        #expect(told.error?.code == .journalUnavailable, "the device is told, as for the writer's commits")
        #expect(under.bus.health.held == 1)
        try chattr("-i", under.walPath)
        try await under.waitUntilHealthy()
        let events = try await under.journal.events(after: before.seq, limit: 10)
        #expect(events.map(\.topic) == ["daemon.degraded", "scanner.data"])
        try await under.stop()
    }
}
