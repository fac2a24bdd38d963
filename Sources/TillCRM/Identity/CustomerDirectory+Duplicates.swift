public import Foundation
public import TillCore

/// The review queue and the merges people decide on (`till-crm duplicates`, `merge`,
/// `unmerge`, `dismiss`).
extension CustomerDirectory {
    public struct DuplicatePair: Sendable, Hashable {
        public struct Side: Sendable, Hashable {
            public var id: String
            public var name: String?
            public var identifiers: [String]
            public var postcode: String?
            public var visits: Int
            public var lastSeen: Date
        }

        public var a: Side
        public var b: Side
        public var score: Double
        public var evidence: [String]
        public var queued: Date

        public var json: JSONValue {
            func side(_ side: Side) -> JSONValue {
                [
                    "id": .string(side.id), "name": side.name.map(JSONValue.string) ?? .null,
                    "identifiers": .array(side.identifiers.map(JSONValue.string)), "postcode": side.postcode.map(JSONValue.string) ?? .null,
                    "visits": .int(Int64(side.visits)), "last_seen": .string(Timestamp.format(side.lastSeen)),
                ]
            }
            return [
                "a": side(a), "b": side(b), "score": .double((score * 10).rounded() / 10), "evidence": .array(evidence.map(JSONValue.string)),
                "queued": .string(Timestamp.format(queued)),
            ]
        }
    }

    /// Open pairs, most likely first. A pair whose two sides became one customer since (merged
    /// another way) is left out.
    public func duplicates() async throws -> [DuplicatePair] {
        try await store.read { store in
            try store.reviews(status: .open).compactMap { review -> DuplicatePair? in
                guard let a = try Cluster.of(review.a, in: store), let b = try Cluster.of(review.b, in: store),
                    a.root.id != b.root.id, a.root.status == .active, b.root.status == .active
                else { return nil }
                func side(_ cluster: Cluster) throws -> DuplicatePair.Side {
                    DuplicatePair.Side(
                        id: cluster.root.id, name: cluster.displayName, identifiers: try cluster.identifiers(in: store).map(\.description),
                        postcode: cluster.root.postcode, visits: cluster.visits, lastSeen: Date(milliseconds: cluster.lastSeenMs))
                }
                return DuplicatePair(
                    a: try side(a), b: try side(b), score: review.score, evidence: review.evidence, queued: Date(milliseconds: review.queuedMs))
            }
        }
    }

    /// Merges two customers (ids, or any identifier `resolve` reads). Returns the merge.
    public func merge(_ a: String, _ b: String, actor: String, reason: String, now: Date = Date()) async throws -> MergeRecord {
        let left = try await resolve(a), right = try await resolve(b)
        let matcher = Matcher()
        return try await store.write { store in
            let score: MatchScore? = try {
                guard let x = try Cluster.of(left, in: store), let y = try Cluster.of(right, in: store) else { return nil }
                return matcher.compare(try x.matchRecord(in: store), try y.matchRecord(in: store))
            }()
            return try Merging.merge(
                left, right, automatic: false, score: score?.total, evidence: score.map { $0.evidence.map(\.description) + ($0.veto.map { ["veto: " + $0] } ?? []) } ?? [],
                actor: actor, reason: reason, atMs: now.milliseconds, in: store)
        }
    }

    /// Undoes the merge that absorbed `reference` (an old id, or an identifier that record
    /// holds), or the only merge into it.
    public func unmerge(_ reference: String, actor: String, now: Date = Date()) async throws -> MergeRecord {
        let id = try await record(reference)
        return try await store.write { store in
            try Merging.unmerge(id, actor: actor, atMs: now.milliseconds, in: store)
        }
    }

    /// Two customers are two people: the pair leaves the queue and is never queued again.
    public func dismiss(_ a: String, _ b: String, actor: String, now: Date = Date()) async throws {
        let left = try await resolve(a), right = try await resolve(b)
        try await store.write { store in
            guard left != right else { throw Merging.Refused(description: "\(a) and \(b) are one customer (\(left)); till-crm unmerge separates them") }
            if try store.review(left, right) == nil {
                try store.queue(ReviewRecord(left, right, score: 0, evidence: ["dismissed without review"], queuedMs: now.milliseconds))
            }
            try store.setReviewStatus(left, right, to: .dismissed, actor: actor, atMs: now.milliseconds)
        }
    }
}
