public import Foundation
public import TillCore
import Crypto

/// What applying one tilld event produced besides stored records: greetings to publish
/// and problems to log. Bad events are skipped whole (no partial records) with a reason.
public enum ProcessingOutcome: Sendable, Hashable {
    case recognized(CustomerRecognized)
    case skipped(reason: String)
    case note(String)
}

/// `customer.recognized`: published on tilld's socket so the POS can greet a regular.
public struct CustomerRecognized: Sendable, Hashable {
    public var sale: String?
    public var customer: String
    public var returning: Bool
    public var visits: Int
    public var lastVisit: Date?
    public var flags: [String]

    public var data: JSONValue {
        var object: [String: JSONValue] = [
            "customer": .string(customer), "returning": .bool(returning), "visits": .int(Int64(visits)),
            "flags": .array(flags.map(JSONValue.string)),
        ]
        if let sale { object["sale"] = .string(sale) }
        if let lastVisit { object["last_visit"] = .string(Timestamp.format(lastVisit)) }
        return .object(object)
    }
}

/// Turns till events into customer memory. Runs inside `CRMStore.apply`, so an event's
/// records and the cursor commit together. Tolerant of order: a completed sale with no lines
/// still records its total; an identification after completion still links the sale.
public struct TillEventProcessor: Sendable {
    public var normalizer: IdentifierNormalizer
    /// Who a person is: the matcher, shared with `till-crm import`.
    public var identification: Identification
    /// A loyalty card scanned this long after a sale started is not attributed to it: an open
    /// sale the POS never completed or voided must not capture tomorrow's scans.
    public var openSaleWindowMs: Int64 = 4 * 3_600_000
    /// The moments worth a follow-up, raised as purchases and services are recorded.
    public var moments = MomentRules()

    public init(normalizer: IdentifierNormalizer, newID: @escaping @Sendable () -> String = CustomerID.random) {
        self.normalizer = normalizer
        self.identification = Identification(newID: newID)
    }

    public func process(_ event: Event, in store: any CRMTransaction) throws -> [ProcessingOutcome] {
        let data = event.data
        let ms = event.time.milliseconds
        switch event.topic {
        case "sale.started":
            guard let id = data["sale"]?.stringValue else { return [.skipped(reason: "sale.started without sale")] }
            var sale = try store.sale(id) ?? SaleRecord(id: id)
            sale.till = data["till"]?.stringValue ?? sale.till
            sale.store = data["store"]?.stringValue ?? sale.store
            sale.staff = data["staff"]?.stringValue ?? sale.staff
            sale.startedMs = ms
            try store.save(sale)
            return []
        case "sale.line", "sale.tender":
            guard let id = data["sale"]?.stringValue else { return [.skipped(reason: "\(event.topic) without sale")] }
            // A line or tender before `sale.started` (lost, or out of order) opens the sale.
            var sale = try store.sale(id) ?? SaleRecord(id: id, startedMs: ms)
            if event.topic == "sale.line" { sale.lines.append(data) } else { sale.tenders.append(data) }
            try store.save(sale)
            return []
        case "sale.completed":
            guard let id = data["sale"]?.stringValue, let total = data["total"]?.stringValue else {
                return [.skipped(reason: "sale.completed without sale or total")]
            }
            var sale = try store.sale(id) ?? SaleRecord(id: id, startedMs: ms)
            if sale.state == .voided { return [.skipped(reason: "sale \(id) was voided; a completion after a void is ignored")] }
            sale.state = .completed
            sale.total = total
            sale.currency = data["currency"]?.stringValue
            sale.receipt = data["receipt"]?.stringValue ?? sale.receipt
            sale.completedMs = ms
            try store.save(sale)
            if let customer = try store.linkedCustomer(ofSale: id) {
                try recordPurchase(sale, customer: customer, atMs: ms, store)
            }
            return []
        case "sale.voided":
            guard let id = data["sale"]?.stringValue else { return [.skipped(reason: "sale.voided without sale")] }
            var sale = try store.sale(id) ?? SaleRecord(id: id, startedMs: ms)
            try store.removePendingCard(ofSale: id)
            if sale.state == .completed {
                return [.skipped(reason: "sale \(id) was already completed; a void after completion is ignored (send refund.completed)")]
            }
            sale.state = .voided
            try store.save(sale)
            return []
        case "refund.completed":
            return try refund(event, store, ms)
        case "service.completed":
            return try service(event, store, ms)
        case "customer.identified":
            return try identified(event, store, ms)
        case "scanner.data":
            return try scanned(event, store, ms)
        default:
            return []
        }
    }

