import Foundation
import GRDB
import TillSQLite
import Testing
import TillCore
@testable import TillCRM

private struct Refused: Error {}

@Suite("CRM store", .timeLimit(.minutes(1)))
struct CRMStoreTests {
    private func store() throws -> SQLiteCRMStore {
        let directory = NSTemporaryDirectory() + "till-crm-test-" + UUID().uuidString
        return try SQLiteCRMStore(path: directory + "/crm.sqlite")
    }

    private func event(_ seq: Int64) -> Event {
        Event(seq: seq, time: Date(milliseconds: 1_764_000_000_000 + seq), topic: "test", device: nil, data: ["n": .int(seq)])
    }

    @Test("the file, its WAL, shared memory and lock file are private to the service's user, in a private directory")
    func fileMode() async throws {
        let store = try store()
        try await store.write { try $0.save(CustomerRecord(id: "C1", firstSeenMs: 0, lastSeenMs: 0)) }
        _ = try await store.read { try $0.customer("C1") }  // a reader maps the -shm too
        for suffix in ["", "-wal", "-shm", ".lock"] {
            #expect(FileManager.default.fileExists(atPath: store.path + suffix), "\(suffix) exists")
            let mode = try FileManager.default.attributesOfItem(atPath: store.path + suffix)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(suffix)")
        }
        let directory = (store.path as NSString).deletingLastPathComponent
        let directoryMode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
        #expect(directoryMode == 0o700)
    }

    @Test("synchronous = FULL is in force on the writer, read back from SQLite (GRDB resets it while enabling WAL)")
    func synchronousInForce() async throws {
        let store = try store()
        #expect(store.synchronous == .full)
        #expect(try store.writer.synchronousInForce() == .full)
    }

    @Test("a batch's effects and the cursor commit together; replayed events are skipped", arguments: StoreKind.all)
    func exactlyOnce(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let insert: @Sendable (Event, any CRMTransaction) throws -> Int64 = { event, store in
            try store.save(CustomerRecord(id: "C\(event.seq)", firstSeenMs: 0, lastSeenMs: 0))
            return event.seq
        }
        let first = try await store.apply([event(1), event(2), event(3)], insert)
        #expect(first.map(\.outcome) == [1, 2, 3])
        #expect(try await store.cursor() == 3)
        // A reconnect replays from an older point: only what is new is applied.
        let second = try await store.apply([event(2), event(3), event(4)], insert)
        #expect(second.map(\.outcome) == [4])
        #expect(try await store.cursor() == 4)
        #expect(try await store.apply([event(4)], insert).isEmpty)
    }

