import Foundation
import TillCore

/// What a store's write transaction does for the outbox: the recorder decides what to write,
/// the store how.
protocol OutboxWriting {
    /// `customer.updated` data for each customer that still exists and is not erased (in chunks:
    /// an import touches tens of thousands).
    func outboxSnapshots(of customers: [String]) throws -> [String: JSONValue]
    func appendOutbox(_ rows: [(id: String, customer: String, type: OutboxEntry.Kind, body: String, createdMs: Int64)]) throws
}

/// Collects, during one write transaction, what the outbox must hear of it, and writes it just
/// before the transaction commits: so entry and change commit together or not at all.
///
/// A customer touched many times in one transaction (a sale: visits, last seen, an identifier,
/// consent) gives one `customer.updated`, at the place of the first touch (so a receiver learns
/// of a new person before their first purchase), carrying the state at commit. An erasure in
/// the transaction drops everything recorded about the person before it.
final class OutboxRecorder {
    private enum Item {
        case customer(String)
        case entry(customer: String, type: OutboxEntry.Kind, data: JSONValue)

        var customer: String {
            switch self {
            case .customer(let id), .entry(let id, _, _): id
            }
        }
    }

    private var items: [Item] = []
    private var touched: Set<String> = []

    var isEmpty: Bool { items.isEmpty }

    /// The customer's record, identifiers, names or consent changed.
    func touch(_ customer: String) {
        if touched.insert(customer).inserted { items.append(.customer(customer)) }
    }

    func record(_ type: OutboxEntry.Kind, customer: String, data: JSONValue) {
        items.append(.entry(customer: customer, type: type, data: data))
    }

    /// The person's data is gone: so is what this transaction was about to say of them.
    func erased(_ customer: String, atMs ms: Int64) {
        items.removeAll { $0.customer == customer }
        touched.remove(customer)
        record(.customerErased, customer: customer, data: ["customer": .string(customer), "erased": OutboxPayload.time(ms)])
    }

    /// Writes the entries, in the order they happened; returns how many.
    @discardableResult
    func flush(into writer: some OutboxWriting, atMs ms: Int64) throws -> Int {
        guard !items.isEmpty else { return 0 }
        let customers = items.compactMap { item -> String? in if case .customer(let id) = item { id } else { nil } }
        let snapshots = customers.isEmpty ? [:] : try writer.outboxSnapshots(of: customers)
        var rows: [(id: String, customer: String, type: OutboxEntry.Kind, body: String, createdMs: Int64)] = []
        rows.reserveCapacity(items.count)
        for item in items {
            switch item {
            case .customer(let id):
                // Erased, or never saved (a transaction that touched and then rolled back its
                // own insert): nothing to say.
                guard let data = snapshots[id] else { continue }
                rows.append((OutboxEntry.newID(), id, .customerUpdated, OutboxEntry.body(type: .customerUpdated, atMs: ms, data: data), ms))
            case .entry(let customer, let type, let data):
                rows.append((OutboxEntry.newID(), customer, type, OutboxEntry.body(type: type, atMs: ms, data: data), ms))
            }
        }
        items.removeAll()
        touched.removeAll()
        try writer.appendOutbox(rows)
        return rows.count
    }
}
