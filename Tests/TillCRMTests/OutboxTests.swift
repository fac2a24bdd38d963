import Foundation
import GRDB
import Logging
import Testing
import TillCore
@testable import TillCRM

@Suite("Outbox: Standard Webhooks signatures and back-off", .timeLimit(.minutes(1)))
struct WebhookSignatureTests {
    @Test("the specification's test vector; a changed body, id or old timestamp fails; several signatures (a key rotation) pass if one matches")
    func vector() throws {
        let secret = try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let body = #"{"test": 2432232314}"#
        let signature = WebhookSignature.sign(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body, secret: secret)
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        func verify(id: String = "msg_p5jXN8AQM9LWM0D4loKWxJek", body: String = body, header: String = signature, now: Int64 = 1_614_265_340) -> Bool {
            WebhookSignature.verify(id: id, timestamp: 1_614_265_330, body: body, header: header, secret: secret, now: now)
        }
        #expect(verify())
        #expect(!verify(body: #"{"test": 2432232315}"#))
        #expect(!verify(id: "msg_other"))
        #expect(!verify(now: 1_614_265_330 + 301), "older than five minutes: a replay")
        #expect(verify(header: "v1,bm90IGl0 " + signature))
        #expect(try WebhookSecret(String("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".dropFirst(6))).key == secret.key, "the prefix may be left off")
    }

    @Test("a secret that is not base64, or too short, is refused with what to do")
    func badSecrets() {
        for text in ["whsec_not base64!", "whsec_c2hvcnQ="] {
            #expect(throws: WebhookSecret.Invalid.self) { try WebhookSecret(text) }
        }
        #expect(WebhookSecret.generate().hasPrefix("whsec_"))
        #expect(throws: Never.self) { try WebhookSecret(WebhookSecret.generate()) }
    }

    @Test("back-off doubles to its cap, never below half of it (jitter)", arguments: [(1, 2_000), (2, 4_000), (5, 32_000), (12, 3_600_000), (80, 3_600_000)])
    func backoff(attempt: Int, full: Int64) {
        let backoff = Backoff(baseMs: 2_000, capMs: 3_600_000)
        #expect(backoff.delayMs(afterAttempt: attempt, random: 1) == full)
        #expect(backoff.delayMs(afterAttempt: attempt, random: 0) == full / 2)
    }
}

/// Reads a store's outbox.
extension Ledger {
    func entries() async throws -> [OutboxEntry] {
        try await store.outboxRead { try $0.outboxEntries(afterSeq: 0, limit: 1_000_000) }
    }
}

@Suite("Outbox: written with the change", .timeLimit(.minutes(1)))
struct OutboxRecordingTests {
    @Test("an identified sale in one batch: the customer first (one snapshot, however often touched), then consent and the purchase; nothing from a replay", arguments: StoreKind.all)
    func sale(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let data: [(String, JSONValue)] = [
            ("sale.started", ["sale": "S1", "till": "T1"]),
            ("sale.line", ["sale": "S1", "name": "Flat white", "qty": 1, "unit_price": "12.00", "amount": "12.00"]),
            ("customer.identified", ["sale": "S1", "email": "ann@example.com", "name": "Ann Lee", "consent": ["email_marketing": true]]),
            ("sale.completed", ["sale": "S1", "total": "12.00", "currency": "EUR", "receipt": "R1"]),
        ]
        let events = data.enumerated().map { Event(seq: Int64($0.offset + 1), time: ledger.start, topic: $0.element.0, device: nil, data: $0.element.1) }
        let processor = ledger.processor
        _ = try await ledger.store.apply(events) { event, store in try processor.process(event, in: store) }
        let entries = try await ledger.entries()
        #expect(entries.map(\.type) == [.customerUpdated, .timelineAdded, .timelineAdded], "\(entries.map(\.type))")
        let customer = entries[0].data.objectValue ?? [:]
        #expect(customer["emails"] == ["ann@example.com"])
        #expect(customer["given_name"] == "Ann" && customer["family_name"] == "Lee")
        #expect(customer["visits"] == 1, "the state at commit, though the customer was first touched before the sale completed")
        #expect(customer["consent"]?.arrayValue?.first?.objectValue?["granted"] == true)
        #expect(entries.dropFirst().compactMap { $0.data.objectValue?["type"]?.stringValue } == ["consent", "purchase"])
        #expect(Set(entries.map(\.id)).count == entries.count && entries.allSatisfy { $0.id.hasPrefix("msg_") && $0.id.count == 36 })
        // The body is what is delivered: Standard Webhooks' type, timestamp and data.
        let body = try #require(try JSONText.decode(entries[0].body).objectValue)
        #expect(Set(body.keys) == ["type", "timestamp", "data"] && body["type"] == "customer.updated")

        // tilld replaying after a crash: the cursor skips what was applied, and adds nothing.
        _ = try await ledger.store.apply(events) { event, store in try processor.process(event, in: store) }
        #expect(try await ledger.entries().count == entries.count)
    }