    @Test("a batch whose effects fail leaves neither effects nor cursor behind", arguments: StoreKind.all)
    func failedBatch(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        await #expect(throws: Refused.self) {
            try await store.apply([event(1), event(2)]) { event, store in
                try store.save(CustomerRecord(id: "C\(event.seq)", firstSeenMs: 0, lastSeenMs: 0))
                if event.seq == 2 { throw Refused() }
            }
        }
        #expect(try await store.cursor() == 0)
        #expect(try await store.read { try $0.customer("C1") } == nil)
    }

    @Test("an event that cannot be applied holds back only itself and what follows; the events before it commit", arguments: StoreKind.all)
    func isolatedFailure(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let effects: @Sendable (Event, any CRMTransaction) throws -> Int64 = { event, store in
            try store.save(CustomerRecord(id: "C\(event.seq)", firstSeenMs: 0, lastSeenMs: 0))
            if event.seq == 3 { throw Refused() }
            return event.seq
        }
        let batch = (1...5).map(event)
        do {
            _ = try await store.applyIsolatingFailure(batch, effects)
            Issue.record("the failing event was not reported")
        } catch let failure as EventNotApplied<Int64> {
            #expect(failure.event.seq == 3)
            #expect(failure.applied.map(\.outcome) == [1, 2], "what was applied is handed back, to be reported")
            #expect(failure.underlying is Refused)
        }
        #expect(try await store.cursor() == 2, "the cursor stops before the failing event, so it is retried, not lost")
        #expect(try await store.read { try $0.customer("C3") } == nil)
        #expect(try await store.read { try $0.customer("C2") } != nil)
        // Once the cause is gone, the retry from the cursor applies the rest exactly once.
        let retried = try await store.applyIsolatingFailure(batch) { event, store in
            try store.save(CustomerRecord(id: "C\(event.seq)", firstSeenMs: 0, lastSeenMs: 0))
            return event.seq
        }
        #expect(retried.map(\.outcome) == [3, 4, 5])
    }

    @Test("a loyalty card belongs to one customer; a household may share an email or a phone, each held once per customer", arguments: StoreKind.all)
    func uniqueIdentifier(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let card = CustomerIdentifier(kind: .loyaltyCard, raw: "loy 7", normalized: "LOY7")
        let email = CustomerIdentifier(kind: .email, raw: "A@x.com", normalized: "a@x.com")
        try await store.write { store in
            for id in ["C1", "C2"] { try store.save(CustomerRecord(id: id, firstSeenMs: 0, lastSeenMs: 0)) }
            try store.add(card, to: "C1", sourceSeq: nil, atMs: 0)
            try store.add(email, to: "C1", sourceSeq: nil, atMs: 0)
        }
        await #expect {
            try await store.write { try $0.add(card, to: "C2", sourceSeq: nil, atMs: 0) }
        } throws: { error in
            // The unique index refuses it, not some other failure.
            if let error = error as? DatabaseError {
                return error.resultCode == .SQLITE_CONSTRAINT && error.message?.contains("identifier") == true
            }
            return "\(error)".contains("SQLSTATE 23505") && "\(error)".contains("identifier_unique_card")
        }
        #expect(try await store.read { try $0.owner(of: card) } == "C1")
        // Partners share an address: the second holder is recorded beside the first, and the
        // first stays the owner a lookup by that email finds.
        try await store.write { store in
            try store.add(email, to: "C2", sourceSeq: nil, atMs: 1)
            try store.add(email, to: "C2", sourceSeq: nil, atMs: 2)
        }
        #expect(try await store.read { try $0.holders(of: email) } == ["C1", "C2"])
        #expect(try await store.read { try $0.identifiers(of: "C2") }.count == 1, "held once per customer however often it is given")
        #expect(try await store.read { try $0.owner(of: email) } == "C1")
    }

    @Test("the timeline is newest first, idempotent by source, and an entry can move to the right customer", arguments: StoreKind.all)
    func timeline(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        try await store.write { store in
            for id in ["C1", "C2"] { try store.save(CustomerRecord(id: id, firstSeenMs: 0, lastSeenMs: 0)) }
            for index in 0..<5 {
                let entry = TimelineEntry(customer: "C1", type: .note, source: "s\(index)", payload: ["n": .int(Int64(index))], occurredMs: Int64(index), recordedMs: 0)
                #expect(try store.append(entry))
                #expect(try !store.append(entry), "the same source never lands twice")
            }
            #expect(try store.moveEntry(source: "s4", to: "C2") == "C1")
            #expect(try store.moveEntry(source: "s4", to: "C2") == nil)
        }
        let entries = try await store.read { try $0.timeline(of: "C1", limit: 3) }
        #expect(entries.map(\.source) == ["s3", "s2", "s1"])
        #expect(entries.first?.payload == ["n": 3])
        #expect(try await store.read { try $0.timeline(of: "C2", limit: 10) }.map(\.source) == ["s4"])
    }

    @Test("current consent is the newest record per channel and purpose")
    func consent() {
        func record(_ channel: ConsentRecord.Channel, _ granted: Bool, _ ms: Int64) -> ConsentRecord {
            ConsentRecord(customer: "C1", channel: channel, purpose: .marketing, granted: granted, basis: .consent, source: "till", recordedMs: ms)
        }
        let current = ConsentRecord.current([record(.email, true, 1), record(.sms, true, 2), record(.email, false, 3)])
        #expect(current.map(\.channel) == [.email, .sms])
        #expect(current.map(\.granted) == [false, true])
    }
}
