public import Foundation
public import Logging
public import ServiceLifecycle
import TillClient
import TillCore

/// `till-crm serve`: follows tilld's journal from its stored cursor, applies each event
/// exactly once, greets identified customers on the socket, and reconnects with backoff
/// when tilld is away (restart, crash, not yet started).
public struct CRMService: Service {
    public static let topics = ["sale.*", "refund.*", "service.*", "customer.identified", "scanner.data"]
    /// How often moments raised by the inactivity scan (which no event announces) are looked
    /// for when no event arrives to publish them with.
    public static let publishPoll = Duration.seconds(5)

    /// The most events applied in one transaction. Large enough that a replayed backlog costs
    /// one fsync per few hundred events; small enough that greetings are not held back long.
    /// Halved each time a batch lost a race with another till's on a shared store
    /// (`CRMStore.racesLost`), doubled back with each that did not, down to `minBatch`.
    public static let maxBatch = 256
    public static let minBatch = 8

    let socket: String
    let store: any CRMStore
    let processor: TillEventProcessor
    let logger: Logger
    let moments: MomentPublisher
    /// How often regulars are scanned for going quiet; nil: never (tests, a second instance).
    let scanInterval: Duration?
    /// Where `till-crm status` reads how the service is doing (nil: nowhere).
    let status: ServiceStatusFile?

