public import Foundation
public import GRDB
public import TillCore
import Crypto

/// What applying one tilld event produced besides database rows: greetings to publish
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

/// Turns till events into customer memory. Runs inside `CRMDatabase.apply(seq:)`, so an
/// event's rows and the cursor commit together. Tolerant of order: a completed sale with no
/// lines still records its total; an identification after completion still links the sale.
public struct TillEventProcessor: Sendable {
    public var normalizer: IdentifierNormalizer
    public var newID: @Sendable () -> String

    public init(normalizer: IdentifierNormalizer, newID: @escaping @Sendable () -> String = { "C" + UUID().uuidString.prefix(8).lowercased() }) {
        self.normalizer = normalizer
        self.newID = newID
    }

    public func process(_ event: Event, in db: Database) throws -> [ProcessingOutcome] {
        let data = event.data
        let ms = Int64(event.time.timeIntervalSince1970 * 1000)
        switch event.topic {
        case "sale.started":
            guard let sale = data["sale"]?.stringValue else { return [.skipped(reason: "sale.started without sale")] }
            try db.execute(
                sql: """
                    INSERT INTO sale(sale_id, till, store, state, started_ms) VALUES (?, ?, ?, 'open', ?)
                    ON CONFLICT(sale_id) DO UPDATE SET till = excluded.till, store = excluded.store, started_ms = excluded.started_ms
                    """,
                arguments: [sale, data["till"]?.stringValue, data["store"]?.stringValue, ms])
            return []
        case "sale.line":
            guard let sale = data["sale"]?.stringValue else { return [.skipped(reason: "sale.line without sale")] }
            try ensureSale(sale, db, ms)
            let lines = (try String.fetchOne(db, sql: "SELECT lines FROM sale WHERE sale_id = ?", arguments: [sale]))
                .flatMap { try? JSONText.decode($0).arrayValue } ?? []
            try db.execute(sql: "UPDATE sale SET lines = ? WHERE sale_id = ?", arguments: [JSONText.encode(JSONValue.array(lines + [data])), sale])
            return []
        case "sale.completed":
            guard let sale = data["sale"]?.stringValue, let total = data["total"]?.stringValue else {
                return [.skipped(reason: "sale.completed without sale or total")]
            }
            try ensureSale(sale, db, ms)
            let state = try String.fetchOne(db, sql: "SELECT state FROM sale WHERE sale_id = ?", arguments: [sale])
            if state == "voided" { return [.skipped(reason: "sale \(sale) was voided; a completion after a void is ignored")] }
            try db.execute(
                sql: "UPDATE sale SET state = 'completed', total = ?, currency = ?, receipt = ?, completed_ms = ? WHERE sale_id = ?",
                arguments: [total, data["currency"]?.stringValue, data["receipt"]?.stringValue, ms, sale])
            if let customer = try linkedCustomer(sale, db) {
                try recordPurchase(sale: sale, customer: customer, seq: event.seq, ms: ms, db)
            }
            return []
        case "sale.voided":
            guard let sale = data["sale"]?.stringValue else { return [.skipped(reason: "sale.voided without sale")] }
            try ensureSale(sale, db, ms)
            try db.execute(sql: "UPDATE sale SET state = 'voided' WHERE sale_id = ? AND state = 'open'", arguments: [sale])
            try db.execute(sql: "DELETE FROM pending_card WHERE sale_id = ?", arguments: [sale])
            return []
        case "refund.completed":
            return try refund(event, db, ms)
        case "service.completed":
            return try service(event, db, ms)
        case "customer.identified":
            return try identified(event, db, ms)
        case "scanner.data":
            return try scanned(event, db)
        default:
            return []
        }
    }

    // MARK: sales

    private func ensureSale(_ sale: String, _ db: Database, _ ms: Int64) throws {
        try db.execute(sql: "INSERT INTO sale(sale_id, state, started_ms) VALUES (?, 'open', ?) ON CONFLICT(sale_id) DO NOTHING", arguments: [sale, ms])
    }

    private func linkedCustomer(_ sale: String, _ db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT customer_id FROM sale_link WHERE sale_id = ? AND unlinked_ms IS NULL", arguments: [sale])
    }

