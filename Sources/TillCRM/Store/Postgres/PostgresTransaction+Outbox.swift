import Foundation
import PostgresNIO
import TillCore

/// The outbox in PostgreSQL, as `SQLiteTransaction+Outbox` keeps it in SQLite.
extension PostgresTransaction: OutboxWriting, OutboxTransaction {
    func outboxSnapshots(of customers: [String]) throws -> [String: JSONValue] {
        var identifiers: [String: [CustomerIdentifier]] = [:]
        for row in try rows(
            "SELECT customer_id, kind, raw, normalized FROM identifier WHERE active AND customer_id = ANY($1::text[]) ORDER BY id", [customers])
        {
            identifiers[try row[0], default: []].append(
                CustomerIdentifier(kind: CustomerIdentifier.Kind(rawValue: try row[1]) ?? .external, raw: try row[2], normalized: try row[3]))
        }
        var consent: [String: [ConsentRecord]] = [:]
        for row in try rows("SELECT \(Self.consentColumns) FROM consent WHERE customer_id = ANY($1::text[]) ORDER BY id", [customers]) {
            if let record = try Self.consent(row) { consent[record.customer, default: []].append(record) }
        }
        var snapshots: [String: JSONValue] = [:]
        for row in try rows("SELECT \(Self.customerColumns) FROM customer WHERE id = ANY($1::text[])", [customers]) {
            let record = try Self.customer(row)
            guard record.status != .erased else { continue }
            snapshots[record.id] = OutboxPayload.customer(record, identifiers: identifiers[record.id] ?? [], consent: consent[record.id] ?? [])
        }
        return snapshots
    }

    func appendOutbox(_ rows: [(id: String, customer: String, type: OutboxEntry.Kind, body: String, createdMs: Int64)]) throws {
        guard !rows.isEmpty else { return }
        // Held to commit: entries are numbered in the order their transactions commit, so a
        // target's cursor never moves past a lower seq another till-crm has not committed yet.
        try send("SELECT pg_advisory_xact_lock(7345002)")
        try chunked(rows, columns: "id, customer_id, type, body, created_ms", into: "outbox") { row in
            [row.id, row.customer, row.type.rawValue, row.body, row.createdMs]
        }
    }

    // MARK: delivery

    private static let entryColumns = "o.seq, o.id, o.customer_id, o.type, o.body, o.created_ms"
    private static let deliveryColumns = "d.target, d.state, d.attempts, d.refusals, d.next_ms, d.first_failed_ms, d.last_error, d.retried_ms, " + entryColumns

    private static func entry(_ row: PostgresValues, from c: Int = 0) throws -> OutboxEntry {
        OutboxEntry(
            seq: try row[c], id: try row[c + 1], customer: try row[c + 2], type: OutboxEntry.Kind(rawValue: try row[c + 3]) ?? .customerUpdated,
            body: try row[c + 4], createdMs: try row[c + 5])
    }

    private static func delivery(_ row: PostgresValues) throws -> OutboxDelivery {
        OutboxDelivery(
            target: try row[0], entry: try entry(row, from: 8), state: OutboxDelivery.State(rawValue: try row[1]) ?? .pending,
            attempts: try row.int(2), refusals: try row.int(3), nextMs: try row[4], firstFailedMs: try row[5], lastError: try row[6],
            retriedMs: try row[7])
    }

    func outboxCount() throws -> Int {
        Int(try int64("SELECT COUNT(*) FROM outbox") ?? 0)
    }

    func outboxEntries(afterSeq seq: Int64, limit: Int) throws -> [OutboxEntry] {
        try rows("SELECT \(Self.entryColumns) FROM outbox o WHERE o.seq > $1 ORDER BY o.seq LIMIT $2", [seq, Int64(limit)]).map { try Self.entry($0) }
    }

    func registerTarget(_ name: String) throws {
        try send(
            "INSERT INTO outbox_target(name, taken_seq) VALUES ($1, (SELECT COALESCE(MIN(seq), 1) - 1 FROM outbox)) ON CONFLICT (name) DO NOTHING",
            [name])
    }

    func takeOutbox(target: String, limit: Int, nowMs: Int64) throws -> Int {
        guard let taken = try int64("SELECT taken_seq FROM outbox_target WHERE name = $1 FOR UPDATE", [target]) else { return 0 }
        let count = try run(
            """
            INSERT INTO delivery(target, seq, customer_id, next_ms)
            SELECT $1, seq, customer_id, $2 FROM outbox WHERE seq > $3 ORDER BY seq LIMIT $4
            """, [target, nowMs, taken, Int64(limit)])
        if count > 0 {
            try send("UPDATE outbox_target SET taken_seq = (SELECT MAX(seq) FROM delivery WHERE target = $1) WHERE name = $1", [target])
        }
        return count
    }

    func dueDeliveries(target: String, nowMs: Int64, headsOnly: Bool, limit: Int) throws -> [OutboxDelivery] {
        let heads = headsOnly
            ? " AND NOT EXISTS (SELECT 1 FROM delivery e WHERE e.target = d.target AND e.customer_id = d.customer_id AND e.state = 'pending' AND e.seq < d.seq)"
            : ""
        return try rows(
            """
            SELECT \(Self.deliveryColumns) FROM delivery d JOIN outbox o ON o.seq = d.seq
            WHERE d.target = $1 AND d.state = 'pending' AND d.next_ms <= $2\(heads) ORDER BY d.seq LIMIT $3
            """, [target, nowMs, Int64(limit)]
        ).map(Self.delivery)
    }

