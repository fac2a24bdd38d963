import DequeModule
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TillCore
import TillSystem

/// Orders, journals and fans out every event. Publishers (devices, the `publish` op) hand
/// events in; one writer thread assigns seqs, commits whatever is waiting in one transaction
/// (group commit: one sync for the lot), and only then offers the events to live subscribers
/// and acknowledges the publishers. One writer, so seq order, journal order and delivery
/// order agree.
///
/// The writer is a thread of its own rather than a task: the commit blocks on the sync, and a
/// blocked task would hold one of the two cooperative threads this box has. Running the
/// commit right there also saves the hops to GRDB's queue and back, which were most of the
/// latency above the sync itself. A submitter on a thread that may block (a scanner's reader,
/// `ThreadMayBlock`) commits its event itself when no commit is under way: the scan then
/// goes from the thread the kernel woke for it to the subscriber's event loop, without a
/// wake-up of the writer in between. A connection's event loop does the same with the
/// publishes of one read (`submit(held:)`, then `commitHeld` at the read's end): one
/// transaction for them, committed on the loop when no commit is under way, so their replies
/// and the fan-out to that loop's subscribers leave without crossing threads; the loop is
/// blocked for that one sync, which is what its subscribers would have waited for anyway.
/// Under load the writer's group commits take over.
///
/// When the journal cannot commit (disk full, read-only, a file replaced), the bus is
/// *degraded*: publishes fail with `journal_unavailable`; device events wait, in order, in a
/// bounded queue and are committed when the journal recovers (past the bound they are
/// counted as dropped). The first commit after recovery starts with a `daemon.degraded`
/// event that says how long, why, and how many events were held and dropped.
public final class EventBus: Service, Sendable {
    public struct Draining: Error, CustomStringConvertible {
        public var description: String { "tilld is shutting down; the event was not accepted, retry after restart" }
    }

    /// Who hands an event in decides what happens to it when the journal cannot commit.
    public enum Origin: Sendable {
        /// A socket client: it is told at once, and can retry.
        case client
        /// A device: nobody can retry it, so it waits for the journal (bounded).
        case device
    }

    /// The journal's state as `status` reports it.
    public struct Health: Sendable {
        public var fault: JournalFault?
        public var since: Date?
        /// Device events waiting for the journal.
        public var held: Int = 0
        /// Device events lost because the wait queue was full, since the fault began.
        public var dropped: Int = 0
        /// Client requests refused since the fault began.
        public var refused: Int = 0
        /// Device events dropped since tilld started (all faults).
        public var droppedTotal: Int = 0
    }

    private struct Pending {
        var topic: String
        var device: String?
        var data: JSONValue
        var origin: Origin
        /// Called once: when committed, or at the first failure (a held device event is
        /// committed later without a second call).
        var completion: (@Sendable (Result<Event, any Error>) -> Void)?
        /// When a held event was first refused by the journal: its time when it is committed,
        /// which says when the device saw it rather than when the disk came back.
        var heldAt: Date? = nil
    }

    struct LiveSubscriber {
        var outbox: Outbox
        var filter: TopicFilter
        var deliveredThrough: Int64
    }

    private struct State {
        var pending: [Pending] = []
        /// Device events that arrived while the journal could not commit, oldest first.
        var held: Deque<Pending> = []
        var lastSeq: Int64
        var subscribers: [UInt64: LiveSubscriber] = [:]
        var accepting = true
        var finished: CheckedContinuation<Void, Never>? = nil
        var health = Health()
        var appendedSincePrune = 0
        /// A commit is under way (on the writer thread, or inline on a submitter's): one at a
        /// time, so seqs, journal order and delivery order stay one order.
        var committing = false
        /// The writer thread is up (inline commits wait for it: it prunes first).
        var writerStarted = false

        /// What is waiting, for a commit on the caller's thread, when one may happen there now
        /// (no commit under way, the writer up, no fault, not shutting down); the commit is
        /// then under way.
        mutating func takeForInlineCommit() -> [Pending]? {
            guard !pending.isEmpty, writerStarted, !committing, health.fault == nil, accepting else { return nil }
            committing = true
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }

    private let state: Mutex<State>
    /// Only the writer thread touches it; apart from `state` so that renewing it (a durable
    /// file write, once per 4096 seqs) never holds the lock publishers and subscribers take.
    private let highWater: Mutex<SeqHighWaterMark>
    private let wake = DispatchSemaphore(value: 0)
    public let journal: Journal
    private let logger: Logger
    private let retention: @Sendable () -> (days: Int, events: Int?)
    private let clock: @Sendable () -> Date
    private let holdLimit: Int
    private let retryInterval: Double

