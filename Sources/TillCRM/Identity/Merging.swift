import Foundation
import TillCore

/// Merging two customers and taking a merge back. A merge moves no rows: the absorbed record
/// is marked `merged` and points to its survivor, reads gather the cluster, and whatever is
/// written later goes to the record holding the identifier it came by. So an unmerge, which
/// only clears the mark, gives both people back exactly what is theirs, including what
/// happened to either since.
public enum Merging {
    public struct Refused: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The survivor: the customer with more visits, then the one seen first (its id is the one
    /// staff have seen longest), then the smaller id (a rule, never a coin).
    static func survivor(_ a: Cluster, _ b: Cluster) -> (survivor: Cluster, absorbed: Cluster) {
        if a.visits != b.visits { return a.visits > b.visits ? (a, b) : (b, a) }
        if a.firstSeenMs != b.firstSeenMs { return a.firstSeenMs < b.firstSeenMs ? (a, b) : (b, a) }
        return a.root.id < b.root.id ? (a, b) : (b, a)
    }

    /// Whether a person separated these two before (an unmerge, or a dismissed review): the
    /// matcher never merges them on its own again.
    public static func wereSeparated(_ a: String, _ b: String, in store: any CRMTransaction) throws -> Bool {
        if try store.review(a, b)?.status == .dismissed { return true }
        return try store.merges(involving: a).contains { merge in
            merge.undoneMs != nil && Set([merge.survivor, merge.absorbed]) == Set([a, b])
        }
    }

    @discardableResult
    public static func merge(
        _ a: String, _ b: String, automatic: Bool, score: Double?, evidence: [String], actor: String, reason: String, atMs ms: Int64,
        in store: any CRMTransaction
    ) throws -> MergeRecord {
        guard let left = try Cluster.of(a, in: store), let right = try Cluster.of(b, in: store) else {
            throw Refused(description: "no customer \(try store.customer(a) == nil ? a : b)")
        }
        guard left.root.id != right.root.id else {
            throw Refused(description: "\(a) and \(b) are already one customer (\(left.root.id))")
        }
        for cluster in [left, right] where cluster.root.status != .active {
            throw Refused(description: "customer \(cluster.root.id) is \(cluster.root.status.rawValue); only active customers merge")
        }
        let (survivor, absorbed) = survivor(left, right)
        var record = absorbed.root
        record.status = .merged
        record.mergedInto = survivor.root.id
        try store.save(record)
        var merge = MergeRecord(
            survivor: survivor.root.id, absorbed: absorbed.root.id, automatic: automatic, score: score, evidence: evidence, actor: actor,
            reason: reason, mergedMs: ms)
        merge.id = try store.append(merge)
        if try store.review(a, b) != nil {
            try store.setReviewStatus(survivor.root.id, absorbed.root.id, to: .merged, actor: actor, atMs: ms)
        }
        try store.append(TimelineEntry(
            customer: survivor.root.id, type: .merge, source: "merge:\(merge.id!)",
            payload: [
                "action": "merge", "survivor": .string(survivor.root.id), "absorbed": .string(absorbed.root.id),
                "automatic": .bool(automatic), "score": score.map { .double($0) } ?? .null, "reason": .string(reason),
                "evidence": .array(evidence.map(JSONValue.string)),
            ],
            occurredMs: ms, recordedMs: ms, actor: actor))
        return merge
    }

    /// Takes back the merge that absorbed `id` (an old id), or the one merge into `id` (a
    /// survivor with exactly one). Returns the merge undone.
    @discardableResult
    public static func unmerge(_ id: String, actor: String, atMs ms: Int64, in store: any CRMTransaction) throws -> MergeRecord {
        guard let record = try store.customer(id) else { throw Refused(description: "no customer \(id)") }
        let open = try store.merges(involving: id).filter { $0.undoneMs == nil }
        let merge: MergeRecord
        if record.status == .merged, let into = open.last(where: { $0.absorbed == id }) {
            merge = into
        } else {
            let absorbedHere = open.filter { $0.survivor == id }
            guard let only = absorbedHere.first else { throw Refused(description: "customer \(id) has no merge to undo") }
            guard absorbedHere.count == 1 else {
                throw Refused(description: "customer \(id) absorbed \(absorbedHere.map(\.absorbed).joined(separator: ", ")); say which: till-crm unmerge ID")
            }
            merge = only
        }
        guard var absorbed = try store.customer(merge.absorbed), absorbed.status == .merged else {
            throw Refused(description: "customer \(merge.absorbed) is no longer merged")
        }
        absorbed.status = .active
        absorbed.mergedInto = nil
        try store.save(absorbed)
        try store.markUndone(merge: merge.id!, atMs: ms, actor: actor)
        // A person said these are two people: never queued or merged automatically again.
        try store.queue(ReviewRecord(merge.survivor, merge.absorbed, score: merge.score ?? 0, evidence: merge.evidence, queuedMs: ms))
        try store.setReviewStatus(merge.survivor, merge.absorbed, to: .dismissed, actor: actor, atMs: ms)
        for customer in [merge.survivor, merge.absorbed] {
            try store.append(TimelineEntry(
                customer: customer, type: .merge, source: "unmerge:\(merge.id!):\(customer)",
                payload: ["action": "unmerge", "survivor": .string(merge.survivor), "absorbed": .string(merge.absorbed)],
                occurredMs: ms, recordedMs: ms, actor: actor))
        }
        var undone = merge
        undone.undoneMs = ms
        undone.undoneBy = actor
        return undone
    }
}