    // MARK: sales

    /// The purchase entry for a completed, linked sale; idempotent per sale.
    func recordPurchase(_ sale: SaleRecord, customer: String, atMs ms: Int64, _ store: any CRMTransaction) throws {
        guard sale.state == .completed else { return }
        let payload: JSONValue = [
            "sale": .string(sale.id), "receipt": sale.receipt.map(JSONValue.string) ?? .null,
            "total": sale.total.map(JSONValue.string) ?? .null, "currency": sale.currency.map(JSONValue.string) ?? .null,
            "lines": .array(sale.lines), "tenders": .array(sale.tenders),
            // Where and by whom: a chain's customer shops in several stores.
            "store": sale.store.map(JSONValue.string) ?? .null, "till": sale.till.map(JSONValue.string) ?? .null,
            "staff": sale.staff.map(JSONValue.string) ?? .null,
        ]
        let occurred = sale.completedMs ?? ms
        let entry = TimelineEntry(customer: customer, type: .purchase, source: Self.purchaseSource(sale.id), payload: payload, occurredMs: occurred, recordedMs: ms)
        if try store.append(entry) {
            try countVisit(of: customer, atMs: occurred, by: 1, store)
            if let moment = moments.afterPurchase(customer: customer, sale: sale, atMs: occurred) { try raise(moment, store) }
        }
    }

    /// Keeps a moment (once: its id is made the same way every time) and puts it on the
    /// customer's timeline; till-crm serve publishes it as `crm.moment` once committed.
    /// Returns false when it was raised before.
    @discardableResult
    func raise(_ moment: Moment, _ store: any CRMTransaction) throws -> Bool {
        guard try store.add(moment) else { return false }
        try store.append(TimelineEntry(
            customer: moment.customer, type: .moment, source: moment.timelineSource, payload: moment.event,
            occurredMs: moment.createdMs, recordedMs: moment.createdMs))
        return true
    }

    static func purchaseSource(_ sale: String) -> String { "purchase:\(sale)" }

    private func countVisit(of customer: String, atMs ms: Int64, by delta: Int, _ store: any CRMTransaction) throws {
        guard var record = try store.customer(customer) else { return }
        record.visits = max(0, record.visits + delta)
        if delta > 0 { record.lastSeenMs = max(record.lastSeenMs, ms) }
        try store.save(record)
    }

    /// Links a sale to a customer. If it was linked to someone else (the cashier corrected a
    /// mistaken identification), its purchase moves with it: one sale, one buyer.
    /// Returns the sale (opened if this is the first word of it).
    @discardableResult
    func link(sale id: String, to customer: String, method: LinkMethod, atMs ms: Int64, _ store: any CRMTransaction) throws -> SaleRecord {
        let sale: SaleRecord
        if let known = try store.sale(id) {
            sale = known
        } else {
            sale = SaleRecord(id: id, startedMs: ms)
            try store.save(sale)
        }
        let current = try store.linkedCustomer(ofSale: id)
        if current == customer { return sale }
        try store.link(sale: id, to: customer, method: method, atMs: ms)
        if current != nil, let previous = try store.moveEntry(source: Self.purchaseSource(id), to: customer) {
            try countVisit(of: previous, atMs: ms, by: -1, store)
            try countVisit(of: customer, atMs: sale.completedMs ?? ms, by: 1, store)
            // The purchase's care follow-up goes with it.
            let care = Moment.careID(sale: id)
            if try store.moveEntry(source: Moment.timelineSource(care), to: customer) != nil { try store.moveMoment(care, to: customer) }
        }
        return sale
    }

    private func refund(_ event: Event, _ store: any CRMTransaction, _ ms: Int64) throws -> [ProcessingOutcome] {
        let data = event.data
        guard let refund = data["refund"]?.stringValue, let reason = data["reason"]?.stringValue else {
            return [.skipped(reason: "refund.completed without refund or reason")]
        }
        var sale = try data["sale"]?.stringValue.flatMap { try store.sale($0) }
        if sale == nil, let receipt = data["receipt"]?.stringValue { sale = try store.latestSale(receipt: receipt) }
        guard let sale else {
            return [.note("refund \(refund) names no sale this CRM knows (sale or receipt); kept anonymous")]
        }
        guard let customer = try store.linkedCustomer(ofSale: sale.id) else {
            return [.note("refund \(refund) is for sale \(sale.id), which has no customer; kept anonymous")]
        }
        let payload: JSONValue = [
            "refund": .string(refund), "sale": .string(sale.id), "receipt": sale.receipt.map(JSONValue.string) ?? .null,
            "reason": .string(reason), "total": data["total"] ?? .null, "currency": data["currency"] ?? .null, "lines": data["lines"] ?? [],
        ]
        try store.append(TimelineEntry(customer: customer, type: .refund, source: "refund:\(refund)", payload: payload, occurredMs: ms, recordedMs: ms))
        return []
    }

