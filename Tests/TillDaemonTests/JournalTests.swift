import Foundation
import GRDB
import Testing
import TillCore
@testable import TillDaemon

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "tilld-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Journal and spool", .timeLimit(.minutes(1)))
struct JournalTests {
    private func event(_ seq: Int64, _ topic: String = "sale.voided", at time: Date = Date()) -> (event: Event, dataJSON: String) {
        let data: JSONValue = ["sale": .string("S\(seq)")]
        return (Event(seq: seq, time: time, topic: topic, device: nil, data: data), JSONText.encode(data))
    }

    @Test("events come back in order, after a given seq")
    func appendAndRead() async throws {
        let journal = try Journal(path: try temporaryDirectory() + "/j.sqlite")
        try journal.append((1...10).map { event($0) })
        let after5 = try await journal.events(after: 5, limit: 3)
        #expect(after5.map(\.seq) == [6, 7, 8])
        #expect(after5[0].event.data == ["sale": "S6"])
        #expect(try journal.lastSeq() == 10)
        #expect(try await journal.oldestSeq() == 1)
    }

    @Test("rows go in as given (a device or none, non-ASCII text, an empty object); a failing insert throws SQLite's code and leaves the journal writable, the batch not half in")
    func insertThroughTheCAPI() async throws {
        let journal = try Journal(path: try temporaryDirectory() + "/j.sqlite")
        let time = Date(timeIntervalSince1970: 1_780_000_000.123)
        let data: JSONValue = ["name": "Café crème €", "note": "line\nbreak"]
        try journal.append([
            (Event(seq: 1, time: time, topic: "scanner.scan", device: "front-scanner", data: data), JSONText.encode(data)),
            (Event(seq: 2, time: time, topic: "sale.voided", device: nil, data: [:]), "{}"),
        ])
        let stored = try await journal.events(after: 0, limit: 10)
        #expect(stored.map(\.seq) == [1, 2])
        #expect(stored[0].event.device == "front-scanner" && stored[1].event.device == nil)
        #expect(stored[0].event.data == data && stored[0].event.topic == "scanner.scan")
        #expect(stored[0].event.time == time)
        #expect(stored[1].dataJSON == "{}")

        // seq 3 then seq 2 again: the primary key refuses the second row, and the whole batch.
        #expect {
            try journal.append([self.event(3), self.event(2)])
        } throws: { error in
            (error as? DatabaseError)?.resultCode == .SQLITE_CONSTRAINT && (error as? DatabaseError)?.message?.contains("event.seq") == true
        }
        #expect(try await journal.events(after: 2, limit: 10).isEmpty, "nothing of the refused batch is in")
        try journal.append([event(3)])
        #expect(try journal.lastSeq() == 3)
    }

    @Test("seq is never reused, even when retention removed everything")
    func neverReused() async throws {
        let path = try temporaryDirectory() + "/j.sqlite"
        do {
            let journal = try Journal(path: path)
            try journal.append((1...5).map { event($0, at: Date(timeIntervalSinceNow: -40 * 86400)) })
            let removed = try journal.prune(olderThan: Date(timeIntervalSinceNow: -30 * 86400), keepLast: nil)
            #expect(removed == 5)
            #expect(try await journal.oldestSeq() == nil)
        }
        let reopened = try Journal(path: path)
        #expect(try reopened.lastSeq() == 5)
    }

    @Test("retention by count keeps the newest events")
    func pruneByCount() async throws {
        let journal = try Journal(path: try temporaryDirectory() + "/j.sqlite")
        try journal.append((1...100).map { event($0) })
        try journal.prune(olderThan: .distantPast, keepLast: 10)
        #expect(try await journal.oldestSeq() == 91)
    }

    @Test("a job interrupted while printing goes back to the queue marked interrupted (REPRINT); a done job is never touched")
    func interruptedJob() async throws {
        let journal = try Journal(path: try temporaryDirectory() + "/j.sqlite")
        let first = try await journal.spool(device: "p", kind: "raw", payload: Data([0x41]))
        let second = try await journal.spool(device: "p", kind: "raw", payload: Data([0x42]))
        let done = try await journal.spool(device: "p", kind: "raw", payload: Data([0x43]))
        #expect(try await journal.transition(job: done, from: ["queued"], to: "printing"))
        #expect(try await journal.transition(job: done, from: ["printing"], to: "done"))
        #expect(try await journal.transition(job: first, from: ["queued"], to: "printing"))
        #expect(try await journal.requeueJobsInterruptedByRestart() == [first])
        let requeued = try #require(try await journal.job(id: first))
        #expect(requeued.state == "queued" && requeued.interrupted && requeued.encoded)
        #expect(try await journal.job(id: done)?.state == "done")
        #expect(try await journal.nextQueuedJob(device: "p")?.id == first, "in order: the interrupted job first")
        #expect(try await journal.transition(job: first, from: ["queued"], to: "printing"))
        #expect(try await journal.requeueInterrupted(job: first, error: "unplugged"))
        #expect(try await !journal.requeueInterrupted(job: first, error: "twice"), "only a printing job is requeued")
        #expect(try await journal.transition(job: first, from: ["queued"], to: "cancelled"))
        #expect(try await journal.nextQueuedJob(device: "p")?.id == second)
        // A lost race (cancel vs print) is refused, not applied twice.
        #expect(try await journal.transition(job: second, from: ["queued"], to: "cancelled"))
        #expect(try await !journal.transition(job: second, from: ["queued"], to: "printing"))
    }
}
