import Foundation
import GRDB
import Testing
import TillCore
@testable import TillCRM

/// Feeds events through the processor and the exactly-once apply, as `till-crm serve` does.
final class Ledger: @unchecked Sendable {
    let store: any CRMStore & OutboxStore
    let processor: TillEventProcessor
    var seq: Int64 = 0
    var outcomes: [ProcessingOutcome] = []
    let start = Date(timeIntervalSince1970: 1_764_000_000)

    /// With `deterministicIDs`, customers are C00001, C00002...: two ledgers fed alike are alike.
    init(kind: StoreKind = .sqlite, deterministicIDs: Bool = false) async throws {
        store = try await kind.makeStore()
        let counter = Counter()
        processor = deterministicIDs
            ? TillEventProcessor(normalizer: IdentifierNormalizer(defaultRegion: "GB"), newID: { counter.next() })
            : TillEventProcessor(normalizer: IdentifierNormalizer(defaultRegion: "GB"))
    }

    @discardableResult
    func feed(_ topic: String, _ data: JSONValue, device: String? = nil, daysLater: Double = 0, at time: Date? = nil) async throws -> [ProcessingOutcome] {
        seq += 1
        let event = Event(seq: seq, time: time ?? start.addingTimeInterval(daysLater * 86400 + Double(seq)), topic: topic, device: device, data: data)
        let processor = self.processor
        let applied = try await store.apply([event]) { event, store in try processor.process(event, in: store) }
        let result = applied.first?.outcome ?? []
        outcomes += result
        return result
    }

    func sale(_ id: String, total: String, receipt: String? = nil, identify: JSONValue? = nil, daysLater: Double = 0) async throws -> [ProcessingOutcome] {
        try await feed("sale.started", ["sale": .string(id), "till": "T1"], daysLater: daysLater)
        try await feed("sale.line", ["sale": .string(id), "name": "Flat white", "qty": 1, "unit_price": .string(total), "amount": .string(total)], daysLater: daysLater)
        var result: [ProcessingOutcome] = []
        if var identify, case .object(var object) = identify {
            object["sale"] = .string(id)
            identify = .object(object)
            result = try await feed("customer.identified", identify, daysLater: daysLater)
        }
        try await feed("sale.tender", ["sale": .string(id), "method": "card", "amount": .string(total)], daysLater: daysLater)
        var completed: [String: JSONValue] = ["sale": .string(id), "total": .string(total), "currency": "EUR"]
        if let receipt { completed["receipt"] = .string(receipt) }
        try await feed("sale.completed", .object(completed), daysLater: daysLater)
        return result
    }

    func count(_ sql: String) async throws -> Int {
        try await scalar(store, sql)
    }
}

@Suite("Till events into customer memory", .timeLimit(.minutes(1)))
struct TillEventProcessorTests {
    @Test("a sale with an email creates a customer, a link and a purchase; the next visit recognises them", arguments: StoreKind.all)
    func identifiedSales(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let first = try await ledger.sale("S1", total: "7.00", receipt: "R1", identify: ["email": " Ann@Example.com ", "name": "Ann", "consent": ["email_marketing": true]])
        guard case .recognized(let new)? = first.last else { Issue.record("\(first)"); return }
        #expect(!new.returning && new.visits == 0)
        #expect(try await ledger.count("SELECT COUNT(*) FROM customer") == 1)
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'") == 1)
        #expect(try await ledger.count("SELECT COUNT(*) FROM consent WHERE channel = 'email' AND granted = TRUE") == 1)
        let purchase = try await ledger.store.read { try $0.timeline(of: new.customer, limit: 10) }.first { $0.type == .purchase }
        #expect(purchase?.payload["lines"]?.arrayValue?.count == 1)
        #expect(purchase?.payload["tenders"] == [["sale": "S1", "method": "card", "amount": "7.00"]])
        #expect(purchase?.payload["receipt"] == "R1")

        let second = try await ledger.sale("S2", total: "3.50", identify: ["email": "ann@example.com"], daysLater: 90)
        guard case .recognized(let again)? = second.last else { Issue.record("\(second)"); return }
        #expect(again.customer == new.customer)
        #expect(again.returning && again.visits == 1)
        #expect(again.lastVisit != nil)
        #expect(try await ledger.count("SELECT COUNT(*) FROM customer") == 1, "one customer, one record")
        #expect(try await ledger.count("SELECT visits FROM customer") == 2)
    }

