public import Foundation
import Synchronization

/// What became of one try to deliver an entry.
public enum DeliveryOutcome: Sendable, Hashable {
    case delivered
    /// The receiver answered, and not with a yes: the entry backs off, and after `max_attempts`
    /// refusals it is dead.
    case refused(String)
    /// The receiver was never reached (down, the network gone, a timeout, or it said "not now":
    /// 429, 502, 503, 504): the whole target pauses and backs off; the entry keeps its place.
    case unreachable(String)
}

/// Somewhere entries go: a webhook, a folder of JSON-lines files, a CRM's API.
public protocol OutboxTarget: Sendable {
    /// Stable across restarts (`webhook:URL`, `jsonl:DIR`, `twenty:URL`): the key of its cursor and queue.
    var name: String { get }
    /// True: each customer's oldest pending entry only, those delivered concurrently (per-customer
    /// order, one slow customer never holds back another). False: everything in order, as one batch.
    var concurrent: Bool { get }
    /// The most entries one round hands to `deliver`.
    var batchSize: Int { get }
    /// One outcome per entry, in order.
    func deliver(_ entries: [OutboxEntry], store: any OutboxStore) async -> [DeliveryOutcome]
}

/// The delivery settings, `[outbox]` and the targets in till-crm.toml.
public struct OutboxSettings: Sendable, Hashable {
    /// Refusals before an entry is dead.
    public var maxAttempts = 12
    /// Days after its first failed try an undelivered entry is dead (whatever the cause).
    public var maxDays = 7.0
    /// An entry's back-off after a refusal: 2 s, 4 s, ... up to an hour.
    public var retry = Backoff(baseMs: 2_000, capMs: 3_600_000)
    /// A target's pause while it cannot be reached: 1 s, 2 s, ... up to 5 minutes.
    public var pause = Backoff(baseMs: 1_000, capMs: 300_000)
    /// How often each target looks for work when nothing rang (entries written by another process).
    public var pollMs: Int64 = 1_000
    /// With no target configured, entries are kept this long (for a target added later).
    public var keepDays = 7.0
    public var webhooks: [WebhookTarget.Settings] = []
    public var jsonLines: [JSONLinesTarget.Settings] = []
    public var twenty: [TwentyTarget.Settings] = []

    public init() {}

    public var isEmpty: Bool { webhooks.isEmpty && jsonLines.isEmpty && twenty.isEmpty }
    public var targetNames: [String] {
        webhooks.map(\.name) + jsonLines.map(\.name) + twenty.map(\.name)
    }
}

/// The time the outbox runs on: the wall clock, shifted in tests ("a day later").
public final class OutboxClock: Sendable {
    private let offset: Mutex<Int64>

    public init() { offset = Mutex(0) }

    public var nowMs: Int64 { Date().milliseconds + offset.withLock { $0 } }

    public func advance(byMs ms: Int64) { offset.withLock { $0 += ms } }
}