    private func service(_ event: Event, _ store: any CRMTransaction, _ ms: Int64) throws -> [ProcessingOutcome] {
        let data = event.data
        guard let service = data["service"]?.stringValue else { return [.skipped(reason: "service.completed without service")] }
        // An old id of a merged customer names its survivor.
        var customer = try data["customer"]?.stringValue.flatMap { try store.customer(store.root(of: $0)) }.flatMap { $0.status == .active ? $0.id : nil }
        if customer == nil, let sale = data["sale"]?.stringValue { customer = try store.linkedCustomer(ofSale: sale) }
        guard let customer else { return [.note("service \"\(service)\" has no identified customer; not recorded")] }
        guard try store.append(TimelineEntry(customer: customer, type: .service, source: "tilld:\(event.seq)", payload: data, occurredMs: ms, recordedMs: ms))
        else { return [] }
        let interval = data["interval_days"]?.intValue.map(Int.init)
        for moment in moments.afterService(customer: customer, service: service, intervalDays: interval, source: "tilld:\(event.seq)", atMs: ms) {
            try raise(moment, store)
        }
        return []
    }

    // MARK: identification

    private func identified(_ event: Event, _ store: any CRMTransaction, _ ms: Int64) throws -> [ProcessingOutcome] {
        let data = event.data
        let postcode = data["postcode"]?.stringValue
        // Normalise everything first: one bad identifier rejects the event, so nothing partial is written.
        var identifiers: [CustomerIdentifier] = []
        do {
            if let card = data["loyalty"]?.stringValue { identifiers.append(try normalizer.loyaltyCard(card)) }
            if let email = data["email"]?.stringValue { identifiers.append(try normalizer.email(email)) }
            if let phone = data["phone"]?.stringValue {
                // A national number is read in the country the postcode or email point to.
                identifiers.append(try normalizer.phone(phone, postcode: postcode, email: data["email"]?.stringValue))
            }
        } catch let error as InvalidIdentifier {
            return [.skipped(reason: "customer.identified (seq \(event.seq)) refused: \(error)")]
        }
        let sale = data["sale"]?.stringValue
        if let sale, let pending = try store.pendingCard(ofSale: sale), !identifiers.contains(where: { $0.kind == .loyaltyCard }) {
            identifiers.insert(pending, at: 0)
        }
        guard !identifiers.isEmpty else { return [.skipped(reason: "customer.identified without email, phone or loyalty")] }
        let key = try store.suppressionKey()
        for identifier in identifiers where try store.isSuppressed(hash: Suppression.hash(identifier, key: key)) {
            return [.skipped(reason: "customer.identified (seq \(event.seq)) names an erased person's \(identifier.kind.rawValue); not re-created")]
        }

        let input = IdentityInput(
            identifiers: identifiers, name: data["name"]?.stringValue, givenName: data["given_name"]?.stringValue,
            familyName: data["family_name"]?.stringValue, postcode: postcode)
        let identity = try identification.identify(input, atMs: ms, sourceSeq: event.seq, in: store)
        var outcomes: [ProcessingOutcome] = []
        if !identity.merged.isEmpty {
            outcomes.append(.note("customer.identified (seq \(event.seq)) matched customers \(([identity.customer] + identity.merged).joined(separator: " and ")) as one person; merged into \(identity.customer) (till-crm unmerge undoes it)"))
        }
        if !identity.queued.isEmpty {
            outcomes.append(.note("customer.identified (seq \(event.seq)) may be the same person as \(identity.queued.joined(separator: ", ")); queued for review (till-crm duplicates)"))
        }
        if let consent = data["consent"]?.objectValue {
            for (key, channel) in [("email_marketing", ConsentRecord.Channel.email), ("sms_marketing", .sms)] {
                guard let granted = consent[key]?.boolValue else { continue }
                try store.append(ConsentRecord(
                    customer: identity.record, channel: channel, purpose: .marketing, granted: granted, basis: .consent, source: "till",
                    sale: sale, sourceSeq: event.seq, recordedMs: ms))
                try store.append(TimelineEntry(
                    customer: identity.record, type: .consent, source: "tilld:\(event.seq):\(channel.rawValue)",
                    payload: ["channel": .string(channel.rawValue), "purpose": "marketing", "granted": .bool(granted), "source": "till"],
                    occurredMs: ms, recordedMs: ms))
            }
        }
        if let sale {
            let method: LinkMethod = switch identifiers[0].kind {
            case .loyaltyCard: .loyalty
            case .email: .email
            case .phone: .phone
            case .external: .manual
            }
            let record = try link(sale: sale, to: identity.record, method: method, atMs: ms, store)
            try recordPurchase(record, customer: identity.record, atMs: ms, store)
            try store.removePendingCard(ofSale: sale)
        }
        // Greet with what was known before this sale: "welcome back, last here in March".
        let visits = identity.before?.visits ?? 0
        let returning = visits > 0
        outcomes.append(.recognized(CustomerRecognized(
            sale: sale, customer: identity.customer, returning: returning, visits: visits,
            lastVisit: returning ? identity.before.map { Date(milliseconds: $0.lastSeenMs) } : nil, flags: try flags(identity.customer, atMs: ms, store))))
        return outcomes
    }