    /// The purchase entry for a completed, linked sale; idempotent per sale.
    func recordPurchase(sale: String, customer: String, seq: Int64, ms: Int64, _ db: Database) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM sale WHERE sale_id = ? AND state = 'completed'", arguments: [sale]) else { return }
        let payload: JSONValue = [
            "sale": .string(sale), "receipt": (row["receipt"] as String?).map(JSONValue.string) ?? .null,
            "total": (row["total"] as String?).map(JSONValue.string) ?? .null,
            "currency": (row["currency"] as String?).map(JSONValue.string) ?? .null,
            "lines": (try? JSONText.decode(row["lines"] as String)) ?? [],
        ]
        let occurred: Int64 = row["completed_ms"] ?? ms
        if try Timeline.append(db, customer: customer, type: .purchase, source: "purchase:\(sale)", payload: payload, occurredMs: occurred, recordedMs: ms) {
            try db.execute(
                sql: "UPDATE customer SET visits = visits + 1, last_seen_ms = MAX(last_seen_ms, ?) WHERE id = ?",
                arguments: [occurred, customer])
        }
    }

    private func refund(_ event: Event, _ db: Database, _ ms: Int64) throws -> [ProcessingOutcome] {
        let data = event.data
        guard let refund = data["refund"]?.stringValue, let reason = data["reason"]?.stringValue else {
            return [.skipped(reason: "refund.completed without refund or reason")]
        }
        var sale = data["sale"]?.stringValue
        if sale == nil, let receipt = data["receipt"]?.stringValue {
            sale = try String.fetchOne(db, sql: "SELECT sale_id FROM sale WHERE receipt = ?", arguments: [receipt])
        }
        guard let sale else {
            return [.note("refund \(refund) names no sale this CRM knows (sale or receipt); kept anonymous")]
        }
        guard let customer = try linkedCustomer(sale, db) else {
            return [.note("refund \(refund) is for sale \(sale), which has no customer; kept anonymous")]
        }
        let payload: JSONValue = [
            "refund": .string(refund), "sale": .string(sale), "reason": .string(reason),
            "total": data["total"] ?? .null, "currency": data["currency"] ?? .null, "lines": data["lines"] ?? [],
        ]
        try Timeline.append(db, customer: customer, type: .refund, source: "refund:\(refund)", payload: payload, occurredMs: ms, recordedMs: ms)
        return []
    }

    private func service(_ event: Event, _ db: Database, _ ms: Int64) throws -> [ProcessingOutcome] {
        let data = event.data
        guard let service = data["service"]?.stringValue else { return [.skipped(reason: "service.completed without service")] }
        var customer = data["customer"]?.stringValue.flatMap { id in try? String.fetchOne(db, sql: "SELECT id FROM customer WHERE id = ? AND status = 'active'", arguments: [id]) }
        if customer == nil, let sale = data["sale"]?.stringValue { customer = try linkedCustomer(sale, db) }
        guard let customer else { return [.note("service \"\(service)\" has no identified customer; not recorded")] }
        try Timeline.append(db, customer: customer, type: .service, source: "tilld:\(event.seq)", payload: data, occurredMs: ms, recordedMs: ms)
        return []
    }

    // MARK: identification

    private func identified(_ event: Event, _ db: Database, _ ms: Int64) throws -> [ProcessingOutcome] {
        let data = event.data
        // Normalise everything first: one bad identifier rejects the event, so nothing partial is written.
        var identifiers: [CustomerIdentifier] = []
        do {
            if let card = data["loyalty"]?.stringValue { identifiers.append(try normalizer.loyaltyCard(card)) }
            if let email = data["email"]?.stringValue { identifiers.append(try normalizer.email(email)) }
            if let phone = data["phone"]?.stringValue { identifiers.append(try normalizer.phone(phone)) }
        } catch let error as InvalidIdentifier {
            return [.skipped(reason: "customer.identified (seq \(event.seq)) refused: \(error)")]
        }
        let sale = data["sale"]?.stringValue
        if let sale, let pending = try Row.fetchOne(db, sql: "SELECT card, raw FROM pending_card WHERE sale_id = ?", arguments: [sale]),
            !identifiers.contains(where: { $0.kind == .loyaltyCard })
        {
            identifiers.insert(CustomerIdentifier(kind: .loyaltyCard, raw: pending["raw"], normalized: pending["card"]), at: 0)
        }
        for identifier in identifiers where try Suppression.contains(identifier, db) {
            return [.skipped(reason: "customer.identified (seq \(event.seq)) names an erased person's \(identifier.kind.rawValue); not re-created")]
        }
        guard !identifiers.isEmpty else { return [.skipped(reason: "customer.identified without email, phone or loyalty")] }

        // Strongest evidence first: a card, then email, then phone (households share phones).
        var outcomes: [ProcessingOutcome] = []
        var owners: [String] = []
        for identifier in identifiers {
            if let owner = try Customers.owner(of: identifier, db), !owners.contains(owner) { owners.append(owner) }
        }
        let existed = !owners.isEmpty
        let customer: String
        if let first = owners.first {
            customer = first
            if owners.count > 1 {
                outcomes.append(.note("customer.identified (seq \(event.seq)) matches customers \(owners.joined(separator: ", ")); linked to \(first), others left for review"))
            }
        } else {
            customer = newID()
            try db.execute(
                sql: "INSERT INTO customer(id, name, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)",
                arguments: [customer, data["name"]?.stringValue, ms, ms])
        }
        if let name = data["name"]?.stringValue, !name.isEmpty {
            try db.execute(sql: "UPDATE customer SET name = COALESCE(name, ?) WHERE id = ?", arguments: [name, customer])
        }
        for identifier in identifiers where try Customers.owner(of: identifier, db) == nil {
            try db.execute(
                sql: "INSERT INTO identifier(customer_id, kind, raw, normalized, source_seq, added_ms) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [customer, identifier.kind.rawValue, identifier.raw, identifier.normalized, event.seq, ms])
        }
        if let consent = data["consent"]?.objectValue {
            for (key, channel) in [("email_marketing", "email"), ("sms_marketing", "sms")] {
                guard let granted = consent[key]?.boolValue else { continue }
                try db.execute(
                    sql: "INSERT INTO consent(customer_id, channel, purpose, granted, basis, source, sale_id, source_seq, recorded_ms) VALUES (?, ?, 'marketing', ?, 'consent', 'till', ?, ?, ?)",
                    arguments: [customer, channel, granted, sale, event.seq, ms])
                try Timeline.append(
                    db, customer: customer, type: .consent, source: "tilld:\(event.seq):\(channel)",
                    payload: ["channel": .string(channel), "purpose": "marketing", "granted": .bool(granted), "source": "till"],
                    occurredMs: ms, recordedMs: ms)
            }
        }
        let before = try Row.fetchOne(db, sql: "SELECT visits, last_seen_ms FROM customer WHERE id = ?", arguments: [customer])
        let visits: Int = before?["visits"] ?? 0
        let lastSeen: Int64? = before?["last_seen_ms"]
        if let sale {
            let method = identifiers.first.map { $0.kind == .loyaltyCard ? "loyalty" : $0.kind.rawValue } ?? "manual"
            try link(sale: sale, to: customer, method: method, ms: ms, db)
            try recordPurchase(sale: sale, customer: customer, seq: event.seq, ms: ms, db)
            try db.execute(sql: "DELETE FROM pending_card WHERE sale_id = ?", arguments: [sale])
        }
        let returning = existed && visits > 0
        outcomes.append(.recognized(CustomerRecognized(
            sale: sale, customer: customer, returning: returning, visits: visits,
            lastVisit: returning ? lastSeen.map { Date(timeIntervalSince1970: Double($0) / 1000) } : nil,
            flags: try flags(customer, db))))
        return outcomes
    }

    /// A loyalty card scanned during an open sale: links the sale if the card is known,
    /// otherwise remembers it so a `customer.identified` for that sale enrols it.
    private func scanned(_ event: Event, _ db: Database) throws -> [ProcessingOutcome] {
        guard let text = event.data["text"]?.stringValue, let card = try? normalizer.loyaltyCard(text) else { return [] }
        let owner = try Customers.owner(of: card, db)
        guard owner != nil || event.data["kind"]?.stringValue == "loyalty" else { return [] }
        guard let sale = try String.fetchOne(db, sql: "SELECT sale_id FROM sale WHERE state = 'open' ORDER BY started_ms DESC LIMIT 1") else {
            return [.note("loyalty card scanned with no open sale; ignored")]
        }
        guard let owner else {
            try db.execute(
                sql: "INSERT INTO pending_card(sale_id, card, raw, source_seq) VALUES (?, ?, ?, ?) ON CONFLICT(sale_id) DO UPDATE SET card = excluded.card, raw = excluded.raw",
                arguments: [sale, card.normalized, card.raw, event.seq])
            return [.note("new loyalty card \(card.normalized) on sale \(sale): enrolled when the POS identifies the customer")]
        }
        let ms = Int64(event.time.timeIntervalSince1970 * 1000)
        let before = try Row.fetchOne(db, sql: "SELECT visits, last_seen_ms FROM customer WHERE id = ?", arguments: [owner])
        try link(sale: sale, to: owner, method: "loyalty_scan", ms: ms, db)
        let visits: Int = before?["visits"] ?? 0
        return [.recognized(CustomerRecognized(
            sale: sale, customer: owner, returning: visits > 0, visits: visits,
            lastVisit: visits > 0 ? (before?["last_seen_ms"] as Int64?).map { Date(timeIntervalSince1970: Double($0) / 1000) } : nil,
            flags: try flags(owner, db)))]
    }

    private func link(sale: String, to customer: String, method: String, ms: Int64, _ db: Database) throws {
        try ensureSale(sale, db, ms)
        if let current = try linkedCustomer(sale, db) {
            if current == customer { return }
            try db.execute(sql: "UPDATE sale_link SET unlinked_ms = ? WHERE sale_id = ? AND unlinked_ms IS NULL", arguments: [ms, sale])
        }
        try db.execute(
            sql: "INSERT INTO sale_link(sale_id, customer_id, method, linked_ms) VALUES (?, ?, ?, ?)",
            arguments: [sale, customer, method, ms])
    }

    /// Flags for the cashier: notes marked for the till, open opportunities.
    private func flags(_ customer: String, _ db: Database) throws -> [String] {
        let notes = try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM timeline WHERE customer_id = ? AND type = 'note' AND json_extract(payload, '$.for_cashier') = 1",
            arguments: [customer]) ?? 0
        let opportunities = try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM timeline WHERE customer_id = ? AND type = 'opportunity'", arguments: [customer]) ?? 0
        return (notes > 0 ? ["note_for_cashier"] : []) + (opportunities > 0 ? ["open_opportunity"] : [])
    }
}

