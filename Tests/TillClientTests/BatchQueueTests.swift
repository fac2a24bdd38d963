import Synchronization
import Testing
import TillClient

private struct Refused: Error {}

@Suite("Bounded batch hand-off", .timeLimit(.minutes(1)))
struct BatchQueueTests {
    @Test("the consumer takes everything waiting, up to the maximum, then the end")
    func batches() async throws {
        let queue = BatchQueue<Int>(capacity: 10)
        for value in 1...5 { await queue.push(value) }
        #expect(try await queue.next(max: 3) == [1, 2, 3])
        #expect(try await queue.next(max: 3) == [4, 5])
        await queue.push(6)
        queue.finish()
        await queue.push(7)
        #expect(try await queue.next(max: 3) == [6], "nothing is taken after the end")
        #expect(try await queue.next(max: 3) == [])
    }

    @Test("a waiting consumer wakes for one element, and gets the producer's error after the rest")
    func wakesAndFails() async throws {
        let queue = BatchQueue<Int>(capacity: 10)
        async let first = queue.next(max: 10)
        try await Task.sleep(for: .milliseconds(20))
        await queue.push(1)
        #expect(try await first == [1])
        await queue.push(2)
        queue.finish(throwing: Refused())
        #expect(try await queue.next(max: 10) == [2])
        await #expect(throws: Refused.self) { try await queue.next(max: 10) }
    }

    @Test("a full queue holds the producer until the consumer takes, and nothing is lost or reordered")
    func backpressure() async throws {
        let queue = BatchQueue<Int>(capacity: 4)
        let pushed = Atomic<Int>(0)
        let producer = Task {
            for value in 1...100 {
                await queue.push(value)
                pushed.add(1, ordering: .relaxed)
            }
            queue.finish()
        }
        // Wait for the producer to fill the queue (however slow the machine), then give it time
        // to go past the capacity if it could: a wrong queue fails here, a slow one never does.
        try await waitFor("the producer to fill the queue") { pushed.load(ordering: .relaxed) >= 4 }
        try await Task.sleep(for: .milliseconds(50))
        #expect(pushed.load(ordering: .relaxed) == 4, "the producer waits at the capacity")
        var received: [Int] = []
        while true {
            let batch = try await queue.next(max: 3)
            if batch.isEmpty { break }
            #expect(batch.count <= 3)
            received += batch
        }
        await producer.value
        #expect(received == Array(1...100))
    }

    @Test("a producer waiting for room is released when the queue ends or its task is cancelled, and its element is dropped")
    func releasesProducer() async throws {
        let queue = BatchQueue<Int>(capacity: 1)
        await queue.push(1)
        let blocked = Task { await queue.push(2) }
        blocked.cancel()
        await blocked.value  // returns: a cancelled producer never waits forever
        queue.finish()
        #expect(try await queue.next(max: 10) == [1], "the cancelled push added nothing")
        #expect(try await queue.next(max: 10) == [], "and the queue then ends")
        let ended = BatchQueue<Int>(capacity: 1)
        await ended.push(1)
        let waiting = Task { await ended.push(2) }
        ended.finish()
        await waiting.value
        #expect(try await ended.next(max: 10) == [1], "what was accepted is still delivered")
        #expect(try await ended.next(max: 10) == [], "the element offered after the end is not")
    }

    @Test("cancelling a waiting consumer ends the wait")
    func cancellation() async throws {
        let queue = BatchQueue<Int>(capacity: 10)
        let waiter = Task { try await queue.next(max: 10) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }
}

/// Polls `condition` (bounded): waits on a state, never on a guess of how long something takes.
func waitFor(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { throw WaitTimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(5))
    }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}
