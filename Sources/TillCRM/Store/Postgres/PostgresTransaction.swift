import Foundation
import Logging
import PostgresNIO
import TillCore

/// `CRMTransaction` over one PostgreSQL connection inside a transaction (`PostgresCRMStore`),
/// statement for statement what `SQLiteTransaction` does, in PostgreSQL's dialect: `$n`
/// parameters, `RETURNING` for new ids, the affected-row count from the command tag.
struct PostgresTransaction: CRMTransaction {
    let session: PostgresSession
    /// Hears every change a write makes, for the outbox (nil when reading).
    var outbox: OutboxRecorder? = nil

    // MARK: statements

    /// A statement whose affected-row count is needed now.
    func run(_ sql: String, _ values: [PostgresBind] = []) throws -> Int {
        try session.run(sql, values).metadata.rows ?? 0
    }

    /// A write nothing waits for (`PostgresSession` says why): its error, if any, is thrown by
    /// the next statement waited for, or by the commit.
    func send(_ sql: String, _ values: [PostgresBind] = []) throws {
        try session.send(sql, values)
    }

    func rows(_ sql: String, _ values: [PostgresBind] = []) throws -> [PostgresValues] {
        try session.run(sql, values).rows.map(PostgresValues.init)
    }

    func row(_ sql: String, _ values: [PostgresBind] = []) throws -> PostgresValues? {
        try rows(sql, values).first
    }

    func string(_ sql: String, _ values: [PostgresBind] = []) throws -> String? {
        try row(sql, values).flatMap { try $0[0] as String? }
    }

    func int64(_ sql: String, _ values: [PostgresBind] = []) throws -> Int64? {
        try row(sql, values).flatMap { try $0[0] as Int64? }
    }

    func strings(_ sql: String, _ values: [PostgresBind] = []) throws -> [String] {
        try rows(sql, values).map { try $0[0] }
    }

    // MARK: cursor

    func cursors() throws -> [String: Int64] {
        var cursors: [String: Int64] = [:]
        for row in try rows("SELECT name, seq FROM cursor") { cursors[try row[0]] = try row[1] }
        return cursors
    }

    func cursor(_ name: String) throws -> Int64 {
        try int64("SELECT seq FROM cursor WHERE name = $1", [name]) ?? 0
    }

    func setCursor(_ name: String, to seq: Int64) throws {
        try send("INSERT INTO cursor(name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq", [name, seq])
    }

    // MARK: sales

    private static let saleColumns = "sale_id, till, store, receipt, state, total, currency, lines, tenders, started_ms, completed_ms, staff"

    private static func sale(_ row: PostgresValues, from c: Int = 0) throws -> SaleRecord {
        SaleRecord(
            id: try row[c], till: try row[c + 1], store: try row[c + 2], staff: try row[c + 11], receipt: try row[c + 3],
            state: SaleState(rawValue: try row[c + 4]) ?? .open, total: try row[c + 5], currency: try row[c + 6],
            lines: try JSONText.decode(try row[c + 7] as String).arrayValue ?? [],
            tenders: try JSONText.decode(try row[c + 8] as String).arrayValue ?? [],
            startedMs: try row[c + 9], completedMs: try row[c + 10])
    }

    func sale(_ id: String) throws -> SaleRecord? {
        try row("SELECT \(Self.saleColumns) FROM sale WHERE sale_id = $1", [id]).map { try Self.sale($0) }
    }

    func latestSale(receipt: String) throws -> SaleRecord? {
        try row("SELECT \(Self.saleColumns) FROM sale WHERE receipt = $1 ORDER BY completed_ms DESC NULLS LAST LIMIT 1", [receipt]).map { try Self.sale($0) }
    }

    func openSales(startedSinceMs: Int64) throws -> [SaleRecord] {
        try rows("SELECT \(Self.saleColumns) FROM sale WHERE state = 'open' AND started_ms >= $1 ORDER BY started_ms DESC LIMIT 16", [startedSinceMs])
            .map { try Self.sale($0) }
    }