/// Look-ups shared by the processor and the CLI.
public enum Customers {
    /// The active customer an identifier belongs to (following merges), if any.
    public static func owner(of identifier: CustomerIdentifier, _ db: Database) throws -> String? {
        guard var id = try String.fetchOne(
            db, sql: "SELECT customer_id FROM identifier WHERE kind = ? AND normalized = ? AND active = 1",
            arguments: [identifier.kind.rawValue, identifier.normalized])
        else { return nil }
        // Old ids keep resolving to the survivor of a merge.
        for _ in 0..<16 {
            guard let next = try String.fetchOne(db, sql: "SELECT merged_into FROM customer WHERE id = ? AND status = 'merged'", arguments: [id]) else { break }
            id = next
        }
        return id
    }
}

/// Keyed hashes (HMAC-SHA256) of erased people's identifiers. Keyed with a secret made when
/// the database was created, so the list cannot be reversed by hashing every phone number.
public enum Suppression {
    public static func contains(_ identifier: CustomerIdentifier, _ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM suppression WHERE hash = ?", arguments: [hash(identifier, db)]) ?? false
    }

    public static func hash(_ identifier: CustomerIdentifier, _ db: Database) throws -> String {
        guard let secret = try Data.fetchOne(db, sql: "SELECT value FROM secret WHERE name = 'suppression'") else {
            throw DatabaseError(message: "the suppression secret is missing from the CRM database")
        }
        let code = HMAC<SHA256>.authenticationCode(
            for: Data("\(identifier.kind.rawValue):\(identifier.normalized)".utf8), using: SymmetricKey(data: secret))
        return code.map { String(format: "%02x", $0) }.joined()
    }
}
