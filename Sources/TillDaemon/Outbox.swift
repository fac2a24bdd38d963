import DequeModule
public import NIOCore
import Synchronization
public import TillCore

/// What one connection's writer has to send, in order. Live events are offered by the
/// bus without waiting; past `limitBytes` the subscriber is lagged: its queued events
/// are dropped, it is told the last seq it was handed, and then disconnected. That is
/// what keeps the daemon's memory bounded whatever a client does.
///
/// The consumer is the connection's event loop (`ConnectionHandler`): it `poll`s without
/// waiting, and when the queue runs dry it is idle until the outbox calls `wake`. A producer
/// on another thread (the bus's writer) therefore costs one hop to the event loop, and a
/// burst of events costs one hop and one `writev`.
public final class Outbox: Sendable {
    public enum Item: Sendable {
        /// A reply or the greeting.
        case line(ByteBuffer)
        /// One or more whole event lines (a run of a committed batch); `seq` is the last one's.
        case event(seq: Int64, ByteBuffer)
        /// Start replaying the journal for this subscription (paced by the socket, off the loop).
        case replay(Subscription)
        /// Send the lag notice and close.
        case lagged(lastSent: Int64)
        /// A reply that is not known yet (a publish waiting for its commit). The consumer stops
        /// at it until it is fulfilled, so replies keep request order while publishes are
        /// committed together.
        case deferred(DeferredReply)
    }

    /// What `poll` found.
    public enum Poll: Sendable {
        /// Items to send, in order. Never `.deferred` (a fulfilled one comes as `.line`); a
        /// control item (`.replay`, `.lagged`) is always the last of a batch.
        case items([Item])
        /// Nothing to send now; `wake` is called when there is.
        case idle
        /// Finished and drained: close the connection.
        case finished
    }

    /// What a deferred reply counts against the queue limit, so pipelined publishes are bounded too.
    static let deferredCost = 256

    private struct State {
        var queue: Deque<Item> = []
        var queuedBytes = 0
        var lastHandedSeq: Int64 = 0
        var lagged = false
        var finished = false
        /// The consumer is waiting for `wake` (true until it is first set up, so the first
        /// item after `setConsumer` wakes it).
        var idle = true
        var wake: (@Sendable () -> Void)? = nil
        /// Called once the queue is back under its limit, if the consumer asked (`hasSpace`).
        var space: (@Sendable () -> Void)? = nil
        var spaceWanted = false
    }

    private let state = Mutex(State())
    public let limitBytes: Int
    private let onLag: @Sendable () -> Void

    public init(limitBytes: Int, onLag: @escaping @Sendable () -> Void = {}) {
        self.limitBytes = limitBytes
        self.onLag = onLag
    }

    /// Connects the consumer: `wake` when items arrive while it is idle, `space` when the queue
    /// drops back under its limit after `hasSpace` said no. Wakes it at once if items wait.
    public func setConsumer(wake: @escaping @Sendable () -> Void, space: @escaping @Sendable () -> Void) {
        let call = state.withLock { state -> Bool in
            state.wake = wake
            state.space = space
            return state.idle && (!state.queue.isEmpty || state.finished) ? { state.idle = false; return true }() : false
        }
        if call { wake() }
    }

    /// Queues a reply or other control item. Not subject to the lag limit: the reader stops
    /// taking requests while the queue is over it (`hasSpace`) instead.
    public func enqueue(_ item: Item) {
        let wake = state.withLock { state -> (@Sendable () -> Void)? in
            guard !state.finished else { return nil }
            state.queuedBytes += Self.cost(item)
            state.queue.append(item)
            return Self.takeWake(&state)
        }
        wake?()
    }

    /// A reply slot, queued now and filled in later (`DeferredReply.fulfil`).
    public func deferReply() -> DeferredReply {
        let reply = DeferredReply(outbox: self)
        enqueue(.deferred(reply))
        return reply
    }

    /// Offers a live event. Returns false when the subscriber has lagged (now or before).
    public func offerEvent(seq: Int64, _ buffer: ByteBuffer) -> Bool {
        offerRuns([(seq, buffer)])
    }

    /// Offers runs of events, in order, under one lock and with one wake-up (the bus fans a
    /// committed batch out this way: each run is a slice of the batch's one buffer, holding one
    /// or more whole lines, with the seq of its last). Returns false when the subscriber has
    /// lagged (now or before): past the limit, the queued events are dropped and the lag notice
    /// queued instead.
    public func offerRuns(_ runs: [(lastSeq: Int64, lines: ByteBuffer)]) -> Bool {
        var lagNow = false
        var accepted = true
        let wake = state.withLock { state -> (@Sendable () -> Void)? in
            if state.lagged { accepted = false; return nil }
            if state.finished { return nil }
            for run in runs {
                if state.queuedBytes + run.lines.readableBytes > limitBytes {
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
                    break
                }
                state.queue.append(.event(seq: run.lastSeq, run.lines))
                state.queuedBytes += run.lines.readableBytes
            }
            return Self.takeWake(&state)
        }
        wake?()
        if lagNow { onLag() }
        return accepted
    }