    public init(
        socket: String, store: any CRMStore, processor: TillEventProcessor, logger: Logger, scanInterval: Duration? = .seconds(3600),
        status: ServiceStatusFile? = nil
    ) {
        self.socket = socket
        self.store = store
        self.processor = processor
        self.logger = logger
        self.moments = MomentPublisher(store: store, logger: logger)
        self.scanInterval = scanInterval
        self.status = status
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await followForever() }
            if let scanInterval { group.addTask { try await scanForever(every: scanInterval) } }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Scans regulars for going quiet: a minute after start, then every `interval`. The
    /// moments it raises are published by the follower.
    private func scanForever(every interval: Duration) async throws {
        var wait = Duration.seconds(60)
        let scan = MomentScan(rules: processor.moments)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { [wait] in try await Task.sleep(for: wait) }
            } catch {
                return
            }
            wait = interval
            let started = ContinuousClock.now
            do {
                let result = try await scan.run(in: store, processor: processor, now: Date())
                logger.info("scanned regulars for going quiet", metadata: [
                    "regulars": "\(result.regulars)", "quiet": "\(result.quiet)", "raised": "\(result.raised)", "took": "\(ContinuousClock.now - started)",
                ])
            } catch is StoreUnreachable {
                // The follower says that (once, then a summary); the scan runs again next time.
                logger.debug("the scan for quiet regulars waits for the customer database")
            } catch {
                logger.error("the scan for quiet regulars failed; it runs again at the next interval", metadata: ["error": "\(error)"])
            }
        }
    }

    private func followForever() async throws {
        var delay = Duration.milliseconds(250)
        // Graceful shutdown does not cancel this task by itself: check it on every turn, and
        // let it cut both the connection and the back-off sleep short.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await follow() }
                delay = .milliseconds(250)
            } catch is CancellationError {
                return
            } catch let unreachable as StoreUnreachable {
                // Not tilld's fault and not the events': wait for the store, then go on from the cursor.
                guard await waitForStore(unreachable) else { return }
                delay = .milliseconds(250)
                continue
            } catch {
                if Task.isShuttingDownGracefully { return }
                let what = error is ConnectError ? "tilld is not reachable; retrying" : "following tilld stopped; resubscribing from the cursor"
                logger.warning("\(what)", metadata: ["socket": "\(socket)", "reason": "\(error)", "retry_in": "\(delay)"])
            }
            do {
                try await cancelWhenGracefulShutdown { [delay] in try await Task.sleep(for: delay) }
            } catch {
                return
            }
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// The store cannot be reached: says so once, stops applying (tilld's journal keeps every
    /// event meanwhile), tries the store with back-off, says every ten minutes that it still
    /// cannot, and returns true once it can (false when till-crm is stopping).
    private func waitForStore(_ first: StoreUnreachable) async -> Bool {
        let since = Date()
        logger.error("the customer database cannot be reached; till-crm stops applying until it can, and then goes on from where it stopped (nothing is lost while tilld's journal keeps the events: its retention)", metadata: [
            "problem": "\(first.description)", "status": "till-crm status",
        ])
        status?.update { $0.storeUnreachable(since: since, problem: first.description) }
        var delay = Duration.seconds(1)
        var tries = 0
        var lastSummary = ContinuousClock.now
        var problem = first.description
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { [delay] in try await Task.sleep(for: delay) }
            } catch {
                return false
            }
            tries += 1
            do {
                _ = try await store.read { try $0.cursors() }
                let outage = Int(Date().timeIntervalSince(since))
                logger.notice("the customer database is back; applying what tilld journaled meanwhile", metadata: ["outage_seconds": "\(outage)", "tries": "\(tries)"])
                status?.update { $0.storeReachable() }
                return true
            } catch {
                problem = "\(error)"
            }
            if ContinuousClock.now - lastSummary >= .seconds(600) {
                lastSummary = ContinuousClock.now
                logger.error("the customer database still cannot be reached", metadata: [
                    "for_minutes": "\(Int(Date().timeIntervalSince(since) / 60))", "tries": "\(tries)", "problem": "\(problem)",
                ])
            }
            delay = min(delay * 2, .seconds(30))
        }
        return false
    }

    /// One session: subscribe from the cursor, apply until it ends (lag, restart, error).
    private func follow() async throws {
        // Greetings go out on a connection of their own: the subscription is read only as fast
        // as events are applied (that is what paces tilld's replay and bounds memory), so a
        // publish reply queued behind unread events would wait for them.
        try await TillConnection.with(socket: socket) { publisher in
            try await TillConnection.with(socket: socket) { till in
                // One cursor per till (its stream of seqs): the followers of a chain's tills
                // share one store.
                let (cursorName, start) = try await store.cursor(adopting: till.hello.stream)
                var since = start
                do {
                    try await till.request("subscribe", ["topics": .array(Self.topics.map(JSONValue.string)), "since": .int(since)])
                } catch let error as WireError where error.code == .journalTruncated {
                    let oldest = error.details?["oldest"]?.intValue ?? since
                    logger.error("events were pruned from tilld's journal before till-crm saw them; continuing from the oldest held", metadata: ["cursor": "\(since)", "oldest": "\(oldest)"])
                    since = oldest - 1
                    try await till.request("subscribe", ["topics": .array(Self.topics.map(JSONValue.string)), "since": .int(since)])
                }
                logger.info("following tilld", metadata: [
                    "socket": "\(socket)", "since": "\(since)", "server": "\(till.hello.server)", "cursor": "\(cursorName)",
                ])
                // Moments whose publishing a crash cut off are looked for in the journal first.
                try await moments.settle(socket: socket)
                let acks = FollowerAcks(logger: logger)
                acks.applied(through: since)
                try await acks.send(on: publisher, idle: true)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while true {
                            try await moments.publishIfIdle(publisher)
                            try await acks.send(on: publisher, idle: true)
                            try await Task.sleep(for: Self.publishPoll)
                        }
                    }
                    group.addTask {
                        var limit = Self.maxBatch
                        while true {
                            // Everything that arrived while the previous batch was committing: one
                            // transaction for a burst or a replay, a lone sale applied at once.
                            let lines = try await till.nextEvents(max: limit)
                            let racesLost = store.racesLost
                            if lines.isEmpty { return }
                            var events: [Event] = []
                            var lagged: Int64?
                            for line in lines {
                                switch line {
                                case .event(let event) where lagged == nil: events.append(event)
                                case .lagged(let seq): lagged = lagged ?? seq
                                default: break
                                }
                            }
                            try await applyAndReport(events, cursor: cursorName, publisher)
                            if let last = events.last { acks.applied(through: last.seq) }
                            try await acks.send(on: publisher, idle: false)
                            limit = store.racesLost > racesLost ? max(Self.minBatch, limit / 2) : min(Self.maxBatch, limit * 2)
                            try await moments.publishIfIdle(publisher)
                            if let lagged {
                                logger.notice("fell behind tilld; resubscribing", metadata: ["seq": "\(lagged)"])
                                return
                            }
                        }
                    }
                    // The follower ending (tilld went away, a lag) ends the session; the poller with it.
                    try await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    /// Commits the batch, then says what it produced: greetings go to the till only once the
    /// sales they describe are stored, pipelined so tilld journals them in one commit.
    private func applyAndReport(_ events: [Event], cursor: String, _ till: TillConnection) async throws {
        let processor = self.processor
        do {
            let applied = try await store.applyIsolatingFailure(events, cursor: cursor) { event, transaction in
                try processor.process(event, in: transaction)
            }
            try await report(applied, till)
        } catch let failure as EventNotApplied<[ProcessingOutcome]> {
            try await report(failure.applied, till)
            // The store gone as a whole is said once, by the caller; an event it refused is this.
            if let unreachable = failure.underlying as? StoreUnreachable { throw unreachable }
            // Not skipped: skipping would lose it. The loop reconnects with back-off and retries
            // from the cursor; tilld keeps journaling meanwhile, so nothing is lost while stuck.
            let contended = failure.underlying is StoreContended
            logger.log(level: contended ? .warning : .error, "an event could not be stored; till-crm retries it and holds back the events after it", metadata: [
                "seq": "\(failure.event.seq)", "topic": "\(failure.event.topic)", "error": "\(failure.underlying)",
                "what_to_do": contended
                    ? "nothing is lost; if this repeats, the database server is overloaded by the tills writing at once (check its CPU and disk)"
                    : "if this repeats, check the disk and the data directory's permissions, then report this line",
            ])
            throw failure.underlying
        }
    }

    private func report(_ applied: [(event: Event, outcome: [ProcessingOutcome])], _ till: TillConnection) async throws {
        var greetings: [(seq: Int64, greeting: CustomerRecognized)] = []
        for (event, outcomes) in applied {
            for outcome in outcomes {
                switch outcome {
                case .recognized(let greeting):
                    greetings.append((event.seq, greeting))
                case .skipped(let reason):
                    logger.warning("event skipped", metadata: ["seq": "\(event.seq)", "topic": "\(event.topic)", "reason": "\(reason)"])
                case .note(let text):
                    logger.info("\(text)", metadata: ["seq": "\(event.seq)"])
                }
            }
        }
        guard !greetings.isEmpty else { return }
        let replies = await till.pipeline(greetings.map { ("publish", ["topic": "customer.recognized", "data": $0.greeting.data]) })
        for (greeting, reply) in zip(greetings, replies) {
            guard case .failure(let error) = reply else { continue }
            // The sale is stored either way; a greeting tilld refuses is not worth a reconnect,
            // but a lost connection is (the loop resubscribes from the cursor).
            guard error is WireError else { throw error }
            logger.warning("customer.recognized was not published", metadata: ["seq": "\(greeting.seq)", "error": "\(error)"])
        }
    }
}
