import GRDB
import TillCore

/// The one way entries reach the immutable timeline. `source` is the idempotency key
/// (`purchase:SALE`, `refund:ID`, `tilld:SEQ`, `cli:UUID`): the same source never lands twice.
enum Timeline {
    enum EntryType: String, Sendable {
        case purchase, refund, exchange, note, conversation, opportunity, service, consent, merge
    }

    /// Appends an entry; returns false if an entry with this source was already there.
    @discardableResult
    static func append(
        _ db: Database, customer: String, type: EntryType, source: String, payload: JSONValue,
        occurredMs: Int64, recordedMs: Int64, actor: String? = nil
    ) throws -> Bool {
        try db.execute(
            sql: """
                INSERT INTO timeline(customer_id, occurred_ms, recorded_ms, type, source, payload, actor)
                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(source) DO NOTHING
                """,
            arguments: [customer, occurredMs, recordedMs, type.rawValue, source, JSONText.encode(payload), actor])
        return db.changesCount > 0
    }
}