    /// Takes up to `max` items without waiting. When there is nothing to send (or the first item
    /// is a reply not known yet) the consumer is idle until woken.
    public func poll(max: Int = 64) -> Poll {
        let (result, space) = state.withLock { state -> (Poll, (@Sendable () -> Void)?) in
            var items: [Item] = []
            while items.count < max, let first = state.queue.first {
                if case .deferred(let reply) = first {
                    // Read under this lock: a fulfil that lands after this check wakes the consumer
                    // (it takes this lock after setting the line), so none is missed.
                    guard let line = reply.ready else { break }
                    state.queue.removeFirst()
                    state.queuedBytes -= Self.deferredCost
                    items.append(.line(line))
                    continue
                }
                state.queue.removeFirst()
                state.queuedBytes -= Self.cost(first)
                if case .event(let seq, _) = first { state.lastHandedSeq = seq }
                items.append(first)
                // Control items end a batch so the consumer handles them in order.
                if case .line = first { continue }
                if case .event = first { continue }
                break
            }
            if items.isEmpty {
                if state.queue.isEmpty, state.finished { return (.finished, nil) }
                state.idle = true
                return (.idle, nil)
            }
            return (.items(items), Self.takeSpace(&state, limit: limitBytes))
        }
        space?()
        return result
    }

    /// Takes queued replies (only) from the front, so replay can interleave them.
    public func takeLeadingLines() -> [ByteBuffer] {
        let (lines, space) = state.withLock { state -> ([ByteBuffer], (@Sendable () -> Void)?) in
            var lines: [ByteBuffer] = []
            while let first = state.queue.first {
                switch first {
                case .line(let buffer):
                    state.queuedBytes -= buffer.readableBytes
                    lines.append(buffer)
                case .deferred(let reply):
                    guard let line = reply.ready else { return (lines, Self.takeSpace(&state, limit: limitBytes)) }
                    state.queuedBytes -= Self.deferredCost
                    lines.append(line)
                default:
                    return (lines, Self.takeSpace(&state, limit: limitBytes))
                }
                state.queue.removeFirst()
            }
            return (lines, Self.takeSpace(&state, limit: limitBytes))
        }
        space?()
        return lines
    }

    /// Records a replayed event as handed to the socket (for the lag notice's seq).
    public func noteHanded(seq: Int64) {
        state.withLock { $0.lastHandedSeq = seq }
    }

    /// Whether the request reader may take the next request: false while this connection's
    /// queue is over its limit, and then `space` is called once it is back under.
    public func hasSpace() -> Bool {
        state.withLock { state in
            if state.queuedBytes <= limitBytes || state.finished { return true }
            state.spaceWanted = true
            return false
        }
    }

    /// No more items will be accepted; the consumer drains what is queued and closes.
    public func finish() {
        let (wake, space) = state.withLock { state -> ((@Sendable () -> Void)?, (@Sendable () -> Void)?) in
            guard !state.finished else { return (nil, nil) }
            state.finished = true
            let space = state.spaceWanted ? state.space : nil
            state.spaceWanted = false
            return (Self.takeWake(&state), space)
        }
        wake?()
        space?()
    }

    /// Called by a deferred reply once its line is set.
    fileprivate func replyReady() {
        let wake = state.withLock { Self.takeWake(&$0) }
        wake?()
    }

    private static func takeWake(_ state: inout State) -> (@Sendable () -> Void)? {
        guard state.idle, let wake = state.wake else { return nil }
        state.idle = false
        return wake
    }

    private static func takeSpace(_ state: inout State, limit: Int) -> (@Sendable () -> Void)? {
        guard state.spaceWanted, state.queuedBytes <= limit else { return nil }
        state.spaceWanted = false
        return state.space
    }

    private static func cost(_ item: Item) -> Int {
        switch item {
        case .line(let buffer), .event(_, let buffer): buffer.readableBytes
        case .deferred: deferredCost
        case .replay, .lagged: 0
        }
    }
}

/// A reply filled in later, exactly once, from any thread (`Outbox.deferReply`).
public final class DeferredReply: Sendable {
    private let line = Mutex<ByteBuffer?>(nil)
    private let outbox: Outbox

    fileprivate init(outbox: Outbox) {
        self.outbox = outbox
    }

    public func fulfil(_ text: String) {
        var buffer = ByteBuffer(string: text)
        buffer.writeInteger(UInt8(ascii: "\n"))
        line.withLock { $0 = buffer }
        outbox.replyReady()
    }

    fileprivate var ready: ByteBuffer? { line.withLock { $0 } }
}

/// A subscription on one connection. `generation` tells a replay whether it is still wanted.
public struct Subscription: Sendable {
    public var generation: UInt64
    public var filter: TopicFilter
    public var since: Int64
}