    func save(_ sale: SaleRecord) throws {
        try send(
            """
            INSERT INTO sale(\(Self.saleColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (sale_id) DO UPDATE SET till = excluded.till, store = excluded.store, staff = excluded.staff, receipt = excluded.receipt,
                state = excluded.state, total = excluded.total, currency = excluded.currency, lines = excluded.lines,
                tenders = excluded.tenders, started_ms = excluded.started_ms, completed_ms = excluded.completed_ms
            """,
            [sale.id, sale.till, sale.store, sale.receipt, sale.state.rawValue, sale.total, sale.currency,
             JSONText.encode(JSONValue.array(sale.lines)), JSONText.encode(JSONValue.array(sale.tenders)), sale.startedMs, sale.completedMs, sale.staff])
    }

    // MARK: links

    func linkedCustomer(ofSale sale: String) throws -> String? {
        try string("SELECT customer_id FROM sale_link WHERE sale_id = $1 AND unlinked_ms IS NULL", [sale])
    }

    func link(sale: String, to customer: String, method: LinkMethod, atMs ms: Int64) throws {
        try send("UPDATE sale_link SET unlinked_ms = $1 WHERE sale_id = $2 AND unlinked_ms IS NULL", [ms, sale])
        try send("INSERT INTO sale_link(sale_id, customer_id, method, linked_ms) VALUES ($1, $2, $3, $4)", [sale, customer, method.rawValue, ms])
    }

    func links(ofCustomer customer: String) throws -> [SaleLink] {
        try rows(
            """
            SELECT \(Self.saleColumns.split(separator: ",").map { "s." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")),
                l.method, l.linked_ms, l.unlinked_ms
            FROM sale_link l JOIN sale s ON s.sale_id = l.sale_id WHERE l.customer_id = $1 ORDER BY l.linked_ms, l.id
            """, [customer]
        ).map { row in
            SaleLink(sale: try Self.sale(row), method: LinkMethod(rawValue: try row[12]) ?? .manual, linkedMs: try row[13], unlinkedMs: try row[14])
        }
    }

    // MARK: pending cards

    func pendingCard(ofSale sale: String) throws -> CustomerIdentifier? {
        try row("SELECT card, raw FROM pending_card WHERE sale_id = $1", [sale]).map {
            CustomerIdentifier(kind: .loyaltyCard, raw: try $0[1], normalized: try $0[0])
        }
    }

    func setPendingCard(_ card: CustomerIdentifier, sale: String, sourceSeq: Int64) throws {
        try send(
            """
            INSERT INTO pending_card(sale_id, card, raw, source_seq) VALUES ($1, $2, $3, $4)
            ON CONFLICT (sale_id) DO UPDATE SET card = excluded.card, raw = excluded.raw, source_seq = excluded.source_seq
            """,
            [sale, card.normalized, card.raw, sourceSeq])
    }

    func removePendingCard(ofSale sale: String) throws {
        try send("DELETE FROM pending_card WHERE sale_id = $1", [sale])
    }

    // MARK: customers and identifiers

    static let customerColumns = "id, name, given_name, family_name, postcode, status, merged_into, first_seen_ms, last_seen_ms, visits"

    static func customer(_ row: PostgresValues) throws -> CustomerRecord {
        CustomerRecord(
            id: try row[0], name: try row[1], givenName: try row[2], familyName: try row[3], postcode: try row[4],
            status: CustomerStatus(rawValue: try row[5]) ?? .active, mergedInto: try row[6],
            firstSeenMs: try row[7], lastSeenMs: try row[8], visits: try row.int(9))
    }

    func customer(_ id: String) throws -> CustomerRecord? {
        try row("SELECT \(Self.customerColumns) FROM customer WHERE id = $1", [id]).map(Self.customer)
    }

    static let customerUpsert = """
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, given_name = excluded.given_name, family_name = excluded.family_name,
            postcode = excluded.postcode, status = excluded.status, merged_into = excluded.merged_into,
            first_seen_ms = excluded.first_seen_ms, last_seen_ms = excluded.last_seen_ms, visits = excluded.visits
        """

