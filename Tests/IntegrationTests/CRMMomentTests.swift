import Foundation
import GRDB
import Testing
import TillClient
import TillCore

/// `crm.moment` on tilld's socket: each moment in the journal exactly once, whatever happens
/// to till-crm in between.
@Suite("till-crm moments on the socket", .timeLimit(.minutes(3)))
struct CRMMomentTests {
    /// How many `crm.moment` events tilld's journal holds, by moment id.
    func journaled(_ daemon: DaemonUnderTest) async throws -> [String: Int] {
        try await daemon.connect { till in
            let reply = try await till.request("subscribe", ["topics": ["*"], "since": 0])
            let newest = reply["seq"]?.intValue ?? 0
            guard newest > 0 else { return [:] }
            let events = try await till.collect { events in (events.last?.seq ?? 0) >= newest }
            var counts: [String: Int] = [:]
            for event in events where event.topic == "crm.moment" {
                counts[event.data["id"]?.stringValue ?? "?", default: 0] += 1
            }
            return counts
        }
    }

    /// Each moment's published seq in till-crm's store (nil: not published yet).
    func publishedSeqs(_ crm: CRMUnderTest) throws -> [String: Int64?] {
        let database = try DatabaseQueue(path: crm.dataDirectory + "/crm.sqlite", configuration: { var c = Configuration(); c.readonly = true; return c }())
        return try database.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT id, published_seq FROM moment").map { ($0["id"] as String, $0["published_seq"] as Int64?) })
        }
    }

    func waitFor(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TimedOut(what: what)
    }

    @Test("30 high-ticket sales, till-crm killed (-9) and restarted halfway: each care follow-up in the journal exactly once")
    func exactlyOnceAcrossCrash() async throws {
        let daemon = try await DaemonUnderTest()
        let crm = try CRMUnderTest(daemon: daemon)
        try await daemon.connect { till in
            for index in 0..<30 {
                try await till.sale("S\(index)", total: "300.00", identify: ["email": .string("c\(index % 5)@example.com")])
                if index == 15 {
                    crm.crash()
                    try crm.start()
                }
            }
        }
        try await waitFor("30 moments published") {
            let seqs = try publishedSeqs(crm)
            return seqs.count == 30 && seqs.values.allSatisfy { $0 != nil }
        }
        let counts = try await journaled(daemon)
        #expect(counts.count == 30 && counts.values.allSatisfy { $0 == 1 }, "\(counts.filter { $0.value != 1 })")
        let seqs = try publishedSeqs(crm)
        #expect(Set(seqs.keys) == Set(counts.keys))
    }

    @Test("a publish cut off by a crash: found in the journal it is not published again; not found, it is published once")
    func crashWindow() async throws {
        let daemon = try await DaemonUnderTest()
        // A store with one customer, made the way a shop makes one.
        let list = daemon.directory + "/list.csv"
        try "record_id,email\n1,ann@example.com\n".write(toFile: list, atomically: true, encoding: .utf8)
        let dataDirectory = daemon.directory + "/crm"
        let (imported, _, importError) = try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, ["import", list, "--data-dir", dataDirectory])
        #expect(imported == 0, "\(importError)")
        let database = try DatabaseQueue(path: dataDirectory + "/crm.sqlite")
        let customer = try #require(try await database.read { try String.fetchOne($0, sql: "SELECT id FROM customer") })

        // Two moments were being published when till-crm died: X1's event reached the journal, X2's did not.
        let before = try await daemon.connect { $0.hello.seq }
        let x1 = try await daemon.connect { till in
            try await till.request("publish", ["topic": "crm.moment", "data": [
                "id": "care:X1", "customer": .string(customer), "moment": "care_follow_up", "due": "2026-12-20T10:00:00Z",
            ]])["seq"]?.intValue
        }
        try await database.write { db in
            for id in ["care:X1", "care:X2"] {
                try db.execute(
                    sql: """
                        INSERT INTO moment(id, customer_id, kind, due_ms, reason, channels, status, created_ms, publish_after_seq)
                        VALUES (?, ?, 'care_follow_up', 0, 'a test', 'email', 'open', 0, ?)
                        """, arguments: [id, customer, before])
            }
        }
        try database.close()

        let crm = try CRMUnderTest(daemon: daemon)
        try await waitFor("both moments settled") { try publishedSeqs(crm).values.allSatisfy { $0 != nil } }
        let seqs = try publishedSeqs(crm)
        #expect(seqs["care:X1"] == x1, "X1 was found in the journal and marked with its seq there")
        #expect(try await journaled(daemon) == ["care:X1": 1, "care:X2": 1])
        #expect(crm.log.contains("settled moments"))
    }
}
