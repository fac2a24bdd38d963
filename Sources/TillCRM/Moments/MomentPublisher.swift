public import Logging
import Synchronization
public import TillClient
import TillCore

/// Publishes each moment once as `crm.moment`, across crashes and restarts.
///
/// A moment is published only after the transaction that raised it committed. Just before
/// publishing, it records tilld's newest seq it knows (the cursor); when tilld's reply comes,
/// the event's own seq. A crash between the two leaves a moment that may or may not have
/// reached the journal: the next session looks for it there, in every event after the
/// recorded seq, before publishing anything. Found, it is marked published; not found, it is
/// published again. So a moment's event is in the journal exactly once (unless retention
/// pruned the journal past the recorded seq while till-crm was down: then it is published
/// again, and said so).
public final class MomentPublisher: Sendable {
    let store: any CRMStore
    let logger: Logger
    /// How many moments one round publishes (a pipeline of publishes, one commit each side).
    let batch = 256
    /// One round at a time: two at once would both see a moment as not yet published.
    private let publishing = Mutex(false)

    public init(store: any CRMStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Publishes what is pending unless a round is already under way (it reads the pending
    /// moments again until there are none, so nothing waits for long).
    public func publishIfIdle(_ till: TillConnection) async throws {
        guard publishing.withLock({ running in
            if running { return false }
            running = true
            return true
        }) else { return }
        defer { publishing.withLock { $0 = false } }
        try await publishPending(till)
    }

    /// Looks in tilld's journal for moments whose publish may have been cut off, and settles
    /// them: published (with their seq) or to be published again.
    public func settle(socket: String) async throws {
        try await TillConnection.with(socket: socket) { check in try await settle(check) }
    }

    /// `settle` on a connection of its own (it reads the journal through a subscription).
    /// Only the moments under way on this till's stream: another till's follower settles its own.
    func settle(_ check: TillConnection) async throws {
        let stream = check.hello.stream
        let uncertain = try await store.read { try $0.unpublishedMoments(underWay: true, stream: stream, limit: 10_000) }
        guard let since = uncertain.compactMap(\.publishAfterSeq).min() else { return }
        let ids = Set(uncertain.map(\.id))
        // What the journal holds of them (nil: retention pruned past where they were published).
        let found: [String: Int64]? = try await { () async throws -> [String: Int64]? in
            // Every topic: the replay then ends at the newest seq the reply names, which is how
            // this knows it has seen everything (a topic filter would leave it waiting).
            let reply: JSONValue
            do {
                reply = try await check.request("subscribe", ["topics": ["*"], "since": .int(since)])
            } catch let error as WireError where error.code == .journalTruncated {
                return nil
            }
            let newest = reply["seq"]?.intValue ?? since
            var found: [String: Int64] = [:]
            var seen = since
            while seen < newest {
                let lines = try await check.nextEvents(max: 1024)
                if lines.isEmpty { break }
                for case .event(let event) in lines {
                    seen = max(seen, event.seq)
                    if event.topic == "crm.moment", let id = event.data["id"]?.stringValue, ids.contains(id) { found[id] = event.seq }
                }
            }
            return found
        }()
        let pruned = found == nil
        if pruned {
            logger.warning("tilld's journal no longer holds where moments were being published; publishing them again (a subscriber may see one twice)", metadata: [
                "moments": "\(ids.count)", "since": "\(since)",
            ])
        }
        let settled = found ?? [:]
        try await store.write { store in
            for moment in uncertain {
                if let seq = settled[moment.id] {
                    try store.markMomentPublished(moment.id, seq: seq)
                } else {
                    try store.markMomentPublishing(moment.id, afterSeq: nil)
                }
            }
        }
        logger.info("settled moments whose publishing was cut off", metadata: ["found_in_journal": "\(settled.count)", "to_publish": "\(ids.count - settled.count)"])
    }

    /// Publishes the moments not yet published (none whose publish is under way or uncertain).
    /// Returns how many were published.
    @discardableResult
    public func publishPending(_ till: TillConnection) async throws -> Int {
        var published = 0
        let stream = till.hello.stream
        while true {
            let cursor = try await store.cursor(tilldCursorName(stream: stream))
            let after = max(cursor, till.hello.seq)
            // Read and claimed in one transaction: the followers of other tills sharing the
            // store cannot claim the same moments (on PostgreSQL one of two such transactions
            // fails and runs again, and then finds them claimed).
            let pending = try await store.write { store in
                let pending = try store.unpublishedMoments(underWay: false, stream: nil, limit: self.batch)
                for moment in pending { try store.markMomentPublishing(moment.id, afterSeq: after, stream: stream) }
                return pending
            }
            guard !pending.isEmpty else { return published }
            let replies = await till.pipeline(pending.map { ("publish", ["topic": "crm.moment", "data": $0.event]) })
            var seqs: [(String, Int64)] = []
            for (moment, reply) in zip(pending, replies) {
                switch reply {
                case .success(let result):
                    if let seq = result["seq"]?.intValue { seqs.append((moment.id, seq)) }
                case .failure(let error):
                    // Left as under way: the next session looks for it and publishes it again.
                    guard error is WireError else { throw error }
                    logger.warning("crm.moment was not published; it is tried again when till-crm next connects", metadata: [
                        "moment": "\(moment.id)", "error": "\(error)",
                    ])
                }
            }
            let done = seqs
            try await store.write { store in
                for (id, seq) in done { try store.markMomentPublished(id, seq: seq) }
            }
            published += done.count
            if done.count < pending.count { return published }
        }
    }
}