    /// - Parameters:
    ///   - highWaterMarkPath: where the seq high-water mark lives (beside the journal, not in it).
    ///   - holdLimit: how many device events may wait for a journal that cannot commit.
    public init(
        journal: Journal,
        highWaterMarkPath: String,
        logger: Logger,
        holdLimit: Int = 10_000,
        retryInterval: Double = 1,
        retention: @escaping @Sendable () -> (days: Int, events: Int?),
        clock: @escaping @Sendable () -> Date = Date.init
    ) throws {
        self.journal = journal
        self.logger = logger
        self.retention = retention
        self.clock = clock
        self.holdLimit = holdLimit
        self.retryInterval = retryInterval
        let journalLast = try journal.lastSeq()
        let (lastSeq, note) = SeqHighWaterMark.start(journalLastSeq: journalLast, recorded: try SeqHighWaterMark.read(highWaterMarkPath))
        if let note { logger.warning("seq continues past the journal", metadata: ["why": "\(note)", "seq": "\(lastSeq)"]) }
        let mark = try SeqHighWaterMark(path: highWaterMarkPath, lastSeq: lastSeq)
        state = Mutex(State(lastSeq: lastSeq))
        highWater = Mutex(mark)
    }

    /// The seq of the newest event delivered to live subscribers.
    public var lastSeq: Int64 { state.withLock { $0.lastSeq } }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    public var health: Health { state.withLock { $0.health } }

    /// Throws the fault as a `journal_unavailable` error while the journal cannot commit:
    /// ops whose effect would be an event (print, drawer, display) check it before acting,
    /// so a drawer never opens without its `drawer.opened` being journaled.
    public func requireHealthy() throws {
        let fault = state.withLock { state -> JournalFault? in
            guard let fault = state.health.fault else { return nil }
            state.health.refused += 1
            return fault
        }
        if let fault { throw fault.wireError }
    }

    /// Journals an event and fans it out; returns once it is durable.
    @discardableResult
    public func publish(topic: String, device: String? = nil, data: JSONValue, origin: Origin = .client) async throws -> Event {
        try await withCheckedThrowingContinuation { continuation in
            submit(topic: topic, device: device, data: data, origin: origin) { continuation.resume(with: $0) }
        }
    }

    /// Queues an event without waiting; `completion` runs once it is durable and fanned out
    /// (or failed). Events submitted in order are committed, and completed, in that order:
    /// a connection can pipeline publishes and still answer them in order.
    ///
    /// `held`: the caller commits later itself (`commitHeld`, from an event loop at the end of
    /// a read): the event waits in the batch without waking the writer.
    public func submit(
        topic: String, device: String? = nil, data: JSONValue, origin: Origin = .client, held: Bool = false,
        completion: @escaping @Sendable (Result<Event, any Error>) -> Void
    ) {
        enum Route { case refused, queued, held, inline([Pending]) }
        let mayCommitHere = ThreadMayBlock.current
        let route = state.withLock { state -> Route in
            guard state.accepting else { return .refused }
            state.pending.append(Pending(topic: topic, device: device, data: data, origin: origin, completion: completion))
            if held { return .held }
            guard mayCommitHere, let batch = state.takeForInlineCommit() else { return .queued }
            return .inline(batch)
        }
        switch route {
        case .refused:
            completion(.failure(Draining()))
        case .held:
            break
        case .queued:
            wake.signal()
        case .inline(let batch):
            commitInline(batch)
        }
    }

    /// Commits what is waiting, here on the caller's thread when no commit is under way (an
    /// event loop at the end of a read: the publishes of that read are one transaction, and
    /// their replies and fan-out go out from this loop with no wake-up of the writer and back),
    /// else hands it to the writer.
    public func commitHeld() {
        if let batch = state.withLock({ $0.takeForInlineCommit() }) {
            commitInline(batch)
        } else if state.withLock({ !$0.pending.isEmpty }) {
            wake.signal()
        }
    }

    private func commitInline(_ batch: [Pending]) {
        commit(batch, retrying: false)
        // What arrived meanwhile is the writer's, and so are a shutdown waiting for this
        // commit and a fault it ran into (the writer retries on its timer).
        let writerNeeded = state.withLock { state -> Bool in
            state.committing = false
            return !state.pending.isEmpty || !state.accepting || state.health.fault != nil
        }
        if writerNeeded { wake.signal() }
    }

