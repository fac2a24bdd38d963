public import Foundation
public import TillCore
import TillPhoneNumber

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

    /// The record something said about `reference` belongs to: the record with that id, or
    /// the one holding that email, phone or card, even where it was merged into another.
    /// Notes, consent and late attachments are written there, so an unmerge leaves each with
    /// the person it was about; reads gather the whole customer (`resolve`).
    public func record(_ reference: String) async throws -> String {
        let normalizer = self.normalizer
        let found = try await store.read { store -> String? in
            if let customer = try store.customer(reference), customer.status != .erased { return customer.id }
            for candidate in Self.identifierReadings(reference, normalizer) {
                if let holder = try store.holders(of: candidate).first { return holder }
            }
            return nil
        }
        guard let found else {
            throw NotFound(description: "no customer matches \"\(reference)\" (by id, email, phone or card); try: till-crm customer find TEXT")
        }
        return found
    }

    /// The identifiers a reference typed at a terminal may be: an email, a phone, a card.
    private static func identifierReadings(_ reference: String, _ normalizer: IdentifierNormalizer) -> [CustomerIdentifier] {
        var candidates: [CustomerIdentifier] = []
        if reference.contains("@") { candidates += [try? normalizer.email(reference)].compactMap { $0 } }
        if reference.contains(where: \.isNumber) { candidates += [try? normalizer.phone(reference)].compactMap { $0 } }
        candidates += [try? normalizer.loyaltyCard(reference)].compactMap { $0 }
        return candidates
    }

    /// A customer id from an id, email, phone or card number, following merges.
    public func resolve(_ reference: String) async throws -> String {
        let normalizer = self.normalizer
        let found = try await store.read { store -> String? in
            // Old ids keep resolving to the survivor of a merge.
            if let customer = try store.customer(reference), customer.status != .erased { return try store.root(of: customer.id) }
            for candidate in Self.identifierReadings(reference, normalizer) {
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

    /// Customers found by any part of a name, an email or a phone number, the phone in
    /// national ("07911", "0151 2345") or international form ("+44 7911", "0044 7911").
    public func find(_ text: String, limit: Int = 20) async throws -> [Match] {
        let query = text.trimmingWhitespace()
        var prefixes: Set<String> = [String(query.uppercased().filter { !$0.isWhitespace })]
        var parts: Set<String> = [query.lowercased()]
        if let phone = try? normalizer.phone(query) { prefixes.insert(phone.normalized) }
        for part in Self.phoneParts(query, defaultRegion: normalizer.defaultRegion) { parts.insert(part) }
        let name = query
        return try await store.read { [prefixes, parts] store in
            try store.findCustomers(identifierPrefixes: prefixes.sorted(), identifierParts: parts.sorted(), nameContaining: name, limit: limit).compactMap { record in
                guard let cluster = try Cluster.of(record.id, in: store) else { return nil }
                return Match(
                    id: cluster.root.id, name: cluster.displayName, identifiers: try cluster.identifiers(in: store).map(\.description),
                    lastSeen: Date(milliseconds: cluster.lastSeenMs))
            }
        }
    }

    /// The digits of a partial phone number as they appear inside an E.164 number: "07911"
    /// in a British shop is "+447911", "0044 7911" is "+447911", a bare "7911" is itself.
    static func phoneParts(_ text: String, defaultRegion: String) -> [String] {
        let allowed = Set("0123456789+ -()/.")
        guard text.contains(where: \.isNumber), text.allSatisfy(allowed.contains) else { return [] }
        let digits = String(text.filter(\.isNumber))
        guard digits.count >= 3 else { return [] }
        if text.trimmingWhitespace().hasPrefix("+") { return ["+" + digits] }
        if digits.hasPrefix("00") { return ["+" + digits.dropFirst(2)] }
        if digits.hasPrefix("0"), let code = PhoneNumber.countryCode(ofRegion: defaultRegion) {
            // National trunk prefix: 0 then the national number.
            return ["+\(code)" + digits.dropFirst(), String(digits.dropFirst())]
        }
        return [digits]
    }

    /// Everything shown for one customer: the record, identifiers, current consent, the
    /// timeline (newest first), gathered over every record merged into it.
    public func profile(_ id: String, timelineLimit: Int = 500) async throws -> JSONValue {
        try await store.read { store in
            guard let cluster = try Cluster.of(id, in: store) else { throw NotFound(description: "no customer \(id)") }
            let customer = cluster.root
            let identifiers = try cluster.identifiers(in: store).map { identifier -> JSONValue in
                ["kind": .string(identifier.kind.rawValue), "raw": .string(identifier.raw), "normalized": .string(identifier.normalized)]
            }
            let timeline = try cluster.timeline(in: store, limit: timelineLimit).map { entry -> JSONValue in
                [
                    "at": .string(Timestamp.format(Date(milliseconds: entry.occurredMs))), "type": .string(entry.type.rawValue),
                    "data": entry.payload, "actor": entry.actor.map(JSONValue.string) ?? .null,
                ]
            }
            var profile: [String: JSONValue] = [
                "id": .string(customer.id), "name": cluster.displayName.map(JSONValue.string) ?? .null, "status": .string(customer.status.rawValue),
                "first_seen": .string(Timestamp.format(Date(milliseconds: cluster.firstSeenMs))),
                "last_seen": .string(Timestamp.format(Date(milliseconds: cluster.lastSeenMs))),
                "visits": .int(Int64(cluster.visits)), "identifiers": .array(identifiers),
                "consent": .array(ConsentRecord.current(try cluster.consentHistory(in: store)).map(Self.json)), "timeline": .array(timeline),
            ]
            if let given = customer.givenName { profile["given_name"] = .string(given) }
            if let family = customer.familyName { profile["family_name"] = .string(family) }
            if let postcode = customer.postcode { profile["postcode"] = .string(postcode) }
            if cluster.members.count > 1 { profile["merged_records"] = .array(cluster.ids.dropFirst().map(JSONValue.string)) }
            let places = try Self.shopsAt(cluster.ids, in: store)
            if !places.isEmpty { profile["shops_at"] = .array(places) }
            return .object(profile)
        }
    }

    /// Where a customer shops: their completed purchases by store (the till's `sale.started`
    /// says which), most visited first, with the tills and the last visit.
    static func shopsAt(_ records: [String], in store: any CRMTransaction) throws -> [JSONValue] {
        var visits: [String: (count: Int, lastMs: Int64, tills: Set<String>)] = [:]
        for record in records {
            for link in try store.links(ofCustomer: record) where link.unlinkedMs == nil && link.sale.state == .completed {
                guard let place = link.sale.store else { continue }
                var entry = visits[place] ?? (0, 0, [])
                entry.count += 1
                entry.lastMs = max(entry.lastMs, link.sale.completedMs ?? link.linkedMs)
                if let till = link.sale.till { entry.tills.insert(till) }
                visits[place] = entry
            }
        }
        return visits.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }.map { place, entry in
            [
                "store": .string(place), "visits": .int(Int64(entry.count)), "tills": .array(entry.tills.sorted().map(JSONValue.string)),
                "last_visit": .string(Timestamp.format(Date(milliseconds: entry.lastMs))),
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

    static func json(_ merge: MergeRecord) -> JSONValue {
        [
            "survivor": .string(merge.survivor), "absorbed": .string(merge.absorbed), "automatic": .bool(merge.automatic),
            "score": merge.score.map { .double($0) } ?? .null, "evidence": .array(merge.evidence.map(JSONValue.string)),
            "actor": .string(merge.actor), "reason": .string(merge.reason), "merged": .string(Timestamp.format(Date(milliseconds: merge.mergedMs))),
            "undone": merge.undoneMs.map { .string(Timestamp.format(Date(milliseconds: $0))) } ?? .null,
            "undone_by": merge.undoneBy.map(JSONValue.string) ?? .null,
        ]
    }

    public enum EntryType: String, Sendable, CaseIterable { case note, conversation, opportunity }

    /// Adds a note, conversation or opportunity to the timeline of the record `id` (an old id
    /// of a merged customer keeps its entries apart, for an unmerge; the customer shows them all).
    public func add(_ type: EntryType, to id: String, data: JSONValue, actor: String?, at now: Date = Date()) async throws {
        try await store.write { store in
            let root = try store.root(of: id)
            guard try store.customer(root)?.status == .active else { throw NotFound(description: "no active customer \(id)") }
            let ms = now.milliseconds
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
            let root = try store.root(of: id)
            guard try store.customer(root)?.status == .active else { throw NotFound(description: "no active customer \(id)") }
            let ms = Date().milliseconds
            try store.append(ConsentRecord(customer: id, channel: channel, purpose: purpose, granted: granted, basis: basis, source: source, recordedMs: ms))
            try store.append(TimelineEntry(
                customer: id, type: .consent, source: "cli:\(UUID().uuidString)",
                payload: ["channel": .string(channel.rawValue), "purpose": .string(purpose.rawValue), "granted": .bool(granted), "basis": .string(basis.rawValue)],
                occurredMs: ms, recordedMs: ms, actor: source))
        }
    }

    public func consent(_ id: String) async throws -> JSONValue {
        try await store.read { store in
            guard let cluster = try Cluster.of(id, in: store) else { throw NotFound(description: "no customer \(id)") }
            return .array(ConsentRecord.current(try cluster.consentHistory(in: store)).map(Self.json))
        }
    }

    /// Everything held about a person (subject access request), as one JSON object.
    public func export(_ id: String) async throws -> JSONValue {
        var profile = try await profile(id, timelineLimit: Int.max).objectValue ?? [:]
        let extra = try await store.read { store -> JSONValue in
            guard let cluster = try Cluster.of(id, in: store) else { throw NotFound(description: "no customer \(id)") }
            let consent = try cluster.consentHistory(in: store).map(Self.json)
            let merges = try cluster.ids.flatMap { try store.merges(involving: $0) }.reduce(into: [MergeRecord]()) { all, merge in
                if !all.contains(merge) { all.append(merge) }
            }.map(Self.json)
            let sales = try cluster.ids.flatMap { try store.links(ofCustomer: $0) }.map { link -> JSONValue in
                [
                    "sale": .string(link.sale.id), "receipt": link.sale.receipt.map(JSONValue.string) ?? .null,
                    "total": link.sale.total.map(JSONValue.string) ?? .null, "currency": link.sale.currency.map(JSONValue.string) ?? .null,
                    "completed": link.sale.completedMs.map { .string(Timestamp.format(Date(milliseconds: $0))) } ?? .null,
                    "linked_by": .string(link.method.rawValue), "linked": .string(Timestamp.format(Date(milliseconds: link.linkedMs))),
                    "unlinked": link.unlinkedMs.map { .string(Timestamp.format(Date(milliseconds: $0))) } ?? .null,
                ]
            }
            return ["consent_history": .array(consent), "sales": .array(sales), "merges": .array(merges)]
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
            // A person is every record merged into them: all of it goes.
            guard let cluster = try Cluster.of(id, in: store) else { throw NotFound(description: "no customer \(id)") }
            let ms = Date().milliseconds
            let key = try store.suppressionKey()
            let identifiers = try cluster.identifiers(in: store)
            for identifier in identifiers {
                try store.suppress(hash: Suppression.hash(identifier, key: key), kind: identifier.kind, reason: "erased", atMs: ms)
            }
            for member in cluster.ids { try store.erasePersonalData(of: member) }
            return identifiers.count
        }
    }
}
