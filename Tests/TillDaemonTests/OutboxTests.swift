import Foundation
import TillCore
import NIOCore
import Synchronization
import Testing
@testable import TillDaemon

@Suite("Outbox (per-connection queue)", .timeLimit(.minutes(1)))
struct OutboxTests {
    private func line(_ size: Int) -> ByteBuffer { ByteBuffer(repeating: UInt8(ascii: "x"), count: size) }

    private func items(_ poll: Outbox.Poll) -> [Outbox.Item] {
        if case .items(let items) = poll { return items }
        Issue.record("expected items, got \(poll)")
        return []
    }

    @Test("a subscriber past its limit is lagged at the last seq it was handed, and memory stops growing")
    func lag() async {
        let lagged = LagFlag()
        let outbox = Outbox(limitBytes: 1000) { lagged.set() }
        #expect(outbox.offerEvent(seq: 1, line(400)))
        #expect(outbox.offerEvent(seq: 2, line(400)))
        let first = items(outbox.poll(max: 1))
        guard case .event(let seq, _) = first.first else { Issue.record("expected an event"); return }
        #expect(seq == 1)
        #expect(outbox.offerEvent(seq: 3, line(400)))
        #expect(!outbox.offerEvent(seq: 4, line(400)))  // 800 queued + 400 > 1000
        #expect(lagged.value)
        #expect(!outbox.offerEvent(seq: 5, line(1)))
        let rest = items(outbox.poll())
        // Queued events were dropped; the client resumes with since = 1.
        guard rest.count == 1, case .lagged(let lastSent) = rest[0] else { Issue.record("\(rest)"); return }
        #expect(lastSent == 1)
    }

    @Test("replies queue ahead of a replay and are not subject to lag")
    func replies() async {
        let outbox = Outbox(limitBytes: 100)
        outbox.enqueue(.line(line(150)))
        outbox.enqueue(.replay(Subscription(generation: 1, filter: .all, since: 0)))
        let items = items(outbox.poll())
        // A control item ends a batch so the writer handles it in order.
        #expect(items.count == 2)
        if case .line = items[0], case .replay = items[1] {} else { Issue.record("\(items)") }
    }

    @Test("finish drains then ends")
    func finish() async {
        let outbox = Outbox(limitBytes: 100)
        outbox.enqueue(.line(line(3)))
        outbox.finish()
        #expect(items(outbox.poll()).count == 1)
        guard case .finished = outbox.poll() else { Issue.record("expected finished"); return }
    }