    @Test("a transaction that fails leaves no entry: change and entry commit together or not at all", arguments: StoreKind.all)
    func rollback(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        struct Stop: Error {}
        await #expect(throws: Stop.self) {
            try await ledger.store.write { store in
                try store.save(CustomerRecord(id: "C1", name: "Ann", firstSeenMs: 1, lastSeenMs: 1))
                try store.append(TimelineEntry(customer: "C1", type: .note, source: "cli:1", payload: ["text": "hello"], occurredMs: 1, recordedMs: 1))
                throw Stop()
            }
        }
        #expect(try await ledger.entries().isEmpty)
        #expect(try await ledger.store.read { try $0.customer("C1") } == nil)
    }

    @Test("moments raised and decided, merges and their undoing are entries", arguments: StoreKind.all)
    func moments(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "900.00", identify: ["email": "ann@example.com"])
        _ = try await ledger.sale("S2", total: "3.00", identify: ["email": "ann.lee@example.org"])
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let ann = try await directory.resolve("ann@example.com")
        let other = try await directory.resolve("ann.lee@example.org")
        _ = try await directory.decide(moment: "care:S1", .done, actor: "sam")
        _ = try await directory.merge(ann, other, actor: "sam", reason: "same person")
        let types = try await ledger.entries().map(\.type)
        #expect(types.contains(.momentRaised) && types.contains(.momentUpdated) && types.contains(.customerMerged))
        let updated = try #require(try await ledger.entries().last { $0.type == .momentUpdated })
        #expect(updated.data.objectValue?["status"] == "done")
    }

    @Test("erasure purges the person's entries, queued or not, and leaves one notice with no personal data", arguments: StoreKind.all)
    func erasure(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "12.00", identify: ["email": "ann@example.com", "name": "Ann Lee"])
        _ = try await ledger.sale("S2", total: "5.00", identify: ["email": "bea@example.com"])
        try await ledger.store.outboxWrite { tx in
            try tx.registerTarget("webhook:test")
            _ = try tx.takeOutbox(target: "webhook:test", limit: 100, nowMs: 0)
        }
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let ann = try await directory.resolve("ann@example.com")
        try await directory.erase(ann)
        let entries = try await ledger.entries()
        #expect(!entries.contains { $0.body.contains("ann@example.com") || $0.body.contains("Ann") })
        let notices = entries.filter { $0.customer == ann }
        #expect(notices.map(\.type) == [.customerErased])
        #expect(entries.contains { $0.body.contains("bea@example.com") }, "others' entries stay")
        let queued = try await ledger.store.outboxRead { try $0.dueDeliveries(target: "webhook:test", nowMs: .max, headsOnly: false, limit: 100) }
        #expect(!queued.contains { $0.entry.customer == ann })
    }
}

@Suite("Outbox: [outbox] and the targets in till-crm.toml", .timeLimit(.minutes(1)))
struct OutboxConfigTests {
    @Test("targets and settings are read")
    func valid() throws {
        let secret = WebhookSecret.generate()
        let config = try CRMConfig.parse("""
            [outbox]
            max_attempts = 5
            max_days = 2.5

            [[webhook]]
            url = "https://hooks.example.com/till"
            secret = "\(secret)"
            concurrency = 4

            [[webhook]]
            url = "http://127.0.0.1:8080/hook"
            secret = "\(secret)"

            [[jsonl]]
            dir = "/var/lib/till-crm/export/"
            rotate_daily = false
            """)
        #expect(config.outbox.maxAttempts == 5 && config.outbox.maxDays == 2.5)
        #expect(config.outbox.webhooks.map(\.url) == ["https://hooks.example.com/till", "http://127.0.0.1:8080/hook"])
        #expect(config.outbox.webhooks[0].concurrency == 4)
        #expect(config.outbox.jsonLines.first?.directory == "/var/lib/till-crm/export" && config.outbox.jsonLines.first?.rotateDaily == false)
        #expect(config.outbox.targetNames.count == 3)
    }

    @Test("each mistake is named with its line and what to write", arguments: [
        ("[[webhook]]\nurl = \"http://hooks.example.com/x\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"", ":2:", "use https"),
        ("[[webhook]]\nurl = \"https://hooks.example.com/x\"", ":2:", "till-crm outbox secret"),
        ("[[webhook]]\nurl = \"https://h.example.com/x\"\nsecret = \"whsec_c2hvcnQ=\"", ":3:", "at least 16"),
        ("[[webhook]]\nurl = \"https://h.example.com/x\"\nsecret_file = \"/nonexistent/secret\"", ":3:", "cannot read the webhook secret file"),
        ("[[jsonl]]\ndir = \"relative\"", ":1:", "absolute"),
        ("[outbox]\nmax_attempts = 0", ":2:", "from 1 to 1000"),
        ("[outbox]\nretries = 3", ":2:", "known: max_attempts"),
        ("webhook = \"https://x\"", ":1:", "write [[webhook]]"),
        ("[[twenty]]\nurl = \"https://crm.example.com\"", ":1:", "api_key_file"),
    ])
    func mistakes(text: String, line: String, says: String) {
        do {
            _ = try CRMConfig.parse(text, file: "till-crm.toml")
            Issue.record("accepted: \(text)")
        } catch {
            let message = "\(error)"
            #expect(message.contains("till-crm.toml\(line)") && message.contains(says), "\(message)")
        }
    }
}
