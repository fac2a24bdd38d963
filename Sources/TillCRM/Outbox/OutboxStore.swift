public import Foundation

/// An outbox entry queued for one target, and how its delivery is going.
public struct OutboxDelivery: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        /// Waiting for its turn, or for its back-off to end.
        case pending
        /// Given up on (too many refusals, or undelivered for too long): `till-crm outbox retry`
        /// puts it back. It no longer holds back its customer's later entries.
        case dead
    }

    public var target: String
    public var entry: OutboxEntry
    public var state: State
    /// Every try that did not deliver it.
    public var attempts: Int
    /// Tries the receiver answered with a refusal (counted towards `max_attempts`); tries that
    /// never reached it (the receiver down, the network gone) are the target's outage, not the
    /// entry's fault, and only count towards `max_days`.
    public var refusals: Int
    public var nextMs: Int64
    public var firstFailedMs: Int64?
    public var lastError: String?
    /// When `till-crm outbox retry` last put it back.
    public var retriedMs: Int64?

    /// Where its `max_days` count from: when it was written, or when it was last retried. Not
    /// from its first failure: an entry queued behind its customer's earlier ones for a week is
    /// as stale as one tried all week, and a customer with k entries must not take k × max_days
    /// to run out.
    public var ageFromMs: Int64 { max(entry.createdMs, retriedMs ?? .min) }

    public init(
        target: String, entry: OutboxEntry, state: State = .pending, attempts: Int = 0, refusals: Int = 0, nextMs: Int64,
        firstFailedMs: Int64? = nil, lastError: String? = nil, retriedMs: Int64? = nil
    ) {
        self.target = target
        self.entry = entry
        self.state = state
        self.attempts = attempts
        self.refusals = refusals
        self.nextMs = nextMs
        self.firstFailedMs = firstFailedMs
        self.lastError = lastError
        self.retriedMs = retriedMs
    }
}

/// One target's state, for `till-crm outbox status`.
public struct OutboxTargetStatus: Sendable, Hashable {
    public var name: String
    /// Entries written after the target's cursor, not yet queued for it.
    public var waiting: Int
    public var pending: Int
    public var dead: Int
    public var oldestPendingMs: Int64?
    public var delivered: Int
    public var lastDeliveredMs: Int64?
    public var lastError: String?
    public var lastErrorMs: Int64?
    public var pausedUntilMs: Int64?
}

/// The delivery side of the outbox: per-target cursors and queues, kept in the store so that
/// delivery survives restarts and days offline. Bookkeeping only: these writes are not customer
/// changes and make no outbox entries of their own.
public protocol OutboxTransaction {
    /// How many entries the outbox keeps.
    func outboxCount() throws -> Int
    /// Entries after `seq`, oldest first (for tools and tests).
    func outboxEntries(afterSeq seq: Int64, limit: Int) throws -> [OutboxEntry]
    /// Adds the target if it is new; a new target starts at the oldest entry still kept.
    func registerTarget(_ name: String) throws
    /// Queues for the target the entries past its cursor (at most `limit`), due now; returns how many.
    func takeOutbox(target: String, limit: Int, nowMs: Int64) throws -> Int
    /// Pending entries due by `nowMs`, oldest first; with `headsOnly`, only each customer's
    /// oldest pending entry (per-customer order for targets that deliver concurrently).
    func dueDeliveries(target: String, nowMs: Int64, headsOnly: Bool, limit: Int) throws -> [OutboxDelivery]
    /// When the soonest pending entry is due (nil: none pending).
    func nextDueMs(target: String) throws -> Int64?
    func markDelivered(target: String, seqs: [Int64], atMs: Int64) throws
    /// Records a failed try (the delivery's counters already updated by the caller).
    func markFailed(_ delivery: OutboxDelivery) throws
    func setTargetHealth(_ name: String, error: String?, atMs: Int64, pausedUntilMs: Int64?) throws
    /// Until when the target is paused (nil: not paused, or `retry` lifted the pause).
    func targetPausedUntil(_ name: String) throws -> Int64?
    func outboxStatus() throws -> [OutboxTargetStatus]
    func deliveries(target: String?, state: OutboxDelivery.State, limit: Int) throws -> [OutboxDelivery]
    /// Dead entries back to pending, and pending ones due now (all, or those of `target`, or
    /// the entries named by id); returns how many.
    func retryDeliveries(target: String?, entries: [String], nowMs: Int64) throws -> Int
    func targetCheckpoint(_ name: String) throws -> String?
    func setTargetCheckpoint(_ name: String, to value: String?) throws
    /// Deletes entries every target in `targets` has taken and delivered (or, with no targets,
    /// entries older than `olderThanMs`, so a target added later still finds recent ones).
    func pruneOutbox(targets: [String], olderThanMs: Int64) throws -> Int
}

public protocol OutboxStore: Sendable {
    func outboxRead<T: Sendable>(_ body: @escaping @Sendable (any OutboxTransaction) throws -> T) async throws -> T
    func outboxWrite<T: Sendable>(_ body: @escaping @Sendable (any OutboxTransaction) throws -> T) async throws -> T
    /// Rung after every commit (in this process) that wrote outbox entries: delivery starts at
    /// once instead of at its next poll.
    var outboxDoorbell: Doorbell { get }
}