    @Test("the consumer is woken once per burst, and stops at a reply not known yet until it is fulfilled")
    func wakeAndDeferred() {
        let wakes = Counter()
        let outbox = Outbox(limitBytes: 10_000)
        outbox.enqueue(.line(line(3)))
        outbox.setConsumer(wake: { wakes.add() }, space: {})
        #expect(wakes.value == 1)  // items were waiting when the consumer was set
        let reply = outbox.deferReply()
        #expect(outbox.offerEvent(seq: 1, line(5)))
        #expect(wakes.value == 1)  // not idle yet: no second wake
        #expect(items(outbox.poll()).count == 1)  // the line; stops at the deferred reply
        guard case .idle = outbox.poll() else { Issue.record("expected idle at the unfulfilled reply"); return }
        reply.fulfil("{}")
        #expect(wakes.value == 2)
        let next = items(outbox.poll())
        #expect(next.count == 2)  // the reply (as a line), then the event behind it
        if case .line = next[0], case .event(let seq, _) = next[1] { #expect(seq == 1) } else { Issue.record("\(next)") }
        guard case .idle = outbox.poll() else { Issue.record("expected idle"); return }
        outbox.finish()
        #expect(wakes.value == 3)
        guard case .finished = outbox.poll() else { Issue.record("expected finished"); return }
    }

    @Test("a consumer told there is no space is called back once the queue is under its limit")
    func space() {
        let calls = Counter()
        let outbox = Outbox(limitBytes: 100)
        outbox.setConsumer(wake: {}, space: { calls.add() })
        #expect(outbox.hasSpace())
        outbox.enqueue(.line(line(150)))
        #expect(!outbox.hasSpace())
        #expect(calls.value == 0)
        _ = outbox.poll()
        #expect(calls.value == 1)
        #expect(outbox.hasSpace())
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

final class LagFlag: @unchecked Sendable {
    private var flag = false
    func set() { flag = true }
    var value: Bool { flag }
}

@Suite("Fan-out batches and their offer", .timeLimit(.minutes(1)))
struct OutboxBatchTests {
    private func batch(seqs: [Int64], topics: [String]) -> FanOutBatch {
        let time = Date(timeIntervalSince1970: 1_700_000_000)
        return FanOutBatch(zip(seqs, topics).map { seq, topic in
            (Event(seq: seq, time: time, topic: topic, device: nil, data: ["n": .int(seq)]), "{\"n\":\(seq)}")
        })
    }

    private func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    @Test("a subscriber gets the wanted events after its cursor as runs of whole lines, each run one slice of the batch")
    func runs() throws {
        let batch = batch(seqs: [10, 11, 12, 13, 14, 15], topics: ["a.x", "a.x", "a.x", "b.x", "a.x", "a.x"])
        let wanted = batch.wanted(by: TopicFilter(["a.*"]))
        #expect(wanted == [true, true, true, false, true, true])
        let runs = batch.runs(after: 10, wanted: wanted)
        #expect(runs.map(\.lastSeq) == [12, 15])
        let lines = runs.map { text($0.lines).split(separator: "\n").map { try! Event(wire: JSONText.decode(Array($0.utf8))).seq } }
        #expect(lines == [[11, 12], [14, 15]])
        #expect(runs.allSatisfy { text($0.lines).hasSuffix("\n") })
        // The slices share the batch's storage: handing a subscriber a run copies no bytes.
        let base = batch.wire.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let first = runs[0].lines.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(first > base && first < base + UInt(batch.wire.readableBytes))
        #expect(batch.runs(after: 15, wanted: wanted).isEmpty)
        #expect(batch.runs(after: 0, wanted: batch.wanted(by: TopicFilter(["c.*"]))).isEmpty)
    }

    @Test("an offer of runs queues them in order with one wake-up; the handed seq is a run's last")
    func offer() {
        let wakes = Counter()
        let outbox = Outbox(limitBytes: 10_000)
        outbox.setConsumer(wake: { wakes.add() }, space: {})
        let batch = batch(seqs: [1, 2, 3, 4], topics: ["a.x", "b.x", "a.x", "a.x"])
        #expect(outbox.offerRuns(batch.runs(after: 0, wanted: batch.wanted(by: TopicFilter(["a.*"])))))
        #expect(wakes.value == 1)
        guard case .items(let items) = outbox.poll() else { Issue.record("expected items"); return }
        let seqs = items.compactMap { item -> Int64? in if case .event(let seq, _) = item { return seq } else { return nil } }
        #expect(seqs == [1, 4])
    }

    @Test("runs that cross the limit lag the subscriber at the last seq handed, dropping what was queued")
    func batchLag() {
        let outbox = Outbox(limitBytes: 10)
        let line = ByteBuffer(string: "12345\n")  // 6 bytes
        #expect(outbox.offerEvent(seq: 1, line))
        guard case .items = outbox.poll(max: 1) else { Issue.record("expected the first event"); return }
        let runs: [(lastSeq: Int64, lines: ByteBuffer)] = [(2, line), (4, ByteBuffer(string: "12345\n12345\n"))]
        #expect(!outbox.offerRuns(runs))
        guard case .items(let items) = outbox.poll(), items.count == 1, case .lagged(let last) = items[0] else {
            Issue.record("expected only the lag notice"); return
        }
        #expect(last == 1)
        #expect(!outbox.offerEvent(seq: 5, line), "a lagged subscriber takes nothing more")
    }
}
