public import Foundation

/// How close a follower (till-crm) is to losing events: tilld's journal keeps events for
/// `[journal] retain_days` and at most `retain_events`, and a follower that stopped applying
/// (its own database out of reach) catches up only from what is still held. Pure: `status`
/// reports it, `tillctl doctor` fails on it, and the tests drive it.
public struct FollowerHorizon: Sendable, Hashable {
    public enum State: String, Sendable {
        /// Applying, or behind by less than `warnAt` of what retention allows.
        case ok
        /// Behind by `warnAt` or more of the retention: act before it is pruned.
        case nearHorizon = "near_horizon"
        /// Events for it that it had not applied are gone from the journal.
        case lost
    }

    public var state: State
    /// Events for it (by its topics) it has not applied.
    public var behind: Int64
    /// When the first of them is pruned by age (nil: none waiting).
    public var prunedAt: Date?
    /// How many more events (of any topic) may be published before the first of them is
    /// pruned by count (nil: no `retain_events`, or none waiting).
    public var eventsLeft: Int64?

    /// The share of the retention after which a follower is warned about.
    public static let warnAt = 0.8

    /// `pending`/`firstPendingMs`/`firstPendingSeq`: the events after `followerSeq` that match
    /// its topics, as the journal holds them. Pruning moves a follower's seq past events that
    /// were not for it (`Journal.prune`), so a seq below the oldest held means it missed some.
    public init(
        followerSeq: Int64, pending: Int64, firstPendingMs: Int64?, firstPendingSeq: Int64?, oldestSeq: Int64?, latestSeq: Int64,
        now: Date, retainDays: Int, retainEvents: Int?
    ) {
        behind = pending
        if let oldestSeq, followerSeq + 1 < oldestSeq {
            state = .lost
            return
        }
        guard pending > 0, let firstPendingMs else {
            state = .ok
            return
        }
        let retention = Double(retainDays) * 86_400
        let waiting = Date(timeIntervalSince1970: Double(firstPendingMs) / 1000)
        prunedAt = waiting.addingTimeInterval(retention)
        var near = now.timeIntervalSince(waiting) >= retention * Self.warnAt
        if let retainEvents, let firstPendingSeq {
            // The first waiting event goes once the newest seq passes it by retain_events.
            let used = latestSeq - firstPendingSeq + 1
            eventsLeft = max(0, Int64(retainEvents) - used)
            near = near || Double(used) >= Double(retainEvents) * Self.warnAt
        }
        state = near ? .nearHorizon : .ok
    }
}
