public import Foundation
import GRDB
public import TillCore

/// What people do with customer memory outside the till: look someone up, read their
/// timeline, add a note, attach a forgotten receipt, record consent, export or erase.
public struct CustomerDirectory: Sendable {
    public struct NotFound: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let database: CRMDatabase
    public let normalizer: IdentifierNormalizer

    public init(database: CRMDatabase, normalizer: IdentifierNormalizer) {
        self.database = database
        self.normalizer = normalizer
    }

    /// A customer id from an id, email, phone or card number, following merges.
    public func resolve(_ reference: String) async throws -> String {
        let normalizer = self.normalizer
        let found = try await database.writer.read { db -> String? in
            if let id = try String.fetchOne(db, sql: "SELECT id FROM customer WHERE id = ? AND status = 'active'", arguments: [reference]) {
                return id
            }
            var candidates: [CustomerIdentifier] = []
            if reference.contains("@") { candidates += [try? normalizer.email(reference)].compactMap { $0 } }
            if reference.contains(where: \.isNumber) { candidates += [try? normalizer.phone(reference)].compactMap { $0 } }
            candidates += [try? normalizer.loyaltyCard(reference)].compactMap { $0 }
            for candidate in candidates {
                if let owner = try Customers.owner(of: candidate, db) { return owner }
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
        return try await database.writer.read { [prefixes] db in
            var ids: [String] = []
            for prefix in prefixes where !prefix.isEmpty {
                // A range on the unique index: fast at a million customers, unlike LIKE '%...'.
                ids += try String.fetchAll(
                    db, sql: "SELECT customer_id FROM identifier WHERE active = 1 AND normalized >= ? AND normalized < ? LIMIT ?",
                    arguments: [prefix, prefix + "\u{10FFFF}", limit])
            }
            ids += try String.fetchAll(
                db, sql: "SELECT id FROM customer WHERE status = 'active' AND name LIKE ? ESCAPE '\\' LIMIT ?",
                arguments: ["%" + text.replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%", limit])
            var seen = Set<String>()
            return try ids.filter { seen.insert($0).inserted }.prefix(limit).compactMap { id in
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM customer WHERE id = ? AND status = 'active'", arguments: [id]) else { return nil }
                let identifiers = try String.fetchAll(db, sql: "SELECT kind || ' ' || normalized FROM identifier WHERE customer_id = ? AND active = 1", arguments: [id])
                return Match(id: id, name: row["name"], identifiers: identifiers, lastSeen: Date(timeIntervalSince1970: Double(row["last_seen_ms"] as Int64) / 1000))
            }
        }
    }

    /// Everything shown for one customer: the record, identifiers, current consent, the timeline (newest first).
    public func profile(_ id: String, timelineLimit: Int = 500) async throws -> JSONValue {
        try await database.writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM customer WHERE id = ?", arguments: [id]) else {
                throw NotFound(description: "no customer \(id)")
            }
            let identifiers = try Row.fetchAll(db, sql: "SELECT kind, raw, normalized FROM identifier WHERE customer_id = ? AND active = 1 ORDER BY id", arguments: [id])
                .map { JSONValue.object(["kind": .string($0["kind"]), "raw": .string($0["raw"]), "normalized": .string($0["normalized"])]) }
            let timeline = try Row.fetchAll(
                db, sql: "SELECT occurred_ms, type, payload, actor FROM timeline WHERE customer_id = ? ORDER BY occurred_ms DESC, id DESC LIMIT ?",
                arguments: [id, timelineLimit]
            ).map { entry in
                JSONValue.object([
                    "at": .string(Timestamp.format(Date(timeIntervalSince1970: Double(entry["occurred_ms"] as Int64) / 1000))),
                    "type": .string(entry["type"]), "data": (try? JSONText.decode(entry["payload"] as String)) ?? .null,
                    "actor": (entry["actor"] as String?).map(JSONValue.string) ?? .null,
                ])
            }
            return .object([
                "id": .string(id), "name": (row["name"] as String?).map(JSONValue.string) ?? .null, "status": .string(row["status"]),
                "first_seen": .string(Timestamp.format(Date(timeIntervalSince1970: Double(row["first_seen_ms"] as Int64) / 1000))),
                "last_seen": .string(Timestamp.format(Date(timeIntervalSince1970: Double(row["last_seen_ms"] as Int64) / 1000))),
                "visits": .int(row["visits"]), "identifiers": .array(identifiers),
                "consent": try currentConsent(id, db), "timeline": .array(timeline),
            ])
        }
    }

    /// The newest record per channel and purpose.
    func currentConsent(_ id: String, _ db: Database) throws -> JSONValue {
        let rows = try Row.fetchAll(db, sql: """
            SELECT channel, purpose, granted, basis, source, recorded_ms FROM consent c
            WHERE customer_id = ? AND id = (SELECT MAX(id) FROM consent WHERE customer_id = c.customer_id AND channel = c.channel AND purpose = c.purpose)
            ORDER BY channel, purpose
            """, arguments: [id])
        return .array(rows.map { row in
            .object([
                "channel": .string(row["channel"]), "purpose": .string(row["purpose"]), "granted": .bool(row["granted"]),
                "basis": .string(row["basis"]), "source": .string(row["source"]),
                "at": .string(Timestamp.format(Date(timeIntervalSince1970: Double(row["recorded_ms"] as Int64) / 1000))),
            ])
        })
    }

    public enum EntryType: String, Sendable, CaseIterable { case note, conversation, opportunity }

    /// Adds a note, conversation or opportunity to the timeline.
    public func add(_ type: EntryType, to id: String, data: JSONValue, actor: String?) async throws {
        try await database.writer.write { db in
            let ms = Int64(Date().timeIntervalSince1970 * 1000)
            try Timeline.append(
                db, customer: id, type: Timeline.EntryType(rawValue: type.rawValue)!, source: "cli:\(UUID().uuidString)",
                payload: data, occurredMs: ms, recordedMs: ms, actor: actor)
        }
    }

    /// Attaches a completed sale to a customer after the fact (the customer gave their card
    /// or email later), within `maxDays` of the sale. Idempotent.
    public func attach(receipt: String, to id: String, maxDays: Int, now: Date = Date()) async throws {
        try await database.writer.write { db in
            guard let sale = try Row.fetchOne(db, sql: "SELECT sale_id, completed_ms, state FROM sale WHERE receipt = ? ORDER BY completed_ms DESC LIMIT 1", arguments: [receipt]) else {
                throw NotFound(description: "no sale with receipt \(receipt) has reached till-crm")
            }
            guard sale["state"] as String == "completed", let completed = sale["completed_ms"] as Int64? else {
                throw NotFound(description: "the sale with receipt \(receipt) is not completed")
            }
            let ms = Int64(now.timeIntervalSince1970 * 1000)
            guard ms - completed <= Int64(maxDays) * 86_400_000 else {
                throw NotFound(description: "receipt \(receipt) is older than \(maxDays) days; late attachment is refused (--max-days)")
            }
            let saleID: String = sale["sale_id"]
            if let current = try String.fetchOne(db, sql: "SELECT customer_id FROM sale_link WHERE sale_id = ? AND unlinked_ms IS NULL", arguments: [saleID]) {
                if current == id { return }
                try db.execute(sql: "UPDATE sale_link SET unlinked_ms = ? WHERE sale_id = ? AND unlinked_ms IS NULL", arguments: [ms, saleID])
            }
            try db.execute(sql: "INSERT INTO sale_link(sale_id, customer_id, method, linked_ms) VALUES (?, ?, 'late_attach', ?)", arguments: [saleID, id, ms])
            try TillEventProcessor(normalizer: normalizer).recordPurchase(sale: saleID, customer: id, seq: 0, ms: ms, db)
        }
    }

    /// Records consent given or withdrawn outside the till (append-only).
    public func setConsent(_ id: String, channel: String, purpose: String, granted: Bool, basis: String, source: String) async throws {
        try await database.writer.write { db in
            let ms = Int64(Date().timeIntervalSince1970 * 1000)
            try db.execute(
                sql: "INSERT INTO consent(customer_id, channel, purpose, granted, basis, source, recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [id, channel, purpose, granted, basis, source, ms])
            try Timeline.append(
                db, customer: id, type: .consent, source: "cli:\(UUID().uuidString)",
                payload: ["channel": .string(channel), "purpose": .string(purpose), "granted": .bool(granted), "basis": .string(basis)],
                occurredMs: ms, recordedMs: ms, actor: source)
        }
    }

    public func consent(_ id: String) async throws -> JSONValue {
        try await database.writer.read { db in try currentConsent(id, db) }
    }

    /// Everything held about a person (subject access request), as one JSON object.
    public func export(_ id: String) async throws -> JSONValue {
        var profile = try await profile(id, timelineLimit: Int.max).objectValue ?? [:]
        let extra = try await database.writer.read { db -> JSONValue in
            let consent = try Row.fetchAll(db, sql: "SELECT * FROM consent WHERE customer_id = ? ORDER BY id", arguments: [id]).map { row in
                JSONValue.object(Dictionary(uniqueKeysWithValues: row.columnNames.map { name in (name, Self.json(row[name] as DatabaseValue)) }))
            }
            let sales = try Row.fetchAll(db, sql: """
                SELECT s.sale_id, s.receipt, s.total, s.currency, s.completed_ms, l.method, l.linked_ms, l.unlinked_ms
                FROM sale_link l JOIN sale s ON s.sale_id = l.sale_id WHERE l.customer_id = ? ORDER BY l.linked_ms
                """, arguments: [id]).map { row in
                JSONValue.object(Dictionary(uniqueKeysWithValues: row.columnNames.map { name in (name, Self.json(row[name] as DatabaseValue)) }))
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
        try await database.writer.write { db in
            guard try String.fetchOne(db, sql: "SELECT status FROM customer WHERE id = ?", arguments: [id]) != nil else {
                throw NotFound(description: "no customer \(id)")
            }
            let ms = Int64(Date().timeIntervalSince1970 * 1000)
            let identifiers = try Row.fetchAll(db, sql: "SELECT kind, raw, normalized FROM identifier WHERE customer_id = ?", arguments: [id])
            for row in identifiers {
                let identifier = CustomerIdentifier(kind: CustomerIdentifier.Kind(rawValue: row["kind"]) ?? .external, raw: row["raw"], normalized: row["normalized"])
                try db.execute(
                    sql: "INSERT INTO suppression(hash, kind, reason, created_ms) VALUES (?, ?, 'erased', ?) ON CONFLICT(hash) DO NOTHING",
                    arguments: [try Suppression.hash(identifier, db), identifier.kind.rawValue, ms])
            }
            for table in ["identifier", "consent", "timeline", "sale_link"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE customer_id = ?", arguments: [id])
            }
            try db.execute(sql: "UPDATE customer SET name = NULL, status = 'erased', visits = 0 WHERE id = ?", arguments: [id])
            return identifiers.count
        }
    }

    static func json(_ value: DatabaseValue) -> JSONValue {
        switch value.storage {
        case .null: .null
        case .int64(let int): .int(int)
        case .double(let double): .double(double)
        case .string(let text): .string(text)
        case .blob(let data): .string(data.base64EncodedString())
        }
    }
}
