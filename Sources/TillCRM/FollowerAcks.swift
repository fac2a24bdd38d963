import Logging
import Synchronization
import TillClient
import TillCore

/// Tells tilld how far till-crm has applied (`follower.ack`), so tilld's `status` and
/// `tillctl doctor` can warn when a till-crm cut off from its database falls so far behind
/// that retention would prune events it has not applied. At most once a second while events
/// flow (each acknowledgement is a write to tilld's journal), and whatever is left when the
/// follower goes idle.
final class FollowerAcks: Sendable {
    static let follower = "till-crm"
    static let interval = Duration.seconds(1)

    private struct State {
        var applied: Int64 = 0
        var acked: Int64 = -1
        var lastSent: ContinuousClock.Instant?
        /// tilld predates `follower.ack`: not asked again on this connection.
        var unsupported = false
    }
    private let state = Mutex(State())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Every event through `seq` is committed to the store.
    func applied(through seq: Int64) {
        state.withLock { $0.applied = max($0.applied, seq) }
    }

    /// Sends the acknowledgement when there is news and (unless `idle`) a second has passed.
    func send(on till: TillConnection, idle: Bool) async throws {
        let now = ContinuousClock.now
        let seq = state.withLock { state -> Int64? in
            guard !state.unsupported, state.applied != state.acked else { return nil }
            if !idle, let last = state.lastSent, now - last < Self.interval { return nil }
            state.lastSent = now
            return state.applied
        }
        guard let seq else { return }
        do {
            _ = try await till.request("follower.ack", [
                "follower": .string(Self.follower), "seq": .int(seq), "topics": .array(CRMService.topics.map(JSONValue.string)),
            ])
            state.withLock { $0.acked = seq }
        } catch let error as WireError where error.code == .unknownOp {
            state.withLock { $0.unsupported = true }
            logger.notice("this tilld does not take follower.ack (an older version): tillctl doctor cannot warn when till-crm falls behind its retention")
        } catch let error as WireError {
            // Only the warning depends on it; applying goes on.
            logger.warning("follower.ack refused", metadata: ["seq": "\(seq)", "error": "\(error)"])
        }
    }
}
