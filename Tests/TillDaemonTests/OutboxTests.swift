import TillCore
import NIOCore
import Testing
@testable import TillDaemon

@Suite("Outbox (per-connection queue)", .timeLimit(.minutes(1)))
struct OutboxTests {
    private func line(_ size: Int) -> ByteBuffer { ByteBuffer(repeating: UInt8(ascii: "x"), count: size) }

    @Test("a subscriber past its limit is lagged at the last seq it was handed, and memory stops growing")
    func lag() async {
        let lagged = LagFlag()
        let outbox = Outbox(limitBytes: 1000) { lagged.set() }
        #expect(outbox.offerEvent(seq: 1, line(400)))
        #expect(outbox.offerEvent(seq: 2, line(400)))
        let first = await outbox.next(max: 1)
        guard case .event(let seq, _) = first.first else { Issue.record("expected an event"); return }
        #expect(seq == 1)
        #expect(outbox.offerEvent(seq: 3, line(400)))
        #expect(!outbox.offerEvent(seq: 4, line(400)))  // 800 queued + 400 > 1000
        #expect(lagged.value)
        #expect(!outbox.offerEvent(seq: 5, line(1)))
        let rest = await outbox.next()
        // Queued events were dropped; the client resumes with since = 1.
        guard rest.count == 1, case .lagged(let lastSent) = rest[0] else { Issue.record("\(rest)"); return }
        #expect(lastSent == 1)
    }

    @Test("replies queue ahead of a replay and are not subject to lag")
    func replies() async {
        let outbox = Outbox(limitBytes: 100)
        outbox.enqueue(.line(line(150)))
        outbox.enqueue(.replay(Subscription(generation: 1, filter: .all, since: 0)))
        let items = await outbox.next()
        // A control item ends a batch so the writer handles it in order.
        #expect(items.count == 2)
        if case .line = items[0], case .replay = items[1] {} else { Issue.record("\(items)") }
    }

    @Test("finish drains then ends")
    func finish() async {
        let outbox = Outbox(limitBytes: 100)
        outbox.enqueue(.line(line(3)))
        outbox.finish()
        #expect(await outbox.next().count == 1)
        #expect(await outbox.next().isEmpty)
    }
}

final class LagFlag: @unchecked Sendable {
    private var flag = false
    func set() { flag = true }
    var value: Bool { flag }
}
