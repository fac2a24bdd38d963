import Foundation
import GRDB
import TillCore

/// `CRMTransaction` over one GRDB database access. Statements are cached: the same dozen run
/// for every event, and parsing them each time was a measurable share of ingest.
struct SQLiteTransaction: CRMTransaction {
    let db: Database
    /// Hears every change a write makes, for the outbox (nil when reading, and in migrations).
    var outbox: OutboxRecorder? = nil

    func run(_ sql: String, _ arguments: StatementArguments = []) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func row(_ sql: String, _ arguments: StatementArguments = []) throws -> Row? {
        try Row.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    func rows(_ sql: String, _ arguments: StatementArguments = []) throws -> [Row] {
        try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
    }

    func string(_ sql: String, _ arguments: StatementArguments = []) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    // MARK: cursor

    func cursors() throws -> [String: Int64] {
        var cursors: [String: Int64] = [:]
        for row in try rows("SELECT name, seq FROM cursor") { cursors[row[0]] = row[1] }
        return cursors
    }

    func cursor(_ name: String) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM cursor WHERE name = ?"), arguments: [name]) ?? 0
    }

    func setCursor(_ name: String, to seq: Int64) throws {
        try run("INSERT INTO cursor(name, seq) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET seq = excluded.seq", [name, seq])
    }

    // MARK: sales

    private static func sale(_ row: Row) throws -> SaleRecord {
        SaleRecord(
            id: row["sale_id"], till: row["till"], store: row["store"], staff: row["staff"], receipt: row["receipt"],
            state: SaleState(rawValue: row["state"]) ?? .open, total: row["total"], currency: row["currency"],
            lines: try JSONText.decode(row["lines"] as String).arrayValue ?? [],
            tenders: try JSONText.decode(row["tenders"] as String).arrayValue ?? [],
            startedMs: row["started_ms"], completedMs: row["completed_ms"])
    }

    func sale(_ id: String) throws -> SaleRecord? {
        try row("SELECT * FROM sale WHERE sale_id = ?", [id]).map(Self.sale)
    }

    func latestSale(receipt: String) throws -> SaleRecord? {
        try row("SELECT * FROM sale WHERE receipt = ? ORDER BY completed_ms DESC LIMIT 1", [receipt]).map(Self.sale)
    }

    func openSales(startedSinceMs: Int64) throws -> [SaleRecord] {
        try rows("SELECT * FROM sale WHERE state = 'open' AND started_ms >= ? ORDER BY started_ms DESC LIMIT 16", [startedSinceMs]).map(Self.sale)
    }

    func save(_ sale: SaleRecord) throws {
        try run(
            """
            INSERT INTO sale(sale_id, till, store, staff, receipt, state, total, currency, lines, tenders, started_ms, completed_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(sale_id) DO UPDATE SET till = excluded.till, store = excluded.store, staff = excluded.staff, receipt = excluded.receipt,
                state = excluded.state, total = excluded.total, currency = excluded.currency, lines = excluded.lines,
                tenders = excluded.tenders, started_ms = excluded.started_ms, completed_ms = excluded.completed_ms
            """,
            [sale.id, sale.till, sale.store, sale.staff, sale.receipt, sale.state.rawValue, sale.total, sale.currency,
             JSONText.encode(JSONValue.array(sale.lines)), JSONText.encode(JSONValue.array(sale.tenders)), sale.startedMs, sale.completedMs])
    }

    // MARK: links

    func linkedCustomer(ofSale sale: String) throws -> String? {
        try string("SELECT customer_id FROM sale_link WHERE sale_id = ? AND unlinked_ms IS NULL", [sale])
    }

    func link(sale: String, to customer: String, method: LinkMethod, atMs ms: Int64) throws {
        try run("UPDATE sale_link SET unlinked_ms = ? WHERE sale_id = ? AND unlinked_ms IS NULL", [ms, sale])
        try run("INSERT INTO sale_link(sale_id, customer_id, method, linked_ms) VALUES (?, ?, ?, ?)", [sale, customer, method.rawValue, ms])
    }

