public import Foundation
public import TillCore

/// What people do with customer memory outside the till: look someone up, read their
/// timeline, add a note, attach a forgotten receipt, record consent, export or erase.
public struct CustomerDirectory: Sendable {
    public struct NotFound: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let store: any CRMStore
    public let normalizer: IdentifierNormalizer

    public init(store: any CRMStore, normalizer: IdentifierNormalizer) {
        self.store = store
        self.normalizer = normalizer
    }

    /// A customer id from an id, email, phone or card number, following merges.
    public func resolve(_ reference: String) async throws -> String {
        let normalizer = self.normalizer
        let found = try await store.read { store -> String? in
            if let customer = try store.customer(reference), customer.status == .active { return customer.id }
            var candidates: [CustomerIdentifier] = []
            if reference.contains("@") { candidates += [try? normalizer.email(reference)].compactMap { $0 } }
            if reference.contains(where: \.isNumber) { candidates += [try? normalizer.phone(reference)].compactMap { $0 } }
            candidates += [try? normalizer.loyaltyCard(reference)].compactMap { $0 }
            for candidate in candidates {
                if let owner = try store.owner(of: candidate) { return owner }
            }
            return nil
        }
        guard let found else {
            throw NotFound(description: "no customer matches \"\(reference)\" (by id, email, phone or card); try: till-crm customer find TEXT")
        }
        return found
    }

    public struct Match: Sendable, Hashable {
        public var id: String
        public var name: String?
        public var identifiers: [String]
        public var lastSeen: Date
    }

    /// Customers whose name contains `text`, or one of whose identifiers starts with its normalised form.
    public func find(_ text: String, limit: Int = 20) async throws -> [Match] {
        var prefixes: Set<String> = [text.lowercased(), String(text.uppercased().filter { !$0.isWhitespace })]
        if let phone = try? normalizer.phone(text) { prefixes.insert(phone.normalized) }
        return try await store.read { [prefixes] store in
            try store.findCustomers(identifierPrefixes: prefixes.sorted(), nameContaining: text, limit: limit).map { customer in
                Match(
                    id: customer.id, name: customer.name, identifiers: try store.identifiers(of: customer.id).map(\.description),
                    lastSeen: Date(milliseconds: customer.lastSeenMs))
            }
        }
    }

    /// Everything shown for one customer: the record, identifiers, current consent, the timeline (newest first).
    public func profile(_ id: String, timelineLimit: Int = 500) async throws -> JSONValue {
        try await store.read { store in
            guard let customer = try store.customer(id) else { throw NotFound(description: "no customer \(id)") }
            let identifiers = try store.identifiers(of: id).map { identifier -> JSONValue in
                ["kind": .string(identifier.kind.rawValue), "raw": .string(identifier.raw), "normalized": .string(identifier.normalized)]
            }
            let timeline = try store.timeline(of: id, limit: timelineLimit).map { entry -> JSONValue in
                [
                    "at": .string(Timestamp.format(Date(milliseconds: entry.occurredMs))), "type": .string(entry.type.rawValue),
                    "data": entry.payload, "actor": entry.actor.map(JSONValue.string) ?? .null,
                ]
            }
            return [
                "id": .string(id), "name": customer.name.map(JSONValue.string) ?? .null, "status": .string(customer.status.rawValue),
                "first_seen": .string(Timestamp.format(Date(milliseconds: customer.firstSeenMs))),
                "last_seen": .string(Timestamp.format(Date(milliseconds: customer.lastSeenMs))),
                "visits": .int(Int64(customer.visits)), "identifiers": .array(identifiers),
                "consent": .array(ConsentRecord.current(try store.consentHistory(of: id)).map(Self.json)), "timeline": .array(timeline),
            ]
        }
    }

    static func json(_ consent: ConsentRecord) -> JSONValue {
        [
            "channel": .string(consent.channel.rawValue), "purpose": .string(consent.purpose.rawValue), "granted": .bool(consent.granted),
            "basis": .string(consent.basis.rawValue), "source": .string(consent.source),
            "sale": consent.sale.map(JSONValue.string) ?? .null, "at": .string(Timestamp.format(Date(milliseconds: consent.recordedMs))),
        ]
    }

    public enum EntryType: String, Sendable, CaseIterable { case note, conversation, opportunity }