    /// A loyalty card scanned during an open sale: links the sale if the card is known,
    /// otherwise remembers it so a `customer.identified` for that sale enrols it.
    private func scanned(_ event: Event, _ store: any CRMTransaction, _ ms: Int64) throws -> [ProcessingOutcome] {
        guard let text = event.data["text"]?.stringValue, let card = try? normalizer.loyaltyCard(text) else { return [] }
        let owner = try store.owner(of: card)
        guard owner != nil || event.data["kind"]?.stringValue == "loyalty" else { return [] }
        // One tilld serves one till, so the open sale is on the scanner's till, unless the POS
        // runs several tills through one tilld: then a scan cannot say which sale it is for.
        let open = try store.openSales(startedSinceMs: ms - openSaleWindowMs)
        guard let sale = open.first else {
            return [.note("loyalty card \(card.normalized) scanned with no open sale; ignored (till-crm attach RECEIPT --customer CARD links it later)")]
        }
        let tills = Set(open.compactMap(\.till))
        if tills.count > 1 {
            return [.note("loyalty card \(card.normalized) scanned while sales are open on tills \(tills.sorted().joined(separator: ", ")); not linked, as the scan does not say which (the POS can send customer.identified with the sale)")]
        }
        guard let holder = try store.holders(of: card).first, let customer = try Cluster.of(holder, in: store) else {
            try store.setPendingCard(card, sale: sale.id, sourceSeq: event.seq)
            return [.note("new loyalty card \(card.normalized) on sale \(sale.id): enrolled when the POS identifies the customer")]
        }
        // The card's own record takes the sale: it stays with the card's owner if a merge is undone.
        try link(sale: sale.id, to: holder, method: .loyaltyScan, atMs: ms, store)
        return [.recognized(CustomerRecognized(
            sale: sale.id, customer: customer.root.id, returning: customer.visits > 0, visits: customer.visits,
            lastVisit: customer.visits > 0 ? Date(milliseconds: customer.lastSeenMs) : nil, flags: try flags(customer.root.id, atMs: ms, store)))]
    }

    /// Flags for the cashier: notes marked for the till, opportunities, and `welcome_back`
    /// for someone back after much longer than their habit (docs/crm.md).
    private func flags(_ customer: String, atMs ms: Int64, _ store: any CRMTransaction) throws -> [String] {
        var notes = 0, opportunities = 0
        var activity: [Int64] = []
        for member in try store.members(of: customer) {
            notes += try store.countEntries(of: member, type: .note, payloadFlag: "for_cashier")
            opportunities += try store.countEntries(of: member, type: .opportunity, payloadFlag: nil)
            activity += try store.activity(of: member)
        }
        // What happened in the last twelve hours is this visit, not the habit it returns to.
        let before = activity.filter { $0 < ms - 12 * 3_600_000 }
        return (notes > 0 ? ["note_for_cashier"] : []) + (opportunities > 0 ? ["open_opportunity"] : [])
            + (moments.isWelcomeBack(activityMs: before, nowMs: ms) ? ["welcome_back"] : [])
    }
}

/// Keyed hashes (HMAC-SHA256) of erased people's identifiers. Keyed with a secret made when
/// the store was created, so the list cannot be reversed by hashing every phone number.
public enum Suppression {
    public static func hash(_ identifier: CustomerIdentifier, key: Data) -> String {
        let code = HMAC<SHA256>.authenticationCode(
            for: Data("\(identifier.kind.rawValue):\(identifier.normalized)".utf8), using: SymmetricKey(data: key))
        return code.map { String(format: "%02x", $0) }.joined()
    }
}
