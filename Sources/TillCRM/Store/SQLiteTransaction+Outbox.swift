import Foundation
import GRDB
import TillCore

/// The outbox in SQLite: entries written with the change (`OutboxWriting`), and each target's
/// queue (`OutboxTransaction`).
extension SQLiteTransaction: OutboxWriting, OutboxTransaction {
    func outboxSnapshots(of customers: [String]) throws -> [String: JSONValue] {
        var snapshots: [String: JSONValue] = [:]
        var start = 0
        while start < customers.count {
            // 500 at a time, under SQLite's limit of bound parameters.
            let chunk = Array(customers[start..<min(start + 500, customers.count)])
            start += chunk.count
            let list = "(" + Array(repeating: "?", count: chunk.count).joined(separator: ", ") + ")"
            let arguments = StatementArguments(chunk)
            var identifiers: [String: [CustomerIdentifier]] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT customer_id, kind, raw, normalized FROM identifier WHERE active = 1 AND customer_id IN \(list) ORDER BY id",
                arguments: arguments)
            {
                identifiers[row[0], default: []].append(
                    CustomerIdentifier(kind: CustomerIdentifier.Kind(rawValue: row[1]) ?? .external, raw: row[2], normalized: row[3]))
            }
            var consent: [String: [ConsentRecord]] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT customer_id, channel, purpose, granted, basis, source, sale_id, source_seq, recorded_ms FROM consent WHERE customer_id IN \(list) ORDER BY id",
                arguments: arguments)
            {
                guard let channel = ConsentRecord.Channel(rawValue: row[1]), let purpose = ConsentRecord.Purpose(rawValue: row[2]),
                    let basis = ConsentRecord.Basis(rawValue: row[4])
                else { continue }
                consent[row[0], default: []].append(ConsentRecord(
                    customer: row[0], channel: channel, purpose: purpose, granted: row[3], basis: basis, source: row[5], sale: row[6],
                    sourceSeq: row[7], recordedMs: row[8]))
            }
            for id in chunk {
                guard let record = try customer(id), record.status != .erased else { continue }
                snapshots[id] = OutboxPayload.customer(record, identifiers: identifiers[id] ?? [], consent: consent[id] ?? [])
            }
        }
        return snapshots
    }

    func appendOutbox(_ rows: [(id: String, customer: String, type: OutboxEntry.Kind, body: String, createdMs: Int64)]) throws {
        try chunked(rows, columns: "id, customer_id, type, body, created_ms", into: "outbox") { row in
            [row.id.databaseValue, row.customer.databaseValue, row.type.rawValue.databaseValue, row.body.databaseValue, row.createdMs.databaseValue]
        }
    }

    // MARK: delivery

    private static func entry(_ row: Row, from column: Int = 0) -> OutboxEntry {
        OutboxEntry(
            seq: row[column], id: row[column + 1], customer: row[column + 2], type: OutboxEntry.Kind(rawValue: row[column + 3]) ?? .customerUpdated,
            body: row[column + 4], createdMs: row[column + 5])
    }

    private static let entryColumns = "o.seq, o.id, o.customer_id, o.type, o.body, o.created_ms"
    private static let deliveryColumns = "d.target, d.state, d.attempts, d.refusals, d.next_ms, d.first_failed_ms, d.last_error, d.retried_ms, " + entryColumns

    private static func delivery(_ row: Row) -> OutboxDelivery {
        OutboxDelivery(
            target: row[0], entry: entry(row, from: 8), state: OutboxDelivery.State(rawValue: row[1]) ?? .pending, attempts: row[2],
            refusals: row[3], nextMs: row[4], firstFailedMs: row[5], lastError: row[6], retriedMs: row[7])
    }

    func outboxCount() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0
    }

    func outboxEntries(afterSeq seq: Int64, limit: Int) throws -> [OutboxEntry] {
        try rows("SELECT \(Self.entryColumns) FROM outbox o WHERE o.seq > ? ORDER BY o.seq LIMIT ?", [seq, limit]).map { Self.entry($0) }
    }

    func registerTarget(_ name: String) throws {
        try run(
            "INSERT INTO outbox_target(name, taken_seq) VALUES (?, (SELECT COALESCE(MIN(seq), 1) - 1 FROM outbox)) ON CONFLICT(name) DO NOTHING",
            [name])
    }

    func takeOutbox(target: String, limit: Int, nowMs: Int64) throws -> Int {
        guard let taken = try Int64.fetchOne(db.cachedStatement(sql: "SELECT taken_seq FROM outbox_target WHERE name = ?"), arguments: [target]) else {
            return 0
        }
        try run(
            """
            INSERT INTO delivery(target, seq, customer_id, next_ms)
            SELECT ?, seq, customer_id, ? FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?
            """, [target, nowMs, taken, limit])
        let count = db.changesCount
        if count > 0 {
            try run("UPDATE outbox_target SET taken_seq = (SELECT MAX(seq) FROM delivery WHERE target = ?1) WHERE name = ?1", [target])
        }
        return count
    }

    func dueDeliveries(target: String, nowMs: Int64, headsOnly: Bool, limit: Int) throws -> [OutboxDelivery] {
        // A customer's oldest pending entry goes first: one that is not yet due (backing off)
        // holds back that customer's later ones, never another customer's.
        let heads = headsOnly
            ? " AND NOT EXISTS (SELECT 1 FROM delivery e WHERE e.target = d.target AND e.customer_id = d.customer_id AND e.state = 'pending' AND e.seq < d.seq)"
            : ""
        return try rows(
            """
            SELECT \(Self.deliveryColumns) FROM delivery d JOIN outbox o ON o.seq = d.seq
            WHERE d.target = ? AND d.state = 'pending' AND d.next_ms <= ?\(heads) ORDER BY d.seq LIMIT ?
            """, [target, nowMs, limit]
        ).map(Self.delivery)
    }

    func nextDueMs(target: String) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(next_ms) FROM delivery WHERE target = ? AND state = 'pending'"), arguments: [target])
    }

    func markDelivered(target: String, seqs: [Int64], atMs ms: Int64) throws {
        guard !seqs.isEmpty else { return }
        let statement = try db.cachedStatement(sql: "DELETE FROM delivery WHERE target = ? AND seq = ?")
        for seq in seqs { try statement.execute(arguments: [target, seq]) }
        try run(
            "UPDATE outbox_target SET delivered = delivered + ?, last_delivered_ms = ?, last_error = NULL, paused_until_ms = NULL WHERE name = ?",
            [seqs.count, ms, target])
    }

    func markFailed(_ delivery: OutboxDelivery) throws {
        try run(
            """
            UPDATE delivery SET state = ?, attempts = ?, refusals = ?, next_ms = ?, first_failed_ms = ?, last_error = ?
            WHERE target = ? AND seq = ?
            """,
            [delivery.state.rawValue, delivery.attempts, delivery.refusals, delivery.nextMs, delivery.firstFailedMs, delivery.lastError,
             delivery.target, delivery.entry.seq])
    }

    func setTargetHealth(_ name: String, error: String?, atMs ms: Int64, pausedUntilMs: Int64?) throws {
        try run(
            "UPDATE outbox_target SET last_error = ?, last_error_ms = CASE WHEN ? IS NULL THEN last_error_ms ELSE ? END, paused_until_ms = ? WHERE name = ?",
            [error, error, ms, pausedUntilMs, name])
    }

    func targetPausedUntil(_ name: String) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT paused_until_ms FROM outbox_target WHERE name = ?"), arguments: [name])
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
                name: row[0], waiting: row[1], pending: row[2], dead: row[3], oldestPendingMs: row[4], delivered: row[5], lastDeliveredMs: row[6],
                lastError: row[7], lastErrorMs: row[8], pausedUntilMs: row[9])
        }
    }

    func deliveries(target: String?, state: OutboxDelivery.State, limit: Int) throws -> [OutboxDelivery] {
        try rows(
            """
            SELECT \(Self.deliveryColumns) FROM delivery d JOIN outbox o ON o.seq = d.seq
            WHERE d.state = ? AND (? IS NULL OR d.target = ?) ORDER BY d.target, d.seq LIMIT ?
            """, [state.rawValue, target, target, limit]
        ).map(Self.delivery)
    }

    func retryDeliveries(target: String?, entries: [String], nowMs: Int64) throws -> Int {
        var sql = """
            UPDATE delivery SET state = 'pending', next_ms = ?, refusals = 0, first_failed_ms = NULL, retried_ms = ?
            WHERE (? IS NULL OR target = ?)
            """
        var arguments: [(any DatabaseValueConvertible)?] = [nowMs, nowMs, target, target]
        if !entries.isEmpty {
            sql += " AND seq IN (SELECT seq FROM outbox WHERE id IN (" + entries.map { _ in "?" }.joined(separator: ", ") + "))"
            arguments += entries
        }
        try db.execute(sql: sql, arguments: StatementArguments(arguments.map { $0?.databaseValue ?? .null }))
        let count = db.changesCount
        try db.execute(
            sql: "UPDATE outbox_target SET paused_until_ms = NULL WHERE ? IS NULL OR name = ?", arguments: [target, target])
        return count
    }

    func targetCheckpoint(_ name: String) throws -> String? {
        try string("SELECT checkpoint FROM outbox_target WHERE name = ?", [name])
    }

    func setTargetCheckpoint(_ name: String, to value: String?) throws {
        try run("UPDATE outbox_target SET checkpoint = ? WHERE name = ?", [value, name])
    }

    func pruneOutbox(targets: [String], olderThanMs: Int64) throws -> Int {
        let through: Int64?
        if targets.isEmpty {
            through = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM outbox WHERE created_ms < ?", arguments: [olderThanMs])
        } else {
            let list = targets.map { _ in "?" }.joined(separator: ", ")
            through = try Int64.fetchOne(
                db, sql: "SELECT MIN(taken_seq) FROM outbox_target WHERE name IN (\(list))", arguments: StatementArguments(targets))
        }
        guard let through else { return 0 }
        // Entries still queued for any target (configured or not: one removed from the config
        // and added back finds its queue) stay.
        try db.execute(
            sql: "DELETE FROM outbox WHERE seq <= ? AND NOT EXISTS (SELECT 1 FROM delivery WHERE delivery.seq = outbox.seq)",
            arguments: [through])
        return db.changesCount
    }
}