    /// Adds a note, conversation or opportunity to the timeline.
    public func add(_ type: EntryType, to id: String, data: JSONValue, actor: String?) async throws {
        try await store.write { store in
            guard try store.customer(id)?.status == .active else { throw NotFound(description: "no active customer \(id)") }
            let ms = Date().milliseconds
            try store.append(TimelineEntry(
                customer: id, type: TimelineEntry.Kind(rawValue: type.rawValue)!, source: "cli:\(UUID().uuidString)",
                payload: data, occurredMs: ms, recordedMs: ms, actor: actor))
        }
    }

    /// Attaches a completed sale to a customer after the fact (the customer gave their card
    /// or email later), within `maxDays` of the sale. Idempotent.
    public func attach(receipt: String, to id: String, maxDays: Int, now: Date = Date()) async throws {
        let processor = TillEventProcessor(normalizer: normalizer)
        try await store.write { store in
            guard let sale = try store.latestSale(receipt: receipt) else {
                throw NotFound(description: "no sale with receipt \(receipt) has reached till-crm")
            }
            guard sale.state == .completed, let completed = sale.completedMs else {
                throw NotFound(description: "the sale with receipt \(receipt) is not completed")
            }
            let ms = now.milliseconds
            guard ms - completed <= Int64(maxDays) * 86_400_000 else {
                throw NotFound(description: "receipt \(receipt) is older than \(maxDays) days; late attachment is refused (--max-days)")
            }
            try processor.link(sale: sale.id, to: id, method: .lateAttach, atMs: ms, store)
            try processor.recordPurchase(sale, customer: id, atMs: ms, store)
        }
    }

    /// Records consent given or withdrawn outside the till (append-only).
    public func setConsent(
        _ id: String, channel: ConsentRecord.Channel, purpose: ConsentRecord.Purpose, granted: Bool, basis: ConsentRecord.Basis, source: String
    ) async throws {
        try await store.write { store in
            guard try store.customer(id)?.status == .active else { throw NotFound(description: "no active customer \(id)") }
            let ms = Date().milliseconds
            try store.append(ConsentRecord(customer: id, channel: channel, purpose: purpose, granted: granted, basis: basis, source: source, recordedMs: ms))
            try store.append(TimelineEntry(
                customer: id, type: .consent, source: "cli:\(UUID().uuidString)",
                payload: ["channel": .string(channel.rawValue), "purpose": .string(purpose.rawValue), "granted": .bool(granted), "basis": .string(basis.rawValue)],
                occurredMs: ms, recordedMs: ms, actor: source))
        }
    }

    public func consent(_ id: String) async throws -> JSONValue {
        try await store.read { store in .array(ConsentRecord.current(try store.consentHistory(of: id)).map(Self.json)) }
    }

    /// Everything held about a person (subject access request), as one JSON object.
    public func export(_ id: String) async throws -> JSONValue {
        var profile = try await profile(id, timelineLimit: Int.max).objectValue ?? [:]
        let extra = try await store.read { store -> JSONValue in
            let consent = try store.consentHistory(of: id).map(Self.json)
            let sales = try store.links(ofCustomer: id).map { link -> JSONValue in
                [
                    "sale": .string(link.sale.id), "receipt": link.sale.receipt.map(JSONValue.string) ?? .null,
                    "total": link.sale.total.map(JSONValue.string) ?? .null, "currency": link.sale.currency.map(JSONValue.string) ?? .null,
                    "completed": link.sale.completedMs.map { .string(Timestamp.format(Date(milliseconds: $0))) } ?? .null,
                    "linked_by": .string(link.method.rawValue), "linked": .string(Timestamp.format(Date(milliseconds: link.linkedMs))),
                    "unlinked": link.unlinkedMs.map { .string(Timestamp.format(Date(milliseconds: $0))) } ?? .null,
                ]
            }
            return ["consent_history": .array(consent), "sales": .array(sales)]
        }
        profile.merge(extra.objectValue ?? [:]) { _, new in new }
        return .object(profile)
    }

    /// Erases a person: identifiers, names, notes, consent and links go; anonymous sale totals
    /// stay; hashed identifiers go to the suppression list so a later event cannot silently
    /// re-create them. Returns how many identifiers were suppressed.
    @discardableResult
    public func erase(_ id: String) async throws -> Int {
        try await store.write { store in
            guard try store.customer(id) != nil else { throw NotFound(description: "no customer \(id)") }
            let ms = Date().milliseconds
            let key = try store.suppressionKey()
            let identifiers = try store.identifiers(of: id)
            for identifier in identifiers {
                try store.suppress(hash: Suppression.hash(identifier, key: key), kind: identifier.kind, reason: "erased", atMs: ms)
            }
            try store.erasePersonalData(of: id)
            return identifiers.count
        }
    }
}
