public import AsyncHTTPClient
public import Foundation
public import Logging
public import ServiceLifecycle
import NIOCore

/// Delivers the outbox to every configured target, each on its own loop with its own cursor
/// and queue in the store: a target that is down never holds back another, and nothing is
/// lost across restarts or days offline. Runs beside the tilld follower in `till-crm serve`
/// (it goes on while tilld is away, and tilld's follower goes on while a target is).
public final class OutboxService: Service, Sendable {
    let store: any OutboxStore
    public let targets: [any OutboxTarget]
    let settings: OutboxSettings
    let clock: OutboxClock
    let logger: Logger
    let client: HTTPClient?

    /// The targets `settings` names, on one HTTP client (shut down when `run` ends).
    public convenience init(store: any OutboxStore, settings: OutboxSettings, clock: OutboxClock = OutboxClock(), logger: Logger) {
        let client: HTTPClient? = settings.webhooks.isEmpty && settings.twenty.isEmpty ? nil : Self.makeClient(settings)
        var targets: [any OutboxTarget] = []
        if let client {
            targets += settings.webhooks.map { WebhookTarget($0, client: client) }
            targets += settings.twenty.map { TwentyTarget($0, client: client) }
        }
        targets += settings.jsonLines.map { JSONLinesTarget($0, clock: clock) }
        self.init(store: store, targets: targets, settings: settings, clock: clock, logger: logger, client: client)
    }

    public init(
        store: any OutboxStore, targets: [any OutboxTarget], settings: OutboxSettings, clock: OutboxClock, logger: Logger, client: HTTPClient? = nil
    ) {
        self.store = store
        self.targets = targets
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.client = client
    }

