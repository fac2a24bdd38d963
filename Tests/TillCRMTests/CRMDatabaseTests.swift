import Foundation
import GRDB
import Testing
@testable import TillCRM

@Suite("CRM database")
struct CRMDatabaseTests {
    private func database() throws -> CRMDatabase {
        let directory = NSTemporaryDirectory() + "till-crm-test-" + UUID().uuidString
        return try CRMDatabase(path: directory + "/crm.sqlite")
    }

    @Test("the file is private to the service's user")
    func fileMode() throws {
        let db = try database()
        let mode = try FileManager.default.attributesOfItem(atPath: db.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("an event's effects and the cursor commit together, once")
    func exactlyOnce() async throws {
        let db = try database()
        let insert: @Sendable (Database) throws -> Void = { db in
            try db.execute(sql: "INSERT INTO customer(id, first_seen_ms, last_seen_ms) VALUES ('C1', 0, 0)")
        }
        #expect(try await db.apply(seq: 5, insert))
        #expect(try await !db.apply(seq: 5, insert), "a replayed event is skipped")
        #expect(try await db.cursor() == 5)
        // An event whose effects fail leaves neither effects nor cursor behind.
        await #expect(throws: (any Error).self) {
            try await db.apply(seq: 6) { db in
                try db.execute(sql: "INSERT INTO customer(id, first_seen_ms, last_seen_ms) VALUES ('C2', 0, 0)")
                try db.execute(sql: "INSERT INTO customer(id, first_seen_ms, last_seen_ms) VALUES ('C1', 0, 0)")
            }
        }
        #expect(try await db.cursor() == 5)
        let count = try await db.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM customer") }
        #expect(count == 1)
    }

    @Test("one active identifier belongs to one customer")
    func uniqueIdentifier() async throws {
        let db = try database()
        try await db.writer.write { db in
            try db.execute(sql: "INSERT INTO customer(id, first_seen_ms, last_seen_ms) VALUES ('C1', 0, 0), ('C2', 0, 0)")
            try db.execute(sql: "INSERT INTO identifier(customer_id, kind, raw, normalized, added_ms) VALUES ('C1', 'email', 'A@x.com', 'a@x.com', 0)")
        }
        await #expect(throws: (any Error).self) {
            try await db.writer.write { db in
                try db.execute(sql: "INSERT INTO identifier(customer_id, kind, raw, normalized, added_ms) VALUES ('C2', 'email', 'a@x.com', 'a@x.com', 0)")
            }
        }
    }
}
