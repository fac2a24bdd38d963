import Foundation
import PostgresNIO
import Testing
import TillCore
@testable import TillCRM

/// Every statement a sale costs on PostgreSQL finds its rows through an index. At a million
/// customers a lookup that read the whole identifier table took 159 ms instead of 0.2 ms (an
/// equality in the database's collation against an index in byte order). Timing cannot show
/// that on a test database, but the pages a statement touches can: the store is filled with
/// 20,000 customers (each with identifiers, names, a sale, a link, a purchase, a match key, consent, a
/// suppressed address and a pending card),
/// and each statement of the workload is run again under `EXPLAIN (ANALYZE, BUFFERS)`. A
/// statement that reads a whole table touches hundreds of pages; a lookup, a handful.
@Suite("PostgreSQL statements use their indexes", .timeLimit(.minutes(2)), .enabled(if: StoreKind.all.contains(.postgres)))
struct PostgresPlanTests {
    static let background = 20_000
    /// More than any lookup needs, far fewer than a whole table of the background (identifier
    /// alone is ~600 pages; customer, sale and timeline ~200 or more each).
    static let pageLimit = 60

    @Test("the statements of identified sales, refunds, late attaches and card scans each touch a few pages, not a table")
    func saleStatementsUseIndexes() async throws {
        let ledger = try await Ledger(kind: .postgres)
        let store = try #require(ledger.store as? PostgresCRMStore)
        _ = try await ledger.store.read { try $0.cursor("tilld") }  // makes the schema
        let n = Self.background - 1
        try await store.execute("""
            INSERT INTO customer(id, name, given_name, family_name, postcode, first_seen_ms, last_seen_ms, visits)
                SELECT 'B' || i, 'Background ' || i, 'Given' || i, 'Family' || i, 'AB1 ' || (i % 9) || 'CD', 0, 0, 1 FROM generate_series(0, \(n)) i;
            INSERT INTO identifier(customer_id, kind, raw, normalized, added_ms)
                SELECT 'B' || i, 'email', 'b' || i || '@example.com', 'b' || i || '@example.com', 0 FROM generate_series(0, \(n)) i
                UNION ALL SELECT 'B' || i, 'phone', '+4479' || lpad(i::text, 8, '0'), '+4479' || lpad(i::text, 8, '0'), 0 FROM generate_series(0, \(n)) i
                UNION ALL SELECT 'B' || i, 'loyalty_card', 'BLOY' || i, 'BLOY' || i, 0 FROM generate_series(0, \(n)) i;
            INSERT INTO sale(sale_id, till, store, receipt, state, total, currency, started_ms, completed_ms)
                SELECT 'BS' || i, 'T9', 'Store 9', 'BR' || i, 'completed', '5.00', 'EUR', i, i FROM generate_series(0, \(n)) i;
            INSERT INTO sale_link(sale_id, customer_id, method, linked_ms) SELECT 'BS' || i, 'B' || i, 'email', i FROM generate_series(0, \(n)) i;
            INSERT INTO timeline(customer_id, occurred_ms, recorded_ms, type, source, payload)
                SELECT 'B' || i, i, i, 'purchase', 'sale:BS' || i, '{"sale":"BS' || i || '","total":"5.00"}' FROM generate_series(0, \(n)) i;
            INSERT INTO match_key(key, customer_id) SELECT 'n:family' || i || ':given' || i, 'B' || i FROM generate_series(0, \(n)) i;
            INSERT INTO consent(customer_id, channel, purpose, granted, basis, source, recorded_ms)
                SELECT 'B' || i, 'email', 'marketing', TRUE, 'consent', 'till', i FROM generate_series(0, \(n)) i;
            INSERT INTO customer_name(customer_id, given, family, added_ms) SELECT 'B' || i, 'Given' || i, 'Family' || i, 0 FROM generate_series(0, \(n)) i;
            INSERT INTO suppression(hash, kind, reason, created_ms) SELECT md5('erased' || i), 'email', 'erased', 0 FROM generate_series(0, \(n)) i;
            INSERT INTO pending_card(sale_id, card, raw, source_seq) SELECT 'BP' || i, 'BLOY' || i, 'BLOY' || i, 0 FROM generate_series(0, \(n)) i;
            ANALYZE
            """)
        // A returning customer by each identifier first, so that the workload's lookups find rows.
        _ = try await ledger.sale("S0", total: "5.00", receipt: "R0", identify: ["email": "ann@example.com", "phone": "+44 7700 900123", "name": "Ann Lee"])
        _ = try await ledger.sale("S00", total: "5.00", identify: ["loyalty": "LOY9", "name": "Bo Chan"])

        let (_, statements) = try await store.recordingStatements {
            _ = try await ledger.sale("S1", total: "7.00", receipt: "R1", identify: ["email": "ANN@example.com"])
            _ = try await ledger.sale("S2", total: "3.00", identify: ["phone": "07700 900123"])
            _ = try await ledger.sale("S3", total: "2.00", identify: ["loyalty": "LOY9"])
            _ = try await ledger.sale("S4", total: "9.00", identify: ["email": "new@example.com", "name": "Cy Dee", "consent": ["email_marketing": true]])
            try await ledger.feed("sale.started", ["sale": "S5", "till": "T1"])
            try await ledger.feed("scanner.data", ["text": "LOY 0042", "kind": "loyalty"], device: "sim-scanner")
            try await ledger.feed("sale.completed", ["sale": "S5", "total": "1.00", "currency": "EUR"])
            try await ledger.feed("customer.identified", ["sale": "S5", "email": "ann@example.com"])  // after the sale: a late attach
            try await ledger.feed("refund.completed", ["refund": "F1", "receipt": "R1", "lines": [], "total": "7.00", "currency": "EUR", "reason": "wrong size"])
            // A batch, as the follower applies them: the memoizing path's reads and writes.
            let base = ledger.seq
            let events: [Event] = [
                Event(seq: base + 1, time: Date(), topic: "sale.started", device: nil, data: ["sale": "S6", "till": "T2"]),
                Event(seq: base + 2, time: Date(), topic: "customer.identified", device: nil, data: ["sale": "S6", "phone": "+447700900123"]),
                Event(seq: base + 3, time: Date(), topic: "sale.completed", device: nil, data: ["sale": "S6", "total": "4.00", "currency": "EUR"]),
            ]
            let processor = ledger.processor
            _ = try await store.apply(events) { event, transaction in try processor.process(event, in: transaction) }
        }

        var seen: Set<String> = []
        for statement in statements where seen.insert(statement.sql).inserted {
            let plan: String, pages: Int
            do {
                (plan, pages) = try await store.explainAnalyzed(statement)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" && statement.sql.hasPrefix("INSERT") {
                continue  // a keyed insert run twice: it found its own row through the unique index
            } catch {
                Issue.record("\(statement.sql)\n\(String(reflecting: error))")
                continue
            }
            if ProcessInfo.processInfo.environment["SHOW_PLANS"] != nil { print(pages, statement.sql, plan, separator: "\n") }
            #expect(pages <= Self.pageLimit, "touched \(pages) pages:\n\(statement.sql)\n\(plan)")
        }
        #expect(seen.count > 20, "the workload ran the statements of a sale (\(seen.count) distinct)")
    }
}
