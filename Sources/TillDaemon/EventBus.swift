public import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization
public import TillCore

/// Orders, journals and fans out every event. Publishers (devices, the `publish` op)
/// hand events in; the bus's `run()` loop assigns seqs, commits a whole batch in one
/// transaction, and only then offers the events to live subscribers and acknowledges
/// the publishers. One writer, so seq order, journal order and delivery order agree.
public final class EventBus: Service, Sendable {
    public struct Draining: Error, CustomStringConvertible {
        public var description: String { "tilld is shutting down; the event was not accepted, retry after restart" }
    }

    private struct Pending {
        var topic: String
        var device: String?
        var data: JSONValue
        var completion: @Sendable (Result<Event, any Error>) -> Void
    }

    struct LiveSubscriber {
        var outbox: Outbox
        var filter: TopicFilter
        var deliveredThrough: Int64
    }

    private struct State {
        var pending: [Pending] = []
        var lastSeq: Int64
        var subscribers: [UInt64: LiveSubscriber] = [:]
        var accepting = true
        var appendedSincePrune = 0
    }

    private let state: Mutex<State>
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    public let journal: Journal
    private let logger: Logger
    private let retention: @Sendable () -> (days: Int, events: Int?)
    private let clock: @Sendable () -> Date

    public init(
        journal: Journal,
        logger: Logger,
        retention: @escaping @Sendable () -> (days: Int, events: Int?),
        clock: @escaping @Sendable () -> Date = Date.init
    ) throws {
        self.journal = journal
        self.logger = logger
        self.retention = retention
        self.clock = clock
        state = Mutex(State(lastSeq: try journal.lastSeq()))
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The seq of the newest event delivered to live subscribers.
    public var lastSeq: Int64 { state.withLock { $0.lastSeq } }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Journals an event and fans it out; returns once it is durable.
    @discardableResult
    public func publish(topic: String, device: String? = nil, data: JSONValue) async throws -> Event {
        try await withCheckedThrowingContinuation { continuation in
            submit(topic: topic, device: device, data: data) { continuation.resume(with: $0) }
        }
    }

    /// Queues an event without waiting; `completion` runs once it is durable and fanned out
    /// (or failed). Events submitted in order are committed, and completed, in that order:
    /// a connection can pipeline publishes and still answer them in order.
    public func submit(topic: String, device: String? = nil, data: JSONValue, completion: @escaping @Sendable (Result<Event, any Error>) -> Void) {
        let accepted = state.withLock { state -> Bool in
            guard state.accepting else { return false }
            state.pending.append(Pending(topic: topic, device: device, data: data, completion: completion))
            return true
        }
        if accepted { ring.yield() } else { completion(.failure(Draining())) }
    }

    public func run() async throws {
        await prune()
        await withGracefulShutdownHandler {
            for await _ in doorbell {
                await drain()
            }
        } onGracefulShutdown: {
            // Stop taking new events; the loop commits what was accepted, then ends.
            self.state.withLock { $0.accepting = false }
            self.ring.finish()
        }
        await drain()
    }

    private func drain() async {
        while true {
            let (batch, firstSeq) = state.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return (state.pending, state.lastSeq + 1)
            }
            if batch.isEmpty { return }
            await commit(batch, firstSeq: firstSeq)
        }
    }

    private func commit(_ batch: [Pending], firstSeq: Int64) async {
        let now = clock()
        var rows: [(event: Event, dataJSON: String)] = []
        rows.reserveCapacity(batch.count)
        for (offset, item) in batch.enumerated() {
            let event = Event(seq: firstSeq + Int64(offset), time: now, topic: item.topic, device: item.device, data: item.data)
            rows.append((event, JSONText.encode(item.data)))
        }
        do {
            try await journal.append(rows)
        } catch {
            logger.error("journal write failed; events refused", metadata: ["error": "\(error)", "journal": "\(journal.path)"])
            let failure = WireError(.deviceError, "journal write failed (\(error)); is the disk full or read-only? \(journal.path)")
            for item in batch { item.completion(.failure(failure)) }
            return
        }
        let lines = rows.map { row -> ByteBuffer in
            var buffer = ByteBuffer(string: row.event.wireLine(dataJSON: row.dataJSON))
            buffer.writeInteger(UInt8(ascii: "\n"))
            return buffer
        }
        let lagged: [UInt64] = state.withLock { state in
            state.lastSeq = rows.last!.event.seq
            var lagged: [UInt64] = []
            for (id, subscriber) in state.subscribers {
                var delivered = subscriber.deliveredThrough
                var alive = true
                for (row, line) in zip(rows, lines) where row.event.seq > delivered {
                    delivered = row.event.seq
                    if subscriber.filter.matches(row.event.topic), !subscriber.outbox.offerEvent(seq: row.event.seq, line) {
                        alive = false
                        break
                    }
                }
                if alive {
                    state.subscribers[id]!.deliveredThrough = delivered
                } else {
                    state.subscribers[id] = nil
                    lagged.append(id)
                }
            }
            state.appendedSincePrune += rows.count
            return lagged
        }
        for id in lagged { logger.warning("subscriber lagged and is disconnected", metadata: ["connection": "\(id)"]) }
        for (item, row) in zip(batch, rows) { item.completion(.success(row.event)) }
        if state.withLock({ $0.appendedSincePrune >= 1024 }) { await prune() }
    }

    /// Registers a live subscriber from "now": `onRegistered` runs under the bus lock with the
    /// current seq, so a reply queued there precedes every event the subscriber gets.
    public func subscribeLive(id: UInt64, outbox: Outbox, filter: TopicFilter, onRegistered: (Int64) -> Void) {
        state.withLock { state in
            state.subscribers[id] = LiveSubscriber(outbox: outbox, filter: filter, deliveredThrough: state.lastSeq)
            onRegistered(state.lastSeq)
        }
    }

    /// Switches a replaying subscriber to live if it has caught up with what was fanned out.
    /// `stillWanted` is checked under the lock so an unsubscribe cannot be overtaken.
    public func goLiveIfCaughtUp(
        id: UInt64, outbox: Outbox, filter: TopicFilter, cursor: Int64, stillWanted: () -> Bool
    ) -> Bool {
        state.withLock { state in
            guard cursor >= state.lastSeq else { return false }
            guard stillWanted() else { return true }
            state.subscribers[id] = LiveSubscriber(outbox: outbox, filter: filter, deliveredThrough: cursor)
            return true
        }
    }

    public func unsubscribe(id: UInt64) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }

    private func prune() async {
        let (days, events) = retention()
        state.withLock { $0.appendedSincePrune = 0 }
        do {
            let removed = try await journal.prune(olderThan: clock().addingTimeInterval(-Double(days) * 86400), keepLast: events)
            if removed > 0 { logger.info("journal retention removed old events", metadata: ["count": "\(removed)"]) }
        } catch {
            logger.warning("journal retention failed; will retry later", metadata: ["error": "\(error)"])
        }
    }
}