    func links(ofCustomer customer: String) throws -> [SaleLink] {
        try rows(
            """
            SELECT s.*, l.method, l.linked_ms, l.unlinked_ms FROM sale_link l JOIN sale s ON s.sale_id = l.sale_id
            WHERE l.customer_id = ? ORDER BY l.linked_ms, l.rowid
            """, [customer]
        ).map { row in
            SaleLink(sale: try Self.sale(row), method: LinkMethod(rawValue: row["method"]) ?? .manual, linkedMs: row["linked_ms"], unlinkedMs: row["unlinked_ms"])
        }
    }

    // MARK: pending cards

    func pendingCard(ofSale sale: String) throws -> CustomerIdentifier? {
        try row("SELECT card, raw FROM pending_card WHERE sale_id = ?", [sale]).map { CustomerIdentifier(kind: .loyaltyCard, raw: $0["raw"], normalized: $0["card"]) }
    }

    func setPendingCard(_ card: CustomerIdentifier, sale: String, sourceSeq: Int64) throws {
        try run(
            "INSERT INTO pending_card(sale_id, card, raw, source_seq) VALUES (?, ?, ?, ?) ON CONFLICT(sale_id) DO UPDATE SET card = excluded.card, raw = excluded.raw, source_seq = excluded.source_seq",
            [sale, card.normalized, card.raw, sourceSeq])
    }

    func removePendingCard(ofSale sale: String) throws {
        try run("DELETE FROM pending_card WHERE sale_id = ?", [sale])
    }

    // MARK: customers and identifiers

    /// The columns `customer(_: Row)` reads, by position: decoding by name costs a
    /// case-insensitive search per column, and customers are read for every candidate.
    private static let customerColumns = "id, name, given_name, family_name, postcode, status, merged_into, first_seen_ms, last_seen_ms, visits"

    private static func customer(_ row: Row) -> CustomerRecord {
        CustomerRecord(
            id: row[0], name: row[1], givenName: row[2], familyName: row[3], postcode: row[4],
            status: CustomerStatus(rawValue: row[5]) ?? .active, mergedInto: row[6],
            firstSeenMs: row[7], lastSeenMs: row[8], visits: row[9])
    }

    func customer(_ id: String) throws -> CustomerRecord? {
        try row("SELECT \(Self.customerColumns) FROM customer WHERE id = ?", [id]).map(Self.customer)
    }

    /// Inserted, or replaced in place: one statement, the same for `save` and `insert`.
    private static let customerUpsert = """
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, given_name = excluded.given_name, family_name = excluded.family_name,
            postcode = excluded.postcode, status = excluded.status, merged_into = excluded.merged_into,
            first_seen_ms = excluded.first_seen_ms, last_seen_ms = excluded.last_seen_ms, visits = excluded.visits
        """

    /// A customer's values in the order of `customerColumns`.
    private static func values(_ customer: CustomerRecord) -> [DatabaseValue] {
        [customer.id.databaseValue, customer.name.databaseValue, customer.givenName.databaseValue, customer.familyName.databaseValue,
         customer.postcode.databaseValue, customer.status.rawValue.databaseValue, customer.mergedInto.databaseValue,
         customer.firstSeenMs.databaseValue, customer.lastSeenMs.databaseValue, customer.visits.databaseValue]
    }

    func save(_ customer: CustomerRecord) throws {
        try run(
            "INSERT INTO customer(\(Self.customerColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + Self.customerUpsert,
            StatementArguments(Self.values(customer)))
        outbox?.touch(customer.id)
    }

    func owner(of identifier: CustomerIdentifier) throws -> String? {
        guard let holder = try holders(of: identifier).first else { return nil }
        return try root(of: holder)
    }

    func holders(of identifier: CustomerIdentifier) throws -> [String] {
        try String.fetchAll(
            db.cachedStatement(sql: "SELECT customer_id FROM identifier WHERE normalized = ? AND kind = ? AND active = 1 ORDER BY id"),
            arguments: [identifier.normalized, identifier.kind.rawValue])
    }