    @Test("anonymous and voided sales leave no purchase; a completed sale with no lines keeps its total", arguments: StoreKind.all)
    func anonymousAndVoided(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "4.00")
        try await ledger.feed("sale.started", ["sale": "S2", "till": "T1"])
        try await ledger.feed("customer.identified", ["sale": "S2", "phone": "07911 123456"])
        try await ledger.feed("sale.voided", ["sale": "S2"])
        try await ledger.feed("sale.completed", ["sale": "S3", "total": "9.99", "currency": "EUR"])
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'") == 0)
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale WHERE sale_id = 'S3' AND total = '9.99' AND state = 'completed'") == 1)
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale WHERE sale_id = 'S2' AND state = 'voided'") == 1)
    }

    @Test("an invalid phone rejects the whole identification: no partial customer", arguments: StoreKind.all)
    func invalidPhone(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let outcome = try await ledger.feed("customer.identified", ["email": "bob@example.com", "phone": "12"])
        guard case .skipped(let reason)? = outcome.first else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("phone") && reason.contains("12"))
        #expect(try await ledger.count("SELECT COUNT(*) FROM customer") == 0)
        #expect(try await ledger.store.cursor() == 1, "the bad event is consumed, not retried forever")
    }

    @Test("a loyalty card scanned mid-sale links the sale; an unknown card is enrolled when the POS identifies the customer", arguments: StoreKind.all)
    func loyaltyScans(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        try await ledger.feed("sale.started", ["sale": "S1", "till": "T1"])
        let scan = try await ledger.feed("scanner.data", ["text": "LOY 0042", "kind": "loyalty"], device: "sim-scanner")
        #expect(scan.contains { if case .note(let text) = $0 { text.contains("enrolled") } else { false } })
        try await ledger.feed("customer.identified", ["sale": "S1", "email": "cara@example.com"])
        try await ledger.feed("sale.completed", ["sale": "S1", "total": "5.00", "currency": "EUR"])
        #expect(try await ledger.count("SELECT COUNT(*) FROM identifier WHERE kind = 'loyalty_card' AND normalized = 'LOY0042'") == 1)

        try await ledger.feed("sale.started", ["sale": "S2", "till": "T1"])
        let known = try await ledger.feed("scanner.data", ["text": "LOY0042", "kind": "unknown"], device: "sim-scanner")
        guard case .recognized(let greeting)? = known.first else { Issue.record("\(known)"); return }
        #expect(greeting.sale == "S2" && greeting.returning && greeting.visits == 1)
        try await ledger.feed("sale.completed", ["sale": "S2", "total": "2.00", "currency": "EUR"])
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'") == 2)
    }

    @Test("refunds link to the original sale by receipt and carry their reason", arguments: StoreKind.all)
    func refunds(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "20.00", receipt: "R-77", identify: ["loyalty": "LOY9"])
        try await ledger.feed("refund.completed", ["refund": "F1", "receipt": "R-77", "lines": [], "total": "20.00", "currency": "EUR", "reason": "wrong size"])
        let buyer = try #require(try await text(ledger.store, "SELECT customer_id FROM identifier WHERE kind = 'loyalty_card' AND normalized = 'LOY9'"))
        #expect(try await text(ledger.store, "SELECT customer_id FROM timeline WHERE type = 'refund'") == buyer, "on the timeline of the customer who bought")
        let refund = try await ledger.store.read { try $0.timeline(of: buyer, limit: 10) }.first { $0.type == .refund }
        #expect(refund?.payload["reason"] == "wrong size")
        #expect(refund?.payload["sale"] == "S1", "linked to the original sale by its receipt")
        let unknown = try await ledger.feed("refund.completed", ["refund": "F2", "sale": "NOPE", "lines": [], "total": "1.00", "currency": "EUR", "reason": "x"])
        #expect(unknown.contains { if case .note(let text) = $0 { text.contains("F2") && text.contains("names no sale") } else { false } }, "\(unknown)")
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'refund'") == 1, "an unknown refund attaches to nobody")
    }

    @Test("replaying an event applies nothing twice", arguments: StoreKind.all)
    func replay(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "7.00", identify: ["email": "dan@example.com"])
        let event = Event(seq: 2, time: Date(), topic: "sale.completed", device: nil, data: ["sale": "S1", "total": "7.00", "currency": "EUR"])
        let processor = ledger.processor
        #expect(try await ledger.store.apply([event]) { event, store in try processor.process(event, in: store) }.isEmpty)
        #expect(try await ledger.count("SELECT visits FROM customer") == 1)
    }
}