    static func makeClient(_ settings: OutboxSettings) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        // A signed delivery goes where it was configured to go, never where a 3xx points.
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit =
            max(8, (settings.webhooks.map(\.concurrency) + settings.twenty.map(\.concurrency)).max() ?? 8)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func run() async throws {
        do {
            for target in targets {
                try await store.outboxWrite { try $0.registerTarget(target.name) }
            }
        } catch {
            await shutDownClient()
            throw error
        }
        try? await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for target in self.targets {
                    group.addTask { await self.loop(target) }
                }
                group.addTask { await self.pruneLoop() }
            }
        }
        // Requests still in flight are cancelled: their entries stay pending, and go again
        // (with the same webhook-id) at the next start.
        await shutDownClient()
    }

    /// The HTTP client's shutdown, waited for two seconds at most: with a receiver gone and
    /// connection attempts backing off, AsyncHTTPClient's shutdown was seen never to return,
    /// which held `till-crm serve` past SIGTERM. The process is ending; nothing is lost.
    private func shutDownClient() async {
        guard let client else { return }
        let done = Doorbell()
        Task {
            try? await client.shutdown()
            done.ring()
        }
        await done.wait(timeout: .seconds(2))
    }

    // MARK: one round

    /// What a round did.
    public struct Round: Sendable, Hashable {
        public var delivered = 0
        public var failed = 0
        public var dead = 0
        /// Set when the target could not be reached: nothing more until then.
        public var pausedUntilMs: Int64?
        public var idle: Bool { delivered == 0 && failed == 0 }
    }

    /// Takes new entries into the target's queue, delivers what is due, records the outcomes.
    public func round(_ target: any OutboxTarget, outages: Int = 0) async throws -> Round {
        let now = clock.nowMs
        let name = target.name
        _ = try await store.outboxWrite { try $0.takeOutbox(target: name, limit: 10_000, nowMs: now) }
        let due = try await store.outboxRead {
            try $0.dueDeliveries(target: name, nowMs: now, headsOnly: target.concurrent, limit: target.batchSize)
        }
        guard !due.isEmpty else { return Round() }
        let outcomes = await target.deliver(due.map(\.entry), store: store)
        let after = clock.nowMs
        var round = Round()
        var delivered: [Int64] = []
        var failed: [OutboxDelivery] = []
        var outage: String?
        let maxAgeMs = Int64(settings.maxDays * 86_400_000)
        // One pause for the target and the entries that found it unreachable: they are due
        // again when the pause ends.
        let pauseMs = settings.pause.delayMs(afterAttempt: outages + 1, random: Double.random(in: 0...1))
        for (delivery, outcome) in zip(due, outcomes) {
            var delivery = delivery
            switch outcome {
            case .delivered:
                delivered.append(delivery.entry.seq)
                continue
            case .refused(let why):
                delivery.refusals += 1
                delivery.lastError = why
                delivery.nextMs = after + settings.retry.delayMs(afterAttempt: delivery.refusals, random: Double.random(in: 0...1))
            case .unreachable(let why):
                outage = why
                delivery.lastError = why
                delivery.nextMs = after + pauseMs
            }
            delivery.attempts += 1
            delivery.firstFailedMs = delivery.firstFailedMs ?? after
            if delivery.refusals >= settings.maxAttempts || after - delivery.ageFromMs >= maxAgeMs {
                delivery.state = .dead
                round.dead += 1
                logger.warning(
                    "outbox entry given up (dead)",
                    metadata: ["target": "\(name)", "entry": "\(delivery.entry.id)", "type": "\(delivery.entry.type.rawValue)",
                               "attempts": "\(delivery.attempts)", "error": "\(delivery.lastError ?? "")",
                               "hint": "fix the receiver, then: till-crm outbox retry \(delivery.entry.id)"])
            }
            failed.append(delivery)
        }
        round.delivered = delivered.count
        round.failed = failed.count
        if outage != nil { round.pausedUntilMs = after + pauseMs }
        let (finished, paused, problem) = (delivered, round.pausedUntilMs, outage)
        let failures = failed
        try await store.outboxWrite { transaction in
            if !finished.isEmpty {
                try transaction.markDelivered(target: name, seqs: finished, atMs: after)
                // The batch noted before it was written (JSON lines) is now marked: no cut-back.
                try transaction.setTargetCheckpoint(name, to: nil)
            }
            for failure in failures { try transaction.markFailed(failure) }
            if let problem {
                try transaction.setTargetHealth(name, error: problem, atMs: after, pausedUntilMs: paused)
            } else if let refusal = failures.last?.lastError {
                try transaction.setTargetHealth(name, error: refusal, atMs: after, pausedUntilMs: nil)
            }
        }
        return round
    }

    // MARK: loops

    func loop(_ target: any OutboxTarget) async {
        var outages = 0
        var pausedUntil: Int64 = 0
        var failing = false
        while !Task.isCancelled {
            if clock.nowMs < pausedUntil {
                await store.outboxDoorbell.wait(timeout: .milliseconds(min(settings.pollMs, max(1, pausedUntil - clock.nowMs))))
                // `till-crm outbox retry` (another process) lifts the pause in the store.
                if (try? await store.outboxRead({ try $0.targetPausedUntil(target.name) })) == .some(nil) { pausedUntil = 0 }
                continue
            }
            do {
                let round = try await self.round(target, outages: outages)
                if let until = round.pausedUntilMs {
                    if outages == 0 {
                        logger.warning(
                            "outbox target unreachable; entries are kept and retried with back-off",
                            metadata: ["target": "\(target.name)", "hint": "till-crm outbox status shows the error"])
                    }
                    outages += 1
                    pausedUntil = until
                    continue
                }
                if round.delivered > 0, outages > 0 || failing {
                    logger.notice("outbox target delivering again", metadata: ["target": "\(target.name)", "after_outages": "\(outages)"])
                    outages = 0
                    failing = false
                }
                if round.failed > 0 { failing = true }
                if round.idle { await store.outboxDoorbell.wait(timeout: .milliseconds(settings.pollMs)) }
            } catch is CancellationError {
                return
            } catch {
                logger.error("outbox delivery could not use the store; retrying", metadata: ["target": "\(target.name)", "error": "\(error)"])
                await store.outboxDoorbell.wait(timeout: .milliseconds(max(settings.pollMs, 1_000)))
            }
        }
    }

    /// Entries every target has delivered are deleted, every ten minutes.
    func pruneLoop() async {
        while !Task.isCancelled {
            await prune()
            try? await Task.sleep(for: .seconds(600))
        }
    }

    @discardableResult
    public func prune() async -> Int {
        let names = targets.map(\.name)
        let horizon = clock.nowMs - Int64(settings.keepDays * 86_400_000)
        do {
            return try await store.outboxWrite { try $0.pruneOutbox(targets: names, olderThanMs: horizon) }
        } catch {
            logger.warning("outbox prune failed; retried later", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