    static func values(_ customer: CustomerRecord) -> [PostgresBind] {
        [customer.id, customer.name, customer.givenName, customer.familyName, customer.postcode, customer.status.rawValue,
         customer.mergedInto, customer.firstSeenMs, customer.lastSeenMs, Int64(customer.visits)]
    }

    func save(_ customer: CustomerRecord) throws {
        try send("INSERT INTO customer(\(Self.customerColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)" + Self.customerUpsert, Self.values(customer))
        outbox?.touch(customer.id)
    }

    func owner(of identifier: CustomerIdentifier) throws -> String? {
        guard let holder = try holders(of: identifier).first else { return nil }
        return try root(of: holder)
    }

    func holders(of identifier: CustomerIdentifier) throws -> [String] {
        // In byte order, as identifier_lookup is: an equality in the database's own collation
        // cannot use that index, and reads the whole table (159 ms at a million customers).
        try strings(
            #"SELECT customer_id FROM identifier WHERE normalized COLLATE "C" = $1 AND kind = $2 AND active ORDER BY id"#,
            [identifier.normalized, identifier.kind.rawValue])
    }

    func add(_ identifier: CustomerIdentifier, to customer: String, sourceSeq: Int64?, atMs ms: Int64) throws {
        // Idempotent per record; a second holder of a loyalty card fails on identifier_unique_card.
        let added = try run(
            """
            INSERT INTO identifier(customer_id, kind, raw, normalized, source_seq, added_ms) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (customer_id, kind, normalized) WHERE active DO NOTHING
            """,
            [customer, identifier.kind.rawValue, identifier.raw, identifier.normalized, sourceSeq, ms])
        if added > 0 { outbox?.touch(customer) }
    }

    func identifiers(of customer: String) throws -> [CustomerIdentifier] {
        try rows("SELECT kind, raw, normalized FROM identifier WHERE customer_id = $1 AND active ORDER BY id", [customer]).map { row in
            CustomerIdentifier(kind: CustomerIdentifier.Kind(rawValue: try row[0]) ?? .external, raw: try row[1], normalized: try row[2])
        }
    }

    func findCustomers(identifierPrefixes: [String], identifierParts: [String], nameContaining name: String, limit: Int) throws -> [CustomerRecord] {
        var ids: [String] = []
        for prefix in identifierPrefixes where !prefix.isEmpty {
            ids += try strings(
                #"SELECT customer_id FROM identifier WHERE active AND normalized COLLATE "C" >= $1 AND normalized COLLATE "C" < $2 LIMIT $3"#,
                [prefix, prefix + "\u{10FFFF}", Int64(limit)])
        }
        for part in identifierParts where part.utf8.count >= 3 {
            ids += try strings("SELECT customer_id FROM identifier WHERE active AND normalized LIKE $1 LIMIT $2", [StoreSQL.likePattern(part), Int64(limit)])
        }
        if !name.isEmpty {
            ids += try strings(
                """
                SELECT id FROM customer WHERE status IN ('active', 'merged')
                AND (name ILIKE $1 OR given_name ILIKE $1 OR family_name ILIKE $1 OR (given_name || ' ' || family_name) ILIKE $1) LIMIT $2
                """, [StoreSQL.likePattern(name), Int64(limit)])
        }
        var seen = Set<String>()
        return try ids.map { try root(of: $0) }.filter { seen.insert($0).inserted }.compactMap { try customer($0) }
            .filter { $0.status == .active }.prefix(limit).map { $0 }
    }

    func names(of customer: String) throws -> [PersonName] {
        try rows("SELECT given, family FROM customer_name WHERE customer_id = $1 ORDER BY added_ms, given, family", [customer]).map { row in
            let given: String = try row[0], family: String = try row[1]
            return PersonName(given: given.isEmpty ? nil : given, family: family.isEmpty ? nil : family)
        }
    }

