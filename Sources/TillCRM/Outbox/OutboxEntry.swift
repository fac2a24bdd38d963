public import Foundation
public import TillCore

/// One thing till-crm learned, as it is delivered to the shop's other systems: written to the
/// outbox in the same transaction as the change itself, so a change is never kept without its
/// entry nor an entry without its change.
///
/// `body` is the JSON text delivered, fixed when the entry is written: a redelivery carries the
/// same bytes under the same `id` (the Standard Webhooks `webhook-id`, which receivers keep to
/// see each entry once).
public struct OutboxEntry: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The customer as they are now (a full snapshot: upsert it by `data.customer`).
        case customerUpdated = "customer.updated"
        /// `data.absorbed` is now `data.survivor`: follow it.
        case customerMerged = "customer.merged"
        /// A merge was undone: the two are separate people again.
        case customerUnmerged = "customer.unmerged"
        /// The person was erased: delete everything held about `data.customer`. Every earlier
        /// entry about them still waiting in the outbox was purged first.
        case customerErased = "customer.erased"
        /// A timeline entry: a purchase, a refund, a note, a conversation, consent given...
        case timelineAdded = "timeline.added"
        /// A timeline entry moved to another customer (a sale linked to the wrong person).
        case timelineMoved = "timeline.moved"
        /// A moment worth a follow-up was raised.
        case momentRaised = "moment.raised"
        /// A moment was done, snoozed, dismissed or moved to another customer.
        case momentUpdated = "moment.updated"
    }

    /// The order entries were written in (per customer, the order they are delivered in).
    public var seq: Int64
    /// `msg_` and 32 hex digits: the webhook-id and idempotency key.
    public var id: String
    /// The record the entry is about; per-customer order is kept by it.
    public var customer: String
    public var type: Kind
    /// `{"type": ..., "timestamp": ..., "data": {...}}`, as delivered.
    public var body: String
    public var createdMs: Int64

    public init(seq: Int64, id: String, customer: String, type: Kind, body: String, createdMs: Int64) {
        self.seq = seq
        self.id = id
        self.customer = customer
        self.type = type
        self.body = body
        self.createdMs = createdMs
    }

    /// A new entry id: random, so ids from two stores (or a restored backup) never collide.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return "msg_" + hex(high) + hex(low)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The body: the Standard Webhooks payload shape (type, timestamp, data).
    public static func body(type: Kind, atMs: Int64, data: JSONValue) -> String {
        JSONText.encode(["type": .string(type.rawValue), "timestamp": .string(Timestamp.format(Date(milliseconds: atMs))), "data": data])
    }

    /// The body's `data`, parsed (for targets that map it: the Twenty mapping, tests).
    public var data: JSONValue {
        ((try? JSONText.decode(body))?.objectValue?["data"]) ?? .null
    }
}

/// What each kind of entry carries: pure functions of the records, one place for the shape
/// documented in docs/crm.md (the outbox).
public enum OutboxPayload {
    static func time(_ ms: Int64) -> JSONValue { .string(Timestamp.format(Date(milliseconds: ms))) }
    static func time(_ ms: Int64?) -> JSONValue { ms.map { time($0) } ?? .null }
    static func string(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }

    /// A customer record with its identifiers (by kind) and the consent in force.
    public static func customer(_ record: CustomerRecord, identifiers: [CustomerIdentifier], consent: [ConsentRecord]) -> JSONValue {
        func values(_ kind: CustomerIdentifier.Kind) -> JSONValue {
            .array(identifiers.filter { $0.kind == kind }.map { .string($0.normalized) })
        }
        return [
            "customer": .string(record.id), "status": .string(record.status.rawValue), "merged_into": string(record.mergedInto),
            "name": string(record.name), "given_name": string(record.givenName), "family_name": string(record.familyName),
            "postcode": string(record.postcode),
            "emails": values(.email), "phones": values(.phone), "loyalty_cards": values(.loyaltyCard), "external_ids": values(.external),
            "consent": .array(ConsentRecord.current(consent).map(CustomerDirectory.json)),
            "first_seen": time(record.firstSeenMs), "last_seen": time(record.lastSeenMs), "visits": .int(Int64(record.visits)),
        ]
    }

    public static func timeline(_ entry: TimelineEntry) -> JSONValue {
        [
            "customer": .string(entry.customer), "type": .string(entry.type.rawValue), "source": .string(entry.source),
            "occurred": time(entry.occurredMs), "recorded": time(entry.recordedMs), "actor": string(entry.actor), "data": entry.payload,
        ]
    }

    public static func moment(_ moment: Moment) -> JSONValue {
        var object = moment.event.objectValue ?? [:]
        object["status"] = .string(moment.status.rawValue)
        object["raised"] = time(moment.createdMs)
        object["snoozed_until"] = time(moment.snoozedUntilMs)
        return .object(object)
    }
}
