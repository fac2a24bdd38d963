import Foundation
import Testing
import TillCore
@testable import TillDaemon

/// How far a follower (till-crm) may fall behind before retention prunes what it has not
/// applied: judged from the journal (FollowerHorizon), kept by the journal (Journal).
@Suite("Followers and the retention horizon", .timeLimit(.minutes(1)))
struct FollowerHorizonTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let day: Int64 = 86_400_000

    func horizon(seq: Int64 = 100, pending: Int64, firstMs: Int64? = nil, firstSeq: Int64? = nil, oldest: Int64? = 1, latest: Int64 = 1000,
                 days: Int = 30, events: Int? = nil) -> FollowerHorizon {
        FollowerHorizon(
            followerSeq: seq, pending: pending, firstPendingMs: firstMs, firstPendingSeq: firstSeq, oldestSeq: oldest, latestSeq: latest,
            now: now, retainDays: days, retainEvents: events)
    }

    var nowMs: Int64 { Int64(now.timeIntervalSince1970 * 1000) }

    @Test("caught up, or behind by less than 80% of retain_days: ok")
    func ok() {
        #expect(horizon(pending: 0).state == .ok)
        let behind = horizon(pending: 5, firstMs: nowMs - 23 * day, firstSeq: 101)
        #expect(behind.state == .ok)
        #expect(behind.behind == 5)
        #expect(behind.prunedAt == Date(timeIntervalSince1970: Double(nowMs - 23 * day + 30 * day) / 1000))
    }

    @Test("waiting 24 of 30 days, or 800 of 1000 events: near the horizon")
    func near() {
        #expect(horizon(pending: 5, firstMs: nowMs - 24 * day, firstSeq: 101).state == .nearHorizon)
        let byCount = horizon(pending: 5, firstMs: nowMs - day, firstSeq: 201, latest: 1000, events: 1000)
        #expect(byCount.state == .nearHorizon, "800 events published since the first waiting one")
        #expect(byCount.eventsLeft == 200)
        #expect(horizon(pending: 5, firstMs: nowMs - day, firstSeq: 202, latest: 1000, events: 1000).state == .ok)
    }

    @Test("a seq below the oldest held: lost")
    func lost() {
        #expect(horizon(seq: 100, pending: 0, oldest: 102).state == .lost)
        #expect(horizon(seq: 100, pending: 0, oldest: 101).state == .ok)
    }

    private func event(_ seq: Int64, _ topic: String, at time: Date = Date()) -> (event: Event, dataJSON: String) {
        (Event(seq: seq, time: time, topic: topic, device: nil, data: [:]), "{}")
    }

    @Test("the journal counts only the follower's topics as pending, and keeps the last word across a reopen")
    func journalFollowers() async throws {
        let path = try temporaryDirectory() + "/j.sqlite"
        do {
            let journal = try Journal(path: path)
            try journal.append((1...10).map { event($0, $0 % 2 == 0 ? "sale.completed" : "printer.status") })
            try await journal.acknowledge(follower: "till-crm", seq: 4, topics: ["sale.*"], atMs: 1)
            let followers = try await journal.followers()
            #expect(followers.count == 1)
            #expect(followers[0].pending == 3, "sale events 6, 8, 10")
            #expect(followers[0].firstPendingSeq == 6)
        }
        let reopened = try Journal(path: path)
        #expect(try await reopened.followers().first?.seq == 4)
    }

    @Test("pruning moves a follower past events that were not for it; pruning one that was leaves it lost")
    func pruneAdvances() async throws {
        let journal = try Journal(path: try temporaryDirectory() + "/j.sqlite")
        let old = Date(timeIntervalSinceNow: -40 * 86400)
        // 1: a sale (applied), 2...5 device events (not for it), then 6... recent.
        try journal.append([event(1, "sale.completed", at: old)] + (2...5).map { event($0, "printer.status", at: old) })
        try journal.append((6...8).map { event($0, "sale.completed") })
        try await journal.acknowledge(follower: "quiet", seq: 1, topics: ["sale.*"], atMs: 1)
        try await journal.acknowledge(follower: "stuck", seq: 0, topics: ["sale.*"], atMs: 1)
        try journal.prune(olderThan: Date(timeIntervalSinceNow: -30 * 86400), keepLast: nil)
        let oldest = try await journal.oldestSeq()
        #expect(oldest == 6)
        let bySeq = Dictionary(uniqueKeysWithValues: try await journal.followers().map { ($0.name, $0.seq) })
        #expect(bySeq["quiet"] == 5, "nothing of its own was pruned: it moved to just before the oldest held")
        #expect(bySeq["stuck"] == 0, "sale 1, which it had not applied, was pruned")
        let stuck = FollowerHorizon(followerSeq: 0, pending: 3, firstPendingMs: nil, firstPendingSeq: 6, oldestSeq: oldest, latestSeq: 8,
                                    now: Date(), retainDays: 30, retainEvents: nil)
        #expect(stuck.state == .lost)
    }
}