    func addName(_ name: PersonName, to customer: String, atMs ms: Int64) throws {
        guard !name.isEmpty else { return }
        let added = try run(
            "INSERT INTO customer_name(customer_id, given, family, added_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [customer, name.given ?? "", name.family ?? "", ms])
        if added > 0 { outbox?.touch(customer) }
    }

    // MARK: merges

    func root(of customer: String) throws -> String {
        var id = customer
        for _ in 0..<64 {  // the bound stops a corrupt cycle
            guard let next = try string("SELECT merged_into FROM customer WHERE id = $1 AND status = 'merged'", [id]) else { break }
            id = next
        }
        return id
    }

    func members(of root: String) throws -> [String] {
        var members = [root]
        var index = 0
        while index < members.count, members.count <= 64 {
            members += try strings("SELECT id FROM customer WHERE merged_into = $1 AND status = 'merged' ORDER BY id", [members[index]])
            index += 1
        }
        return members
    }

    func addMatchKeys(_ keys: [String], to customer: String) throws {
        guard !keys.isEmpty else { return }
        try send(
            "INSERT INTO match_key(key, customer_id) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
            [keys, customer])
    }

    func records(withMatchKeys keys: [String], limitPerKey: Int) throws -> [String: [String]] {
        var found: [String: [String]] = [:]
        for key in keys {
            found[key] = try strings("SELECT customer_id FROM match_key WHERE key = $1 LIMIT $2", [key, Int64(limitPerKey + 1)])
        }
        return found
    }

    private static let mergeColumns = "id, survivor, absorbed, automatic, score, evidence, actor, reason, merged_ms, undone_ms, undone_by"

    private static func merge(_ row: PostgresValues) throws -> MergeRecord {
        MergeRecord(
            id: try row[0], survivor: try row[1], absorbed: try row[2], automatic: try row[3], score: try row[4],
            evidence: try JSONText.decode(try row[5] as String).arrayValue?.compactMap(\.stringValue) ?? [],
            actor: try row[6], reason: try row[7], mergedMs: try row[8], undoneMs: try row[9], undoneBy: try row[10])
    }

    func append(_ merge: MergeRecord) throws -> Int64 {
        guard let id = try int64(
            """
            INSERT INTO merge_log(survivor, absorbed, automatic, score, evidence, actor, reason, merged_ms, undone_ms, undone_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id
            """,
            [merge.survivor, merge.absorbed, merge.automatic, merge.score, JSONText.encode(JSONValue.array(merge.evidence.map(JSONValue.string))),
             merge.actor, merge.reason, merge.mergedMs, merge.undoneMs, merge.undoneBy])
        else { throw PostgresStoreError("the merge was not logged (no id returned)") }
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
        try rows("SELECT \(Self.mergeColumns) FROM merge_log WHERE survivor = $1 OR absorbed = $1 ORDER BY id", [customer]).map(Self.merge)
    }

    func markUndone(merge id: Int64, atMs ms: Int64, actor: String) throws {
        try send("UPDATE merge_log SET undone_ms = $1, undone_by = $2 WHERE id = $3", [ms, actor, id])
        if let outbox, let merge = try row("SELECT \(Self.mergeColumns) FROM merge_log WHERE id = $1", [id]).map(Self.merge) {
            outbox.touch(merge.survivor)
            outbox.touch(merge.absorbed)
            outbox.record(.customerUnmerged, customer: merge.survivor, data: CustomerDirectory.json(merge))
        }
    }

    // MARK: review queue

    private static let reviewColumns = "a, b, score, evidence, status, queued_ms, decided_ms, decided_by"

    private static func review(_ row: PostgresValues) throws -> ReviewRecord {
        ReviewRecord(
            try row[0], try row[1], score: try row[2],
            evidence: try JSONText.decode(try row[3] as String).arrayValue?.compactMap(\.stringValue) ?? [],
            status: ReviewRecord.Status(rawValue: try row[4]) ?? .open, queuedMs: try row[5], decidedMs: try row[6], decidedBy: try row[7])
    }

    func queue(_ review: ReviewRecord) throws {
        try send(
            "INSERT INTO duplicate_review(a, b, score, evidence, status, queued_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (a, b) DO NOTHING",
            [review.a, review.b, review.score, JSONText.encode(JSONValue.array(review.evidence.map(JSONValue.string))), review.status.rawValue, review.queuedMs])
    }

    func reviews(status: ReviewRecord.Status?) throws -> [ReviewRecord] {
        if let status {
            return try rows("SELECT \(Self.reviewColumns) FROM duplicate_review WHERE status = $1 ORDER BY score DESC, a, b", [status.rawValue]).map(Self.review)
        }
        return try rows("SELECT \(Self.reviewColumns) FROM duplicate_review ORDER BY score DESC, a, b").map(Self.review)
    }

    func review(_ x: String, _ y: String) throws -> ReviewRecord? {
        let (a, b) = x < y ? (x, y) : (y, x)
        return try row("SELECT \(Self.reviewColumns) FROM duplicate_review WHERE a = $1 AND b = $2", [a, b]).map(Self.review)
    }

    func setReviewStatus(_ x: String, _ y: String, to status: ReviewRecord.Status, actor: String, atMs ms: Int64) throws {
        let (a, b) = x < y ? (x, y) : (y, x)
        try send("UPDATE duplicate_review SET status = $1, decided_ms = $2, decided_by = $3 WHERE a = $4 AND b = $5", [status.rawValue, ms, actor, a, b])
    }

    // MARK: imports

    func importedCustomer(source: String, record: String) throws -> String? {
        try string("SELECT customer_id FROM import_record WHERE source = $1 AND record = $2", [source, record])
    }

    func recordImport(source: String, record: String, customer: String, atMs ms: Int64) throws {
        try send("INSERT INTO import_record(source, record, customer_id, imported_ms) VALUES ($1, $2, $3, $4)", [source, record, customer, ms])
    }

    func importedRecords(source: String) throws -> [String: String] {
        var records: [String: String] = [:]
        for row in try rows("SELECT record, customer_id FROM import_record WHERE source = $1", [source]) { records[try row[0]] = try row[1] }
        return records
    }

    /// Many rows in few statements: a few hundred rows to a statement (PostgreSQL takes at
    /// most 65,535 parameters in one).
    func chunked<Row>(_ rows: [Row], columns: String, into table: String, conflict: String = "", _ values: (Row) -> [PostgresBind]) throws {
        guard !rows.isEmpty else { return }
        let width = columns.split(separator: ",").count
        let size = max(1, 8000 / width)
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(start + size, rows.count)]
            var binds: [PostgresBind] = []
            binds.reserveCapacity(chunk.count * width)
            var tuples: [String] = []
            for row in chunk {
                let base = binds.count
                binds += values(row)
                tuples.append("(" + (1...width).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            }
            try send("INSERT INTO \(table)(\(columns)) VALUES " + tuples.joined(separator: ", ") + conflict, binds)
            start += chunk.count
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
            [row.customer, row.identifier.kind.rawValue, row.identifier.raw, row.identifier.normalized, row.sourceSeq, row.atMs]
        }
        try chunked(rows.names, columns: "customer_id, given, family, added_ms", into: "customer_name", conflict: " ON CONFLICT DO NOTHING") { row in
            [row.customer, row.name.given ?? "", row.name.family ?? "", row.atMs]
        }
        try chunked(rows.matchKeys, columns: "key, customer_id", into: "match_key", conflict: " ON CONFLICT DO NOTHING") { row in
            [row.key, row.customer]
        }
        try chunked(rows.imports, columns: "source, record, customer_id, imported_ms", into: "import_record") { row in
            [row.source, row.record, row.customer, row.atMs]
        }
    }