    func nextDueMs(target: String) throws -> Int64? {
        try int64("SELECT MIN(next_ms) FROM delivery WHERE target = $1 AND state = 'pending'", [target])
    }

    func markDelivered(target: String, seqs: [Int64], atMs ms: Int64) throws {
        guard !seqs.isEmpty else { return }
        try send("DELETE FROM delivery WHERE target = $1 AND seq = ANY($2::bigint[])", [target, seqs])
        try send(
            "UPDATE outbox_target SET delivered = delivered + $1, last_delivered_ms = $2, last_error = NULL, paused_until_ms = NULL WHERE name = $3",
            [Int64(seqs.count), ms, target])
    }

    func markFailed(_ delivery: OutboxDelivery) throws {
        try send(
            """
            UPDATE delivery SET state = $1, attempts = $2, refusals = $3, next_ms = $4, first_failed_ms = $5, last_error = $6
            WHERE target = $7 AND seq = $8
            """,
            [delivery.state.rawValue, Int64(delivery.attempts), Int64(delivery.refusals), delivery.nextMs, delivery.firstFailedMs, delivery.lastError,
             delivery.target, delivery.entry.seq])
    }

    func setTargetHealth(_ name: String, error: String?, atMs ms: Int64, pausedUntilMs: Int64?) throws {
        try send(
            "UPDATE outbox_target SET last_error = $1, last_error_ms = CASE WHEN $1::text IS NULL THEN last_error_ms ELSE $2 END, paused_until_ms = $3 WHERE name = $4",
            [error, ms, pausedUntilMs, name])
    }

    func targetPausedUntil(_ name: String) throws -> Int64? {
        try int64("SELECT paused_until_ms FROM outbox_target WHERE name = $1", [name])
    }

    func outboxStatus() throws -> [OutboxTargetStatus] {
        try rows(
            """
            SELECT t.name, (SELECT COUNT(*) FROM outbox WHERE seq > t.taken_seq),
                (SELECT COUNT(*) FROM delivery WHERE target = t.name AND state = 'pending'),
                (SELECT COUNT(*) FROM delivery WHERE target = t.name AND state = 'dead'),
                (SELECT MIN(o.created_ms) FROM delivery d JOIN outbox o ON o.seq = d.seq WHERE d.target = t.name AND d.state = 'pending'),
                t.delivered, t.last_delivered_ms, t.last_error, t.last_error_ms, t.paused_until_ms
            FROM outbox_target t ORDER BY t.name
            """
        ).map { row in
            OutboxTargetStatus(
                name: try row[0], waiting: try row.int(1), pending: try row.int(2), dead: try row.int(3), oldestPendingMs: try row[4],
                delivered: try row.int(5), lastDeliveredMs: try row[6], lastError: try row[7], lastErrorMs: try row[8], pausedUntilMs: try row[9])
        }
    }

    func deliveries(target: String?, state: OutboxDelivery.State, limit: Int) throws -> [OutboxDelivery] {
        try rows(
            """
            SELECT \(Self.deliveryColumns) FROM delivery d JOIN outbox o ON o.seq = d.seq
            WHERE d.state = $1 AND ($2::text IS NULL OR d.target = $2) ORDER BY d.target, d.seq LIMIT $3
            """, [state.rawValue, target, Int64(limit)]
        ).map(Self.delivery)
    }

    func retryDeliveries(target: String?, entries: [String], nowMs: Int64) throws -> Int {
        var sql = """
            UPDATE delivery SET state = 'pending', next_ms = $1, refusals = 0, first_failed_ms = NULL, retried_ms = $1
            WHERE ($2::text IS NULL OR target = $2)
            """
        var binds: [PostgresBind] = [nowMs, target]
        if !entries.isEmpty {
            sql += " AND seq IN (SELECT seq FROM outbox WHERE id = ANY($3::text[]))"
            binds.append(entries)
        }
        let count = try run(sql, binds)
        try send("UPDATE outbox_target SET paused_until_ms = NULL WHERE $1::text IS NULL OR name = $1", [target])
        return count
    }

    func targetCheckpoint(_ name: String) throws -> String? {
        try string("SELECT checkpoint FROM outbox_target WHERE name = $1", [name])
    }

    func setTargetCheckpoint(_ name: String, to value: String?) throws {
        try send("UPDATE outbox_target SET checkpoint = $1 WHERE name = $2", [value, name])
    }

    func pruneOutbox(targets: [String], olderThanMs: Int64) throws -> Int {
        let through = targets.isEmpty
            ? try int64("SELECT MAX(seq) FROM outbox WHERE created_ms < $1", [olderThanMs])
            : try int64("SELECT MIN(taken_seq) FROM outbox_target WHERE name = ANY($1::text[])", [targets])
        guard let through else { return 0 }
        return try run(
            "DELETE FROM outbox WHERE seq <= $1 AND NOT EXISTS (SELECT 1 FROM delivery WHERE delivery.seq = outbox.seq)", [through])
    }
}