    public func run() async throws {
        let thread = Thread { [self] in
            ThreadName.set("tilld-journal")  // Thread.name alone does not reach the kernel (ps, perf)
            writerLoop()
            let finished = state.withLock { state in
                defer { state.finished = nil }
                return state.finished
            }
            finished?.resume()
        }
        thread.name = "tilld-journal"
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    state.withLock { $0.finished = continuation }
                    thread.start()
                }
            } onCancel: {
                self.stopAccepting()
            }
        } onGracefulShutdown: {
            // Stop taking new events; the writer commits what was accepted, then ends.
            self.stopAccepting()
        }
    }

    private func stopAccepting() {
        state.withLock { $0.accepting = false }
        wake.signal()
    }

    // MARK: the writer thread

    private func writerLoop() {
        prune()
        state.withLock { $0.writerStarted = true }
        while true {
            let degraded = state.withLock { $0.health.fault != nil }
            let woken = degraded ? wake.wait(timeout: .now() + retryInterval) == .success : { wake.wait(); return true }()
            // An inline commit under way: it signals when it is done and something is left.
            let (batch, accepting, commitNow) = state.withLock { state -> ([Pending], Bool, Bool) in
                guard !state.committing else { return ([], state.accepting, false) }
                defer { state.pending.removeAll(keepingCapacity: true) }
                let commitNow = !state.pending.isEmpty || state.health.fault != nil
                state.committing = commitNow
                return (state.pending, state.accepting, commitNow)
            }
            if commitNow {
                commit(batch, retrying: !woken)
                state.withLock { $0.committing = false }
            }
            if !accepting, state.withLock({ $0.pending.isEmpty && !$0.committing }) { break }
        }
        let (lastSeq, held) = state.withLock { ($0.lastSeq, $0.held.count) }
        let mark = highWater.withLock { $0 }
        if held > 0 {
            logger.error("stopping with device events that the journal could not take; they are lost", metadata: ["count": "\(held)"])
        }
        do {
            try mark.close(lastSeq: lastSeq)
        } catch {
            logger.warning("could not record the clean stop; seq will skip ahead at the next start", metadata: ["error": "\(error)"])
        }
    }

    /// Commits held events (if any), then `batch`. On failure the bus is (or stays) degraded.
    private func commit(_ batch: [Pending], retrying: Bool) {
        let now = clock()
        var (items, firstSeq, recovering) = state.withLock { state -> ([Pending], Int64, Health?) in
            guard state.health.fault != nil else { return (batch, state.lastSeq + 1, nil) }
            return (Array(state.held) + batch, state.lastSeq + 1, state.health)
        }
        if let recovering, !recovering.fault!.needsRestart {
            // Said first, so a subscriber reads why the held events come late before it reads them.
            let notice: JSONValue = [
                "state": "recovered",
                "cause": .string(recovering.fault!.cause.rawValue),
                "problem": .string(recovering.fault!.message),
                "since": .string(Timestamp.format(recovering.since ?? now)),
                "held": .int(Int64(recovering.held)),
                "dropped": .int(Int64(recovering.dropped)),
                "refused": .int(Int64(recovering.refused)),
            ]
            items.insert(Pending(topic: "daemon.degraded", device: nil, data: notice, origin: .device, completion: nil), at: 0)
        }
        if items.isEmpty {
            // Degraded with nothing waiting: learn whether the journal is back.
            probe()
            return
        }
        var rows: [(event: Event, dataJSON: String)] = []
        rows.reserveCapacity(items.count)
        for (offset, item) in items.enumerated() {
            let event = Event(seq: firstSeq + Int64(offset), time: item.heldAt ?? now, topic: item.topic, device: item.device, data: item.data)
            rows.append((event, JSONText.encode(item.data)))
        }
        if let fault = write(rows) {
            fail(batch, with: fault, isRetry: retrying)
            return
        }
        let recovered = recovering.map { _ in
            state.withLock { state -> Health in
                let previous = state.health
                state.held.removeAll()
                state.health = Health(droppedTotal: previous.droppedTotal)
                return previous
            }
        }
        if let recovered {
            logger.notice("journal recovered; held events committed", metadata: [
                "held": "\(recovered.held)", "dropped": "\(recovered.dropped)", "refused": "\(recovered.refused)",
            ])
        }
        fanOut(rows)
        for (item, row) in zip(items, rows) { item.completion?(.success(row.event)) }
        if state.withLock({ $0.appendedSincePrune >= 1024 }) { prune() }
    }

    /// Writes rows durably; returns the fault instead when they are not in the journal.
    private func write(_ rows: [(event: Event, dataJSON: String)]) -> JournalFault? {
        do {
            try highWater.withLock { mark in try mark.reserve(through: rows.last!.event.seq) }
            try journal.append(rows)
        } catch {
            return JournalFault.classify(error, journalPath: journal.path)
        }
        // Checked after the commit, before anyone is told: a file deleted before or during the
        // commit took the events along.
        if let problem = journal.replacementProblem() { return JournalFault(.replaced, problem) }
        return nil
    }

    private func probe() {
        let fault: JournalFault?
        if let problem = journal.replacementProblem() {
            fault = JournalFault(.replaced, problem)
        } else {
            do {
                try journal.probe()
                fault = nil
            } catch {
                fault = JournalFault.classify(error, journalPath: journal.path)
            }
        }
        if let fault {
            fail([], with: fault, isRetry: true)
            return
        }
        // Nothing was held, nothing dropped: commit the notice alone so the window is on record.
        commit([], retrying: false)
    }

    /// Tells clients, holds device events (or counts them dropped), and records the fault.
    private func fail(_ batch: [Pending], with fault: JournalFault, isRetry: Bool) {
        var toldFailed: [Pending] = []
        let now = clock()
        let (began, dropped) = state.withLock { state -> (Bool, Int) in
            let began = state.health.fault == nil
            if began { state.health.since = now }
            if began || state.health.fault != fault { state.health.fault = fault }
            var dropped = 0
            for var item in batch {
                switch item.origin {
                case .client:
                    state.health.refused += 1
                    toldFailed.append(item)
                case .device:
                    if state.held.count < holdLimit {
                        if item.completion != nil { toldFailed.append(item) }
                        item.completion = nil
                        item.heldAt = item.heldAt ?? now
                        state.held.append(item)
                    } else {
                        dropped += 1
                        toldFailed.append(item)
                    }
                }
            }
            state.health.dropped += dropped
            state.health.droppedTotal += dropped
            state.health.held = state.held.count
            return (began, dropped)
        }
        if began {
            logger.error("the journal cannot commit; tilld is degraded: publishes are refused, device events are held", metadata: [
                "problem": "\(fault.message)", "cause": "\(fault.cause.rawValue)", "hold_limit": "\(holdLimit)",
            ])
        } else if !isRetry {
            logger.debug("journal still cannot commit", metadata: ["problem": "\(fault.message)"])
        }
        if dropped > 0 {
            logger.error("device events dropped: the queue for the journal is full", metadata: ["dropped": "\(dropped)", "hold_limit": "\(holdLimit)"])
        }
        let error = fault.wireError
        for item in toldFailed { item.completion?(.failure(error)) }
    }

    /// Records the new `lastSeq` and offers the batch to every live subscriber, under the bus
    /// lock, so a subscriber switching from replay to live cannot fall in between. Each
    /// subscriber gets slices of one shared buffer (`FanOutBatch`), and each distinct filter is
    /// matched against the batch's topics once, however many subscribers share it.
    private func fanOut(_ rows: [(event: Event, dataJSON: String)]) {
        let batch = FanOutBatch(rows)
        let lastSeq = batch.lastSeq!
        let lagged: [UInt64] = state.withLock { state in
            state.lastSeq = lastSeq
            var wantedBy: [TopicFilter: [Bool]] = [:]
            var lagged: [UInt64] = []
            for (id, subscriber) in state.subscribers {
                let wanted = wantedBy[subscriber.filter] ?? {
                    let wanted = batch.wanted(by: subscriber.filter)
                    wantedBy[subscriber.filter] = wanted
                    return wanted
                }()
                // One lock and one wake-up per subscriber and batch, not per event.
                if subscriber.outbox.offerRuns(batch.runs(after: subscriber.deliveredThrough, wanted: wanted)) {
                    state.subscribers[id]!.deliveredThrough = max(subscriber.deliveredThrough, lastSeq)
                } else {
                    state.subscribers[id] = nil
                    lagged.append(id)
                }
            }
            state.appendedSincePrune += rows.count
            return lagged
        }
        for id in lagged { logger.warning("subscriber lagged and is disconnected", metadata: ["connection": "\(id)"]) }
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

    private func prune() {
        let (days, events) = retention()
        state.withLock { $0.appendedSincePrune = 0 }
        do {
            let removed = try journal.prune(olderThan: clock().addingTimeInterval(-Double(days) * 86400), keepLast: events)
            if removed > 0 { logger.info("journal retention removed old events", metadata: ["count": "\(removed)"]) }
        } catch {
            logger.warning("journal retention failed; will retry later", metadata: ["error": "\(error)"])
        }
    }
}