    func add(_ identifier: CustomerIdentifier, to customer: String, sourceSeq: Int64?, atMs ms: Int64) throws {
        let held = try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT 1 FROM identifier WHERE customer_id = ? AND kind = ? AND normalized = ? AND active = 1"),
            arguments: [customer, identifier.kind.rawValue, identifier.normalized]) ?? false
        if held { return }
        // A second holder of a loyalty card fails here, on identifier_unique_card.
        try run(
            "INSERT INTO identifier(customer_id, kind, raw, normalized, source_seq, added_ms) VALUES (?, ?, ?, ?, ?, ?)",
            [customer, identifier.kind.rawValue, identifier.raw, identifier.normalized, sourceSeq, ms])
        outbox?.touch(customer)
    }

    func identifiers(of customer: String) throws -> [CustomerIdentifier] {
        try rows("SELECT kind, raw, normalized FROM identifier WHERE customer_id = ? AND active = 1 ORDER BY id", [customer]).map { row in
            CustomerIdentifier(kind: CustomerIdentifier.Kind(rawValue: row["kind"]) ?? .external, raw: row["raw"], normalized: row["normalized"])
        }
    }

    func findCustomers(identifierPrefixes: [String], identifierParts: [String], nameContaining name: String, limit: Int) throws -> [CustomerRecord] {
        var ids: [String] = []
        for prefix in identifierPrefixes where !prefix.isEmpty {
            // A range on an index: fast at a million customers, unlike LIKE '%...'.
            ids += try String.fetchAll(
                db.cachedStatement(sql: "SELECT customer_id FROM identifier WHERE active = 1 AND normalized >= ? AND normalized < ? LIMIT ?"),
                arguments: [prefix, prefix + "\u{10FFFF}", limit])
        }
        for part in identifierParts where part.utf8.count >= 3 {
            // Any part ("example.com", "7911"): a scan, for a person at a terminal, bounded by the limit.
            ids += try String.fetchAll(
                db.cachedStatement(sql: "SELECT customer_id FROM identifier WHERE active = 1 AND normalized LIKE ? ESCAPE '\\' LIMIT ?"),
                arguments: [StoreSQL.likePattern(part), limit])
        }
        if !name.isEmpty {
            let pattern = StoreSQL.likePattern(name)
            ids += try String.fetchAll(
                db.cachedStatement(sql: """
                    SELECT id FROM customer WHERE status IN ('active', 'merged')
                    AND (name LIKE ?1 ESCAPE '\\' OR given_name LIKE ?1 ESCAPE '\\' OR family_name LIKE ?1 ESCAPE '\\'
                         OR (given_name || ' ' || family_name) LIKE ?1 ESCAPE '\\') LIMIT ?2
                    """), arguments: [pattern, limit])
        }
        var seen = Set<String>()
        return try ids.map { try root(of: $0) }.filter { seen.insert($0).inserted }.compactMap { try customer($0) }
            .filter { $0.status == .active }.prefix(limit).map { $0 }
    }

    func names(of customer: String) throws -> [PersonName] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT given, family FROM customer_name WHERE customer_id = ? ORDER BY added_ms, given, family"),
            arguments: [customer]
        ).map { row in
            let given: String = row["given"], family: String = row["family"]
            return PersonName(given: given.isEmpty ? nil : given, family: family.isEmpty ? nil : family)
        }
    }

    func addName(_ name: PersonName, to customer: String, atMs ms: Int64) throws {
        guard !name.isEmpty else { return }
        try db.cachedStatement(sql: "INSERT INTO customer_name(customer_id, given, family, added_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .execute(arguments: [customer, name.given ?? "", name.family ?? "", ms])
        if db.changesCount > 0 { outbox?.touch(customer) }
    }

    // MARK: merges

    func root(of customer: String) throws -> String {
        var id = customer
        // The bound stops a corrupt cycle.
        for _ in 0..<64 {
            guard let next = try string("SELECT merged_into FROM customer WHERE id = ? AND status = 'merged'", [id]) else { break }
            id = next
        }
        return id
    }

    func members(of root: String) throws -> [String] {
        // Breadth first over the merged_into index: most customers absorbed no one, and one
        // indexed lookup says so (a recursive query cost more than everything else in an identification).
        var members = [root]
        var index = 0
        while index < members.count, members.count <= 64 {
            members += try String.fetchAll(
                db.cachedStatement(sql: "SELECT id FROM customer WHERE merged_into = ? AND status = 'merged' ORDER BY id"),
                arguments: [members[index]])
            index += 1
        }
        return members
    }

    func addMatchKeys(_ keys: [String], to customer: String) throws {
        for key in keys {
            try run("INSERT INTO match_key(key, customer_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [key, customer])
        }
    }

    func records(withMatchKeys keys: [String], limitPerKey: Int) throws -> [String: [String]] {
        var found: [String: [String]] = [:]
        for key in keys {
            found[key] = try String.fetchAll(
                db.cachedStatement(sql: "SELECT customer_id FROM match_key WHERE key = ? LIMIT ?"), arguments: [key, limitPerKey + 1])
        }
        return found
    }

    private static func merge(_ row: Row) throws -> MergeRecord {
        MergeRecord(
            id: row["id"], survivor: row["survivor"], absorbed: row["absorbed"], automatic: row["automatic"], score: row["score"],
            evidence: try JSONText.decode(row["evidence"] as String).arrayValue?.compactMap(\.stringValue) ?? [],
            actor: row["actor"], reason: row["reason"], mergedMs: row["merged_ms"], undoneMs: row["undone_ms"], undoneBy: row["undone_by"])
    }

    func append(_ merge: MergeRecord) throws -> Int64 {
        try run(
            """
            INSERT INTO merge_log(survivor, absorbed, automatic, score, evidence, actor, reason, merged_ms, undone_ms, undone_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [merge.survivor, merge.absorbed, merge.automatic, merge.score, JSONText.encode(JSONValue.array(merge.evidence.map(JSONValue.string))),
             merge.actor, merge.reason, merge.mergedMs, merge.undoneMs, merge.undoneBy])
        let id = db.lastInsertedRowID
        if let outbox {
            var logged = merge
            logged.id = id
            outbox.touch(merge.absorbed)
            outbox.touch(merge.survivor)
            outbox.record(.customerMerged, customer: merge.survivor, data: CustomerDirectory.json(logged))
        }
        return id
    }

    func merges(involving customer: String) throws -> [MergeRecord] {
        try rows("SELECT * FROM merge_log WHERE survivor = ?1 OR absorbed = ?1 ORDER BY id", [customer]).map(Self.merge)
    }

    func markUndone(merge id: Int64, atMs ms: Int64, actor: String) throws {
        try run("UPDATE merge_log SET undone_ms = ?, undone_by = ? WHERE id = ?", [ms, actor, id])
        if let outbox, let merge = try row("SELECT * FROM merge_log WHERE id = ?", [id]).map(Self.merge) {
            outbox.touch(merge.survivor)
            outbox.touch(merge.absorbed)
            outbox.record(.customerUnmerged, customer: merge.survivor, data: CustomerDirectory.json(merge))
        }
    }

    // MARK: review queue

    private static func review(_ row: Row) throws -> ReviewRecord {
        ReviewRecord(
            row["a"], row["b"], score: row["score"],
            evidence: try JSONText.decode(row["evidence"] as String).arrayValue?.compactMap(\.stringValue) ?? [],
            status: ReviewRecord.Status(rawValue: row["status"]) ?? .open, queuedMs: row["queued_ms"], decidedMs: row["decided_ms"],
            decidedBy: row["decided_by"])
    }

    func queue(_ review: ReviewRecord) throws {
        try run(
            """
            INSERT INTO duplicate_review(a, b, score, evidence, status, queued_ms) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(a, b) DO NOTHING
            """,
            [review.a, review.b, review.score, JSONText.encode(JSONValue.array(review.evidence.map(JSONValue.string))),
             review.status.rawValue, review.queuedMs])
    }

    func reviews(status: ReviewRecord.Status?) throws -> [ReviewRecord] {
        if let status {
            return try rows("SELECT * FROM duplicate_review WHERE status = ? ORDER BY score DESC, a, b", [status.rawValue]).map(Self.review)
        }
        return try rows("SELECT * FROM duplicate_review ORDER BY score DESC, a, b").map(Self.review)
    }

    func review(_ x: String, _ y: String) throws -> ReviewRecord? {
        let (a, b) = x < y ? (x, y) : (y, x)
        return try row("SELECT * FROM duplicate_review WHERE a = ? AND b = ?", [a, b]).map(Self.review)
    }

    func setReviewStatus(_ x: String, _ y: String, to status: ReviewRecord.Status, actor: String, atMs ms: Int64) throws {
        let (a, b) = x < y ? (x, y) : (y, x)
        try run("UPDATE duplicate_review SET status = ?, decided_ms = ?, decided_by = ? WHERE a = ? AND b = ?", [status.rawValue, ms, actor, a, b])
    }

    // MARK: imports

    func importedCustomer(source: String, record: String) throws -> String? {
        try string("SELECT customer_id FROM import_record WHERE source = ? AND record = ?", [source, record])
    }

    /// Multi-row INSERTs, a few hundred rows to a statement: a statement's fixed cost
    /// (binding, stepping, resetting through GRDB) was most of an import's writing.
    /// Inserts many rows in few statements.
    func chunked<Row>(_ rows: [Row], columns: String, into table: String, conflict: String = "", _ values: (Row) -> [DatabaseValue]) throws {
        guard !rows.isEmpty else { return }
        let width = columns.split(separator: ",").count
        let placeholders = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        // Statements of a few sizes only (the largest under SQLite's limit of bound
        // parameters, then 64, 16, 4, 1 rows), so a handful are prepared and cached, not one
        // for every count of rows a flush happens to have.
        let sizes = [max(1, 900 / width), 64, 16, 4, 1].filter { $0 <= max(1, 900 / width) }
        var start = 0
        for size in sizes {
            guard rows.count - start >= size else { continue }
            let statement = try db.cachedStatement(
                sql: "INSERT INTO \(table)(\(columns)) VALUES " + Array(repeating: placeholders, count: size).joined(separator: ", ") + conflict)
            while rows.count - start >= size {
                var arguments: [DatabaseValue] = []
                arguments.reserveCapacity(size * width)
                for row in rows[start..<(start + size)] { arguments += values(row) }
                try statement.execute(arguments: StatementArguments(arguments))
                start += size
            }
        }
    }

    func insert(_ rows: BulkRows) throws {
        if let outbox {
            for customer in rows.customers { outbox.touch(customer.id) }
            for row in rows.identifiers { outbox.touch(row.customer) }
            for row in rows.names { outbox.touch(row.customer) }
        }
        try chunked(rows.customers, columns: Self.customerColumns, into: "customer", conflict: Self.customerUpsert, Self.values)
        try chunked(rows.identifiers, columns: "customer_id, kind, raw, normalized, source_seq, added_ms", into: "identifier") { row in
            [row.customer.databaseValue, row.identifier.kind.rawValue.databaseValue, row.identifier.raw.databaseValue,
             row.identifier.normalized.databaseValue, row.sourceSeq.databaseValue, row.atMs.databaseValue]
        }
        try chunked(rows.names, columns: "customer_id, given, family, added_ms", into: "customer_name", conflict: " ON CONFLICT DO NOTHING") { row in
            [row.customer.databaseValue, (row.name.given ?? "").databaseValue, (row.name.family ?? "").databaseValue, row.atMs.databaseValue]
        }
        try chunked(rows.matchKeys, columns: "key, customer_id", into: "match_key", conflict: " ON CONFLICT DO NOTHING") { row in
            [row.key.databaseValue, row.customer.databaseValue]
        }
        try chunked(rows.imports, columns: "source, record, customer_id, imported_ms", into: "import_record") { row in
            [row.source.databaseValue, row.record.databaseValue, row.customer.databaseValue, row.atMs.databaseValue]
        }
    }

    func importedRecords(source: String) throws -> [String: String] {
        var records: [String: String] = [:]
        for row in try rows("SELECT record, customer_id FROM import_record WHERE source = ?", [source]) {
            records[row[0]] = row[1]
        }
        return records
    }

    func recordImport(source: String, record: String, customer: String, atMs ms: Int64) throws {
        try run("INSERT INTO import_record(source, record, customer_id, imported_ms) VALUES (?, ?, ?, ?)", [source, record, customer, ms])
    }

    // MARK: consent

    func append(_ consent: ConsentRecord) throws {
        try run(
            "INSERT INTO consent(customer_id, channel, purpose, granted, basis, source, sale_id, source_seq, recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [consent.customer, consent.channel.rawValue, consent.purpose.rawValue, consent.granted, consent.basis.rawValue,
             consent.source, consent.sale, consent.sourceSeq, consent.recordedMs])
        outbox?.touch(consent.customer)
    }

    func consentHistory(of customer: String) throws -> [ConsentRecord] {
        try rows("SELECT * FROM consent WHERE customer_id = ? ORDER BY id", [customer]).compactMap { row in
            guard let channel = ConsentRecord.Channel(rawValue: row["channel"]), let purpose = ConsentRecord.Purpose(rawValue: row["purpose"]),
                let basis = ConsentRecord.Basis(rawValue: row["basis"])
            else { return nil }
            return ConsentRecord(
                customer: customer, channel: channel, purpose: purpose, granted: row["granted"], basis: basis, source: row["source"],
                sale: row["sale_id"], sourceSeq: row["source_seq"], recordedMs: row["recorded_ms"])
        }
    }

    // MARK: timeline

    @discardableResult
    func append(_ entry: TimelineEntry) throws -> Bool {
        try run(
            """
            INSERT INTO timeline(customer_id, occurred_ms, recorded_ms, type, source, payload, actor)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(source) DO NOTHING
            """,
            [entry.customer, entry.occurredMs, entry.recordedMs, entry.type.rawValue, entry.source, JSONText.encode(entry.payload), entry.actor])
        guard db.changesCount > 0 else { return false }
        outbox?.record(.timelineAdded, customer: entry.customer, data: OutboxPayload.timeline(entry))
        return true
    }

    func timeline(of customer: String, limit: Int) throws -> [TimelineEntry] {
        let statement = try db.cachedStatement(
            sql: "SELECT type, source, payload, occurred_ms, recorded_ms, actor FROM timeline WHERE customer_id = ? ORDER BY occurred_ms DESC, id DESC LIMIT ?")
        var entries: [TimelineEntry] = []
        let cursor = try Row.fetchCursor(statement, arguments: [customer, limit])
        while let row = try cursor.next() {
            entries.append(TimelineEntry(
                customer: customer, type: TimelineEntry.Kind(rawValue: row[0]) ?? .note, source: row[1],
                payload: (try? JSONText.decode(row[2] as String)) ?? .null,
                occurredMs: row[3], recordedMs: row[4], actor: row[5]))
        }
        return entries
    }

    func countEntries(of customer: String, type: TimelineEntry.Kind, payloadFlag: String?) throws -> Int {
        if let payloadFlag {
            return try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM timeline WHERE customer_id = ? AND type = ? AND json_extract(payload, '$.' || ?) = 1"),
                arguments: [customer, type.rawValue, payloadFlag]) ?? 0
        }
        return try Int.fetchOne(
            db.cachedStatement(sql: "SELECT COUNT(*) FROM timeline WHERE customer_id = ? AND type = ?"), arguments: [customer, type.rawValue]) ?? 0
    }

    func moveEntry(source: String, to customer: String) throws -> String? {
        guard let from = try string("SELECT customer_id FROM timeline WHERE source = ?", [source]), from != customer else { return nil }
        try run("UPDATE timeline SET customer_id = ? WHERE source = ?", [customer, source])
        outbox?.record(.timelineMoved, customer: customer, data: ["source": .string(source), "from": .string(from), "to": .string(customer)])
        return from
    }

    // MARK: erasure

    func suppressionKey() throws -> Data {
        guard let secret = try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM secret WHERE name = 'suppression'")) else {
            throw DatabaseError(message: "the suppression secret is missing from the CRM database")
        }
        return secret
    }

    func isSuppressed(hash: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM suppression WHERE hash = ?"), arguments: [hash]) ?? false
    }

    func suppress(hash: String, kind: CustomerIdentifier.Kind, reason: String, atMs ms: Int64) throws {
        try run("INSERT INTO suppression(hash, kind, reason, created_ms) VALUES (?, ?, ?, ?) ON CONFLICT(hash) DO NOTHING", [hash, kind.rawValue, reason, ms])
    }

    // MARK: moments

    private static let momentColumns = "id, customer_id, kind, due_ms, reason, channels, status, snoozed_until_ms, created_ms, published_seq, publish_after_seq"

    private static func moment(_ row: Row) -> Moment {
        let channels = (row[5] as String).split(separator: ",").compactMap { ConsentRecord.Channel(rawValue: String($0)) }
        return Moment(
            id: row[0], customer: row[1], kind: Moment.Kind(rawValue: row[2]) ?? .careFollowUp, dueMs: row[3], reason: row[4],
            channels: channels, status: Moment.Status(rawValue: row[6]) ?? .open, createdMs: row[8], snoozedUntilMs: row[7], publishedSeq: row[9],
            publishAfterSeq: row[10])
    }

    @discardableResult
    func add(_ moment: Moment) throws -> Bool {
        try run(
            """
            INSERT INTO moment(id, customer_id, kind, due_ms, reason, channels, status, snoozed_until_ms, created_ms, published_seq)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING
            """,
            [moment.id, moment.customer, moment.kind.rawValue, moment.dueMs, moment.reason, moment.channels.map(\.rawValue).joined(separator: ","),
             moment.status.rawValue, moment.snoozedUntilMs, moment.createdMs, moment.publishedSeq])
        guard db.changesCount > 0 else { return false }
        outbox?.record(.momentRaised, customer: moment.customer, data: OutboxPayload.moment(moment))
        return true
    }

    func moment(_ id: String) throws -> Moment? {
        try row("SELECT \(Self.momentColumns) FROM moment WHERE id = ?", [id]).map(Self.moment)
    }

    func moments(statuses: [Moment.Status], customers: [String]?, dueBeforeMs: Int64?, limit: Int) throws -> [Moment] {
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if !statuses.isEmpty {
            conditions.append("status IN (" + statuses.map { _ in "?" }.joined(separator: ", ") + ")")
            arguments += statuses.map(\.rawValue)
        }
        if let customers {
            guard !customers.isEmpty else { return [] }
            conditions.append("customer_id IN (" + customers.map { _ in "?" }.joined(separator: ", ") + ")")
            arguments += customers
        }
        if let dueBeforeMs {
            // A snoozed moment is due again when its snooze ends.
            conditions.append("(CASE WHEN status = 'snoozed' THEN snoozed_until_ms ELSE due_ms END) <= ?")
            arguments.append(dueBeforeMs)
        }
        arguments.append(limit)
        let sql = "SELECT \(Self.momentColumns) FROM moment" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY due_ms, id LIMIT ?"
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments.map { $0?.databaseValue ?? .null })).map(Self.moment)
    }

    func setMoment(_ id: String, status: Moment.Status, snoozedUntilMs: Int64?, actor: String, atMs ms: Int64) throws {
        try run("UPDATE moment SET status = ?, snoozed_until_ms = ?, decided_ms = ?, decided_by = ? WHERE id = ?", [status.rawValue, snoozedUntilMs, ms, actor, id])
        try recordMomentUpdate(id)
    }

    func moveMoment(_ id: String, to customer: String) throws {
        try run("UPDATE moment SET customer_id = ? WHERE id = ?", [customer, id])
        try recordMomentUpdate(id)
    }

    private func recordMomentUpdate(_ id: String) throws {
        guard let outbox, let moment = try moment(id) else { return }
        outbox.record(.momentUpdated, customer: moment.customer, data: OutboxPayload.moment(moment))
    }

    func unpublishedMoments(underWay: Bool, stream: String?, limit: Int) throws -> [Moment] {
        if underWay {
            return try rows(
                "SELECT \(Self.momentColumns) FROM moment WHERE published_seq IS NULL AND publish_after_seq IS NOT NULL AND (publish_stream IS NULL OR publish_stream = ?) ORDER BY created_ms, id LIMIT ?",
                [stream, limit]
            ).map(Self.moment)
        }
        return try rows(
            "SELECT \(Self.momentColumns) FROM moment WHERE published_seq IS NULL AND publish_after_seq IS NULL ORDER BY created_ms, id LIMIT ?", [limit]
        ).map(Self.moment)
    }

    func markMomentPublishing(_ id: String, afterSeq seq: Int64?, stream: String?) throws {
        try run("UPDATE moment SET publish_after_seq = ?, publish_stream = ? WHERE id = ?", [seq, seq == nil ? nil : stream, id])
    }

    func markMomentPublished(_ id: String, seq: Int64) throws {
        try run("UPDATE moment SET published_seq = ? WHERE id = ?", [seq, id])
    }

    func activity(of customer: String) throws -> [Int64] {
        try Int64.fetchAll(
            db.cachedStatement(sql: "SELECT occurred_ms FROM timeline WHERE customer_id = ? AND type IN (\(StoreSQL.activityTypes)) ORDER BY occurred_ms"),
            arguments: [customer])
    }

    func forEachCustomer(minVisits: Int, _ body: (CustomerSummary) throws -> Void) throws {
        var gatherer = CustomerSummaryGatherer(minVisits: minVisits)
        // Records merged into another are few: their visits and activity are gathered first,
        // by their survivor (`root` follows a chain of merges).
        for row in try Row.fetchAll(db, sql: "SELECT id, visits FROM customer WHERE status = 'merged'") {
            let root = try root(of: row[0])
            gatherer.addMerged(root: root, visits: row[1])
            for entry in try Row.fetchAll(
                db, sql: "SELECT occurred_ms, type, CAST(json_extract(payload, '$.total') AS TEXT) FROM timeline WHERE customer_id = ? AND type IN (\(StoreSQL.activityTypes))",
                arguments: [row[0] as String])
            {
                gatherer.addMergedActivity(root: root, occurredMs: entry[0], type: entry[1], total: entry[2])
            }
        }
        // Then one pass over the timeline in the order of its customer index (no sort, so no
        // temporary copy of every row: a million customers scan in constant memory).
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT timeline.customer_id, customer.visits, timeline.occurred_ms, timeline.type, CAST(json_extract(timeline.payload, '$.total') AS TEXT)
                FROM timeline INDEXED BY timeline_customer JOIN customer ON customer.id = timeline.customer_id
                WHERE customer.status = 'active' AND timeline.type IN (\(StoreSQL.activityTypes))
                ORDER BY timeline.customer_id
                """)
        while let row = try rows.next() {
            try gatherer.add(customer: row[0], visits: row[1], occurredMs: row[2], type: row[3], total: row[4], body)
        }
        try gatherer.finish(customer: { try customer($0) }, body)
    }

    func erasePersonalData(of customer: String) throws {
        for table in ["identifier", "customer_name", "consent", "timeline", "sale_link", "match_key", "import_record", "moment"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE customer_id = ?", arguments: [customer])
        }
        try db.execute(sql: "DELETE FROM duplicate_review WHERE a = ?1 OR b = ?1", arguments: [customer])
        try run(
            "UPDATE customer SET name = NULL, given_name = NULL, family_name = NULL, postcode = NULL, status = 'erased', merged_into = NULL, visits = 0 WHERE id = ?",
            [customer])
        // What the outbox still held of the person goes too (delivered or not, dead or not);
        // the targets hear of the erasure instead.
        try run("DELETE FROM delivery WHERE seq IN (SELECT seq FROM outbox WHERE customer_id = ?)", [customer])
        try run("DELETE FROM outbox WHERE customer_id = ?", [customer])
        outbox?.erased(customer, atMs: Date().milliseconds)
    }
}
