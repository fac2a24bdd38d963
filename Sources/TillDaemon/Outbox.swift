import DequeModule
public import NIOCore
import Synchronization
public import TillCore

/// What one connection's writer has to send, in order. Live events are offered by the
/// bus without waiting; past `limitBytes` the subscriber is lagged: its queued events
/// are dropped, it is told the last seq it was handed, and then disconnected. That is
/// what keeps the daemon's memory bounded whatever a client does.
public final class Outbox: Sendable {
    public enum Item: Sendable {
        /// A reply or the greeting.
        case line(ByteBuffer)
        case event(seq: Int64, ByteBuffer)
        /// Start replaying the journal for this subscription (the writer does it, paced by the socket).
        case replay(Subscription)
        /// Send the lag notice and close.
        case lagged(lastSent: Int64)
        /// A reply that is not known yet (a publish waiting for its commit). The writer waits
        /// for it, so replies keep request order while publishes are committed together.
        case deferred(DeferredReply)
    }

    /// What a deferred reply counts against the queue limit, so pipelined publishes are bounded too.
    static let deferredCost = 256

    private struct State {
        var queue: Deque<Item> = []
        var queuedBytes = 0
        var lastHandedSeq: Int64 = 0
        var lagged = false
        var finished = false
        var reader: CheckedContinuation<Void, Never>? = nil
        var spaceWaiter: CheckedContinuation<Void, Never>? = nil
    }

    private let state = Mutex(State())
    public let limitBytes: Int
    private let onLag: @Sendable () -> Void

    public init(limitBytes: Int, onLag: @escaping @Sendable () -> Void = {}) {
        self.limitBytes = limitBytes
        self.onLag = onLag
    }

    /// Queues a reply or other control item. Not subject to the lag limit: the reader
    /// waits for space (`waitForSpace`) before taking the next request instead.
    public func enqueue(_ item: Item) {
        let reader = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.finished else { return nil }
            state.queuedBytes += Self.cost(item)
            state.queue.append(item)
            defer { state.reader = nil }
            return state.reader
        }
        reader?.resume()
    }

    /// Offers a live event. Returns false when the subscriber has lagged (now or before).
    public func offerEvent(seq: Int64, _ buffer: ByteBuffer) -> Bool {
        var lagNow = false
        var accepted = true
        let reader = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.lagged { accepted = false; return nil }
            if state.finished { return nil }
            if state.queuedBytes + buffer.readableBytes > limitBytes {
                // Drop what the socket has not taken; the client resumes from lastHandedSeq.
                state.queue.removeAll { item in
                    if case .event = item { return true }
                    return false
                }
                state.queuedBytes = state.queue.reduce(0) { $0 + Self.cost($1) }
                state.queue.append(.lagged(lastSent: state.lastHandedSeq))
                state.lagged = true
                lagNow = true
                accepted = false
            } else {
                state.queue.append(.event(seq: seq, buffer))
                state.queuedBytes += buffer.readableBytes
            }
            defer { state.reader = nil }
            return state.reader
        }
        reader?.resume()
        if lagNow { onLag() }
        return accepted
    }

    /// Takes up to `max` items, waiting while the queue is empty. Returns [] once finished and drained.
    public func next(max: Int = 64) async -> [Item] {
        while true {
            let taken: [Item]? = state.withLock { state in
                if state.queue.isEmpty { return state.finished ? [] : nil }
                var items: [Item] = []
                while items.count < max, let item = state.queue.popFirst() {
                    state.queuedBytes -= Self.cost(item)
                    if case .event(let seq, _) = item { state.lastHandedSeq = seq }
                    items.append(item)
                    // Control items end a batch so the writer handles them in order.
                    if case .line = item { continue }
                    if case .event = item { continue }
                    break
                }
                return items
            }
            if let taken {
                wakeSpaceWaiter()
                return taken
            }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if !state.queue.isEmpty || state.finished { return true }
                    state.reader = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Takes queued replies (only) from the front, so replay can interleave them.
    public func takeLeadingLines() -> [ByteBuffer] {
        let lines = state.withLock { state -> [ByteBuffer] in
            var lines: [ByteBuffer] = []
            while case .line(let b)? = state.queue.first {
                state.queue.removeFirst()
                state.queuedBytes -= b.readableBytes
                lines.append(b)
            }
            return lines
        }
        if !lines.isEmpty { wakeSpaceWaiter() }
        return lines
    }

    /// Records a replayed event as handed to the socket (for the lag notice's seq).
    public func noteHanded(seq: Int64) {
        state.withLock { $0.lastHandedSeq = seq }
    }

    /// Suspends the request reader while this connection's queue is over its limit.
    public func waitForSpace() async {
        while state.withLock({ $0.queuedBytes > limitBytes && !$0.finished }) {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.queuedBytes <= limitBytes || state.finished { return true }
                    state.spaceWaiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// No more items will be accepted; the writer drains what is queued and stops.
    public func finish() {
        let (reader, space) = state.withLock { state in
            state.finished = true
            defer { state.reader = nil; state.spaceWaiter = nil }
            return (state.reader, state.spaceWaiter)
        }
        reader?.resume()
        space?.resume()
    }

    private static func cost(_ item: Item) -> Int {
        switch item {
        case .line(let buffer), .event(_, let buffer): buffer.readableBytes
        case .deferred: deferredCost
        case .replay, .lagged: 0
        }
    }

    private func wakeSpaceWaiter() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.queuedBytes <= limitBytes else { return nil }
            defer { state.spaceWaiter = nil }
            return state.spaceWaiter
        }
        waiter?.resume()
    }
}

/// A reply filled in later, exactly once; the connection's writer waits for it.
public final class DeferredReply: Sendable {
    private let state = Mutex<(line: ByteBuffer?, waiter: CheckedContinuation<ByteBuffer, Never>?)>((nil, nil))

    public init() {}

    public func fulfil(_ line: String) {
        var buffer = ByteBuffer(string: line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        let waiter = state.withLock { state -> CheckedContinuation<ByteBuffer, Never>? in
            state.line = buffer
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: buffer)
    }

    public func line() async -> ByteBuffer {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> ByteBuffer? in
                if let line = state.line { return line }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// A subscription on one connection. `generation` tells a replay whether it is still wanted.
public struct Subscription: Sendable {
    public var generation: UInt64
    public var filter: TopicFilter
    public var since: Int64
}