@Suite("Attribution edge cases", .timeLimit(.minutes(1)))
struct AttributionTests {
    @Test("attaching a receipt to someone else moves the purchase: one sale, one buyer", arguments: StoreKind.all)
    func relinkMovesPurchase(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "30.00", receipt: "R1", identify: ["email": "ann@example.com"])
        _ = try await ledger.sale("S2", total: "1.00", identify: ["email": "bea@example.com"])
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let ann = try await directory.resolve("ann@example.com")
        let bea = try await directory.resolve("bea@example.com")
        try await directory.attach(receipt: "R1", to: bea, maxDays: 3650, now: ledger.start.addingTimeInterval(3600))
        try await directory.attach(receipt: "R1", to: bea, maxDays: 3650, now: ledger.start.addingTimeInterval(3600))
        #expect(try await ledger.count("SELECT visits FROM customer WHERE id = '\(ann)'") == 0)
        #expect(try await ledger.count("SELECT visits FROM customer WHERE id = '\(bea)'") == 2)
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'purchase' AND customer_id = '\(bea)'") == 2)
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale_link WHERE sale_id = 'S1'") == 2, "the first link is kept, ended, for audit")
    }

    @Test("a late attach outside the window is refused with the reason", arguments: StoreKind.all)
    func lateAttachWindow(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "5.00", receipt: "R1")
        _ = try await ledger.sale("S2", total: "1.00", identify: ["email": "ann@example.com"])
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let ann = try await directory.resolve("ann@example.com")
        await #expect(throws: CustomerDirectory.NotFound.self) {
            try await directory.attach(receipt: "R1", to: ann, maxDays: 7, now: ledger.start.addingTimeInterval(8 * 86400))
        }
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale_link WHERE sale_id = 'S1'") == 0)
    }

    @Test("a card scanned while sales are open on two tills links neither", arguments: StoreKind.all)
    func ambiguousScan(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S0", total: "2.00", identify: ["loyalty": "LOY7"])
        try await ledger.feed("sale.started", ["sale": "S1", "till": "T1"])
        try await ledger.feed("sale.started", ["sale": "S2", "till": "T2"])
        let outcome = try await ledger.feed("scanner.data", ["text": "LOY7", "kind": "loyalty"])
        #expect(outcome.contains { if case .note(let text) = $0 { text.contains("T1, T2") } else { false } })
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale_link WHERE sale_id IN ('S1', 'S2')") == 0)
    }

    @Test("a sale left open for hours does not capture a later scan", arguments: StoreKind.all)
    func staleOpenSale(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S0", total: "2.00", identify: ["loyalty": "LOY7"])
        try await ledger.feed("sale.started", ["sale": "S1", "till": "T1"])
        let outcome = try await ledger.feed("scanner.data", ["text": "LOY7", "kind": "loyalty"], daysLater: 0.25)
        #expect(outcome.contains { if case .note(let text) = $0 { text.contains("no open sale") } else { false } })
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale_link WHERE sale_id = 'S1'") == 0)
    }

    @Test("the open-sale window is 4 hours: a scan just inside links the sale, just outside does not", arguments: [(-1.0, true), (1.0, false)])
    func openSaleWindowBoundary(offsetSeconds: Double, links: Bool) async throws {
        let ledger = try await Ledger()
        _ = try await ledger.sale("S0", total: "2.00", identify: ["loyalty": "LOY7"])
        let started = ledger.start.addingTimeInterval(3600)
        try await ledger.feed("sale.started", ["sale": "S1", "till": "T1"], at: started)
        try await ledger.feed("scanner.data", ["text": "LOY7", "kind": "loyalty"], at: started.addingTimeInterval(4 * 3600 + offsetSeconds))
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale_link WHERE sale_id = 'S1' AND unlinked_ms IS NULL") == (links ? 1 : 0))
    }

    func owner(_ ledger: Ledger, _ kind: String, _ value: String) async throws -> String? {
        try await text(ledger.store, "SELECT customer_id FROM identifier WHERE kind = '\(kind)' AND normalized = '\(value)'")
    }

    func buyer(_ ledger: Ledger, _ sale: String) async throws -> String? {
        try await text(ledger.store, "SELECT customer_id FROM sale_link WHERE sale_id = '\(sale)' AND unlinked_ms IS NULL")
    }

    @Test("a landline and an email given together, each another customer's: the email's holder gets the sale, the pair is queued, nothing merged", arguments: StoreKind.all)
    func landlineDoesNotMerge(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "1.00", identify: ["phone": "020 7946 0018"])
        _ = try await ledger.sale("S2", total: "1.00", identify: ["email": "bea@example.com"])
        let phoneOwner = try await owner(ledger, "phone", "+442079460018")
        let emailOwner = try await owner(ledger, "email", "bea@example.com")
        #expect(phoneOwner != nil && emailOwner != nil && phoneOwner != emailOwner)

        // Phone listed first in the event: the email still wins, as the landline is a household's.
        let outcome = try await ledger.sale("S3", total: "5.00", identify: ["phone": "020 7946 0018", "email": "bea@example.com"])
        #expect(try await buyer(ledger, "S3") == emailOwner)
        #expect(outcome.contains { if case .note(let text) = $0 { text.contains("queued for review") && text.contains(phoneOwner ?? "?") } else { false } })
        #expect(try await ledger.count("SELECT COUNT(*) FROM duplicate_review WHERE status = 'open'") == 1, "a person decides whether the phone's owner is Bea")
        #expect(try await ledger.count("SELECT COUNT(*) FROM customer WHERE status = 'active'") == 2)
        #expect(try await ledger.count("SELECT COUNT(*) FROM merge_log") == 0)
    }

    @Test("a mobile, an email and a card given together, each only its holder's, make the holders one person; a card holder of another name is only queued", arguments: StoreKind.all)
    func bridgingIdentification(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "1.00", identify: ["phone": "07911 123456", "name": "Bea Smith"])
        _ = try await ledger.sale("S2", total: "1.00", identify: ["email": "bea@example.com"])
        _ = try await ledger.sale("S3", total: "1.00", identify: ["loyalty": "LOY55", "name": "Carl Jones"])
        let phoneOwner = try #require(try await owner(ledger, "phone", "+447911123456"))
        let emailOwner = try #require(try await owner(ledger, "email", "bea@example.com"))
        let cardOwner = try #require(try await owner(ledger, "loyalty_card", "LOY55"))
        #expect(Set([phoneOwner, emailOwner, cardOwner]).count == 3, "three customers to start with")

        // Her mobile and her email at once: the two records are one person, merged, and the
        // rows stay with the record they came by (so an unmerge could give each back).
        let both = try await ledger.sale("S4", total: "5.00", identify: ["phone": "07911 123456", "email": "bea@example.com"])
        #expect(both.contains { if case .note(let text) = $0 { text.contains("as one person") } else { false } }, "\(both)")
        #expect(try await ledger.count("SELECT COUNT(*) FROM customer WHERE status = 'active'") == 2)
        let merge = try #require(try await ledger.store.read { try $0.merges(involving: phoneOwner).first })
        #expect(merge.automatic && Set([merge.survivor, merge.absorbed]) == Set([phoneOwner, emailOwner]))
        #expect(try await owner(ledger, "phone", "+447911123456") == phoneOwner)

        // Carl's card with Bea's email: the card decides the sale; Bea and Carl are not merged.
        _ = try await ledger.sale("S5", total: "5.00", identify: ["email": "bea@example.com", "loyalty": "LOY55"])
        #expect(try await buyer(ledger, "S5") == cardOwner)
        #expect(try await ledger.count("SELECT COUNT(*) FROM customer WHERE status = 'active'") == 2)
        #expect(try await ledger.count("SELECT COUNT(*) FROM merge_log") == 1)
        #expect(try await ledger.count("SELECT COUNT(*) FROM duplicate_review WHERE status = 'open'") == 1, "Carl's card given with Bea's email is for a person to look at")
    }

    @Test("a void after completion changes nothing and says to send a refund", arguments: StoreKind.all)
    func voidAfterCompletion(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "9.00", identify: ["email": "ann@example.com"])
        let outcome = try await ledger.feed("sale.voided", ["sale": "S1"])
        #expect(outcome.contains { if case .skipped(let reason) = $0 { reason.contains("refund.completed") } else { false } })
        #expect(try await ledger.count("SELECT COUNT(*) FROM sale WHERE state = 'completed'") == 1)
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'") == 1)
    }

    @Test("a chain's purchases keep their store, till and staff; the profile says where the customer shops", arguments: StoreKind.all)
    func location(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        for (index, place) in [("North", "N1", "sam"), ("North", "N2", "kim"), ("Harbour", "H1", "lee")].enumerated() {
            let sale = "L\(index)"
            try await ledger.feed("sale.started", ["sale": .string(sale), "store": .string(place.0), "till": .string(place.1), "staff": .string(place.2)])
            try await ledger.feed("sale.line", ["sale": .string(sale), "name": "Tea", "qty": 1, "unit_price": "3.00", "amount": "3.00"])
            try await ledger.feed("customer.identified", ["sale": .string(sale), "email": "ann@example.com"])
            try await ledger.feed("sale.completed", ["sale": .string(sale), "total": "3.00", "currency": "EUR"])
        }
        let customer = try #require(try await text(ledger.store, "SELECT customer_id FROM identifier WHERE normalized = 'ann@example.com'"))
        let sale = try #require(try await ledger.store.read { try $0.sale("L2") })
        #expect(sale.store == "Harbour" && sale.till == "H1" && sale.staff == "lee")
        let purchases = try await ledger.store.read { try $0.timeline(of: customer, limit: 10) }.filter { $0.type == .purchase }
        #expect(purchases.count == 3)
        #expect(purchases.first?.payload["store"] == "Harbour" && purchases.first?.payload["till"] == "H1" && purchases.first?.payload["staff"] == "lee")
        let profile = try await CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer).profile(customer)
        let places = try #require(profile["shops_at"]?.arrayValue)
        #expect(places.map { $0["store"]?.stringValue } == ["North", "Harbour"], "most visited first")
        #expect(places.first?["visits"] == 2 && places.first?["tills"] == ["N1", "N2"])
    }
}