    // MARK: consent

    func append(_ consent: ConsentRecord) throws {
        try send(
            """
            INSERT INTO consent(customer_id, channel, purpose, granted, basis, source, sale_id, source_seq, recorded_ms)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [consent.customer, consent.channel.rawValue, consent.purpose.rawValue, consent.granted, consent.basis.rawValue,
             consent.source, consent.sale, consent.sourceSeq, consent.recordedMs])
        outbox?.touch(consent.customer)
    }

    static let consentColumns = "customer_id, channel, purpose, granted, basis, source, sale_id, source_seq, recorded_ms"

    static func consent(_ row: PostgresValues) throws -> ConsentRecord? {
        guard let channel = ConsentRecord.Channel(rawValue: try row[1]), let purpose = ConsentRecord.Purpose(rawValue: try row[2]),
            let basis = ConsentRecord.Basis(rawValue: try row[4])
        else { return nil }
        return ConsentRecord(
            customer: try row[0], channel: channel, purpose: purpose, granted: try row[3], basis: basis, source: try row[5],
            sale: try row[6], sourceSeq: try row[7], recordedMs: try row[8])
    }

    func consentHistory(of customer: String) throws -> [ConsentRecord] {
        try rows("SELECT \(Self.consentColumns) FROM consent WHERE customer_id = $1 ORDER BY id", [customer]).compactMap(Self.consent)
    }

    // MARK: timeline

    @discardableResult
    func append(_ entry: TimelineEntry) throws -> Bool {
        let added = try run(
            """
            INSERT INTO timeline(customer_id, occurred_ms, recorded_ms, type, source, payload, actor)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source) DO NOTHING
            """,
            [entry.customer, entry.occurredMs, entry.recordedMs, entry.type.rawValue, entry.source, JSONText.encode(entry.payload), entry.actor])
        guard added > 0 else { return false }
        outbox?.record(.timelineAdded, customer: entry.customer, data: OutboxPayload.timeline(entry))
        return true
    }

    func timeline(of customer: String, limit: Int) throws -> [TimelineEntry] {
        try rows(
            "SELECT type, source, payload, occurred_ms, recorded_ms, actor FROM timeline WHERE customer_id = $1 ORDER BY occurred_ms DESC, id DESC LIMIT $2",
            [customer, Int64(limit)]
        ).map { row in
            TimelineEntry(
                customer: customer, type: TimelineEntry.Kind(rawValue: try row[0]) ?? .note, source: try row[1],
                payload: (try? JSONText.decode(try row[2] as String)) ?? .null, occurredMs: try row[3], recordedMs: try row[4], actor: try row[5])
        }
    }

    func countEntries(of customer: String, type: TimelineEntry.Kind, payloadFlag: String?) throws -> Int {
        if let payloadFlag {
            // As SQLite's json_extract(...) = 1: a flag written as true (or 1).
            return Int(try int64(
                "SELECT COUNT(*) FROM timeline WHERE customer_id = $1 AND type = $2 AND (payload::jsonb ->> $3) IN ('true', '1')",
                [customer, type.rawValue, payloadFlag]) ?? 0)
        }
        return Int(try int64("SELECT COUNT(*) FROM timeline WHERE customer_id = $1 AND type = $2", [customer, type.rawValue]) ?? 0)
    }

    func moveEntry(source: String, to customer: String) throws -> String? {
        guard let from = try string("SELECT customer_id FROM timeline WHERE source = $1", [source]), from != customer else { return nil }
        try send("UPDATE timeline SET customer_id = $1 WHERE source = $2", [customer, source])
        outbox?.record(.timelineMoved, customer: customer, data: ["source": .string(source), "from": .string(from), "to": .string(customer)])
        return from
    }

    // MARK: erasure

    func suppressionKey() throws -> Data {
        guard let key = try row("SELECT value FROM secret WHERE name = 'suppression'").map({ try $0[0] as Data }) else {
            throw PostgresStoreError("the suppression secret is missing from the CRM database")
        }
        return key
    }

    func isSuppressed(hash: String) throws -> Bool {
        try row("SELECT 1 FROM suppression WHERE hash = $1", [hash]) != nil
    }

    func suppress(hash: String, kind: CustomerIdentifier.Kind, reason: String, atMs ms: Int64) throws {
        try send(
            "INSERT INTO suppression(hash, kind, reason, created_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING",
            [hash, kind.rawValue, reason, ms])
    }

    func erasePersonalData(of customer: String) throws {
        for table in ["identifier", "customer_name", "consent", "timeline", "sale_link", "match_key", "import_record", "moment"] {
            try send("DELETE FROM \(table) WHERE customer_id = $1", [customer])
        }
        try send("DELETE FROM duplicate_review WHERE a = $1 OR b = $1", [customer])
        try send(
            """
            UPDATE customer SET name = NULL, given_name = NULL, family_name = NULL, postcode = NULL, status = 'erased',
                merged_into = NULL, visits = 0 WHERE id = $1
            """, [customer])
        try send("DELETE FROM delivery WHERE seq IN (SELECT seq FROM outbox WHERE customer_id = $1)", [customer])
        try send("DELETE FROM outbox WHERE customer_id = $1", [customer])
        outbox?.erased(customer, atMs: Date().milliseconds)
    }

    // MARK: moments

    private static let momentColumns = "id, customer_id, kind, due_ms, reason, channels, status, snoozed_until_ms, created_ms, published_seq, publish_after_seq"

    private static func moment(_ row: PostgresValues) throws -> Moment {
        let channels = (try row[5] as String).split(separator: ",").compactMap { ConsentRecord.Channel(rawValue: String($0)) }
        return Moment(
            id: try row[0], customer: try row[1], kind: Moment.Kind(rawValue: try row[2]) ?? .careFollowUp, dueMs: try row[3], reason: try row[4],
            channels: channels, status: Moment.Status(rawValue: try row[6]) ?? .open, createdMs: try row[8], snoozedUntilMs: try row[7],
            publishedSeq: try row[9], publishAfterSeq: try row[10])
    }

    @discardableResult
    func add(_ moment: Moment) throws -> Bool {
        let added = try run(
            """
            INSERT INTO moment(id, customer_id, kind, due_ms, reason, channels, status, snoozed_until_ms, created_ms, published_seq)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING
            """,
            [moment.id, moment.customer, moment.kind.rawValue, moment.dueMs, moment.reason, moment.channels.map(\.rawValue).joined(separator: ","),
             moment.status.rawValue, moment.snoozedUntilMs, moment.createdMs, moment.publishedSeq])
        guard added > 0 else { return false }
        outbox?.record(.momentRaised, customer: moment.customer, data: OutboxPayload.moment(moment))
        return true
    }

    func moment(_ id: String) throws -> Moment? {
        try row("SELECT \(Self.momentColumns) FROM moment WHERE id = $1", [id]).map(Self.moment)
    }

    func moments(statuses: [Moment.Status], customers: [String]?, dueBeforeMs: Int64?, limit: Int) throws -> [Moment] {
        var conditions: [String] = []
        var binds: [PostgresBind] = []
        if !statuses.isEmpty {
            binds.append(statuses.map(\.rawValue))
            conditions.append("status = ANY($\(binds.count)::text[])")
        }
        if let customers {
            guard !customers.isEmpty else { return [] }
            binds.append(customers)
            conditions.append("customer_id = ANY($\(binds.count)::text[])")
        }
        if let dueBeforeMs {
            binds.append(dueBeforeMs)
            // A snoozed moment is due again when its snooze ends.
            conditions.append("(CASE WHEN status = 'snoozed' THEN snoozed_until_ms ELSE due_ms END) <= $\(binds.count)")
        }
        binds.append(Int64(limit))
        let sql = "SELECT \(Self.momentColumns) FROM moment" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY due_ms, id LIMIT $\(binds.count)"
        return try rows(sql, binds).map(Self.moment)
    }

    func setMoment(_ id: String, status: Moment.Status, snoozedUntilMs: Int64?, actor: String, atMs ms: Int64) throws {
        try send(
            "UPDATE moment SET status = $1, snoozed_until_ms = $2, decided_ms = $3, decided_by = $4 WHERE id = $5",
            [status.rawValue, snoozedUntilMs, ms, actor, id])
        try recordMomentUpdate(id)
    }

    func moveMoment(_ id: String, to customer: String) throws {
        try send("UPDATE moment SET customer_id = $1 WHERE id = $2", [customer, id])
        try recordMomentUpdate(id)
    }

    private func recordMomentUpdate(_ id: String) throws {
        guard let outbox, let moment = try moment(id) else { return }
        outbox.record(.momentUpdated, customer: moment.customer, data: OutboxPayload.moment(moment))
    }

    func unpublishedMoments(underWay: Bool, stream: String?, limit: Int) throws -> [Moment] {
        if underWay {
            return try rows(
                """
                SELECT \(Self.momentColumns) FROM moment WHERE published_seq IS NULL AND publish_after_seq IS NOT NULL
                AND (publish_stream IS NULL OR publish_stream = $1) ORDER BY created_ms, id LIMIT $2
                """, [stream, Int64(limit)]
            ).map(Self.moment)
        }
        return try rows(
            "SELECT \(Self.momentColumns) FROM moment WHERE published_seq IS NULL AND publish_after_seq IS NULL ORDER BY created_ms, id LIMIT $1",
            [Int64(limit)]
        ).map(Self.moment)
    }

    func markMomentPublishing(_ id: String, afterSeq seq: Int64?, stream: String?) throws {
        try send("UPDATE moment SET publish_after_seq = $1, publish_stream = $2 WHERE id = $3", [seq, seq == nil ? nil : stream, id])
    }

    func markMomentPublished(_ id: String, seq: Int64) throws {
        try send("UPDATE moment SET published_seq = $1 WHERE id = $2", [seq, id])
    }

    func activity(of customer: String) throws -> [Int64] {
        try rows("SELECT occurred_ms FROM timeline WHERE customer_id = $1 AND type IN (\(StoreSQL.activityTypes)) ORDER BY occurred_ms", [customer])
            .map { try $0[0] }
    }

    func forEachCustomer(minVisits: Int, _ body: (CustomerSummary) throws -> Void) throws {
        var gatherer = CustomerSummaryGatherer(minVisits: minVisits)
        // As SQLiteTransaction: merged records first, gathered by their survivor.
        for row in try rows("SELECT id, visits FROM customer WHERE status = 'merged'") {
            let id: String = try row[0]
            let root = try root(of: id)
            gatherer.addMerged(root: root, visits: try row.int(1))
            for entry in try rows(
                "SELECT occurred_ms, type, payload::jsonb ->> 'total' FROM timeline WHERE customer_id = $1 AND type IN (\(StoreSQL.activityTypes))", [id])
            {
                gatherer.addMergedActivity(root: root, occurredMs: try entry[0], type: try entry[1], total: try entry[2])
            }
        }
        // Then one pass in customer order, fetched through a cursor a batch at a time: a
        // million customers in bounded memory.
        try send(
            """
            DECLARE customer_scan NO SCROLL CURSOR FOR
            SELECT timeline.customer_id, customer.visits, timeline.occurred_ms, timeline.type, timeline.payload::jsonb ->> 'total'
            FROM timeline JOIN customer ON customer.id = timeline.customer_id
            WHERE customer.status = 'active' AND timeline.type IN (\(StoreSQL.activityTypes))
            ORDER BY timeline.customer_id
            """)
        defer { _ = try? run("CLOSE customer_scan") }
        while true {
            let batch = try rows("FETCH 5000 FROM customer_scan")
            if batch.isEmpty { break }
            for row in batch {
                try gatherer.add(customer: try row[0], visits: try row.int(1), occurredMs: try row[2], type: try row[3], total: try row[4], body)
            }
        }
        try gatherer.finish(customer: { try customer($0) }, body)
    }
}
