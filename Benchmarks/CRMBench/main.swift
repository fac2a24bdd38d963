// till-crm figures measured in-process (no socket, no process start-up in the timings):
//   lookup latency by phone, email and card at N customers; timeline query latency for a
//   customer with 500 events; database size per sales ingested through the real processor.
// Run: swift build -c release --product till-crm-bench && .build/release/till-crm-bench [CUSTOMERS] [SALES]
// With TILL_TEST_POSTGRES_URL/PASSWORD set (eval "$(scripts/postgres-test-server.sh)"), the
// lookups run on PostgreSQL too, beside SQLite in the same run.
import Foundation
import GRDB
import TillCRM
import TillCore

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
}

func measure(_ label: String, _ runs: Int, _ body: (Int) async throws -> Void) async rethrows {
    var samples: [Double] = []
    samples.reserveCapacity(runs)
    for index in 0..<runs {
        let start = ContinuousClock.now
        try await body(index)
        let elapsed = ContinuousClock.now - start
        samples.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
    }
    print(String(format: "%-44@ p50 %8.1f µs   p99 %8.1f µs   (%d runs)", label as NSString, percentile(samples, 50), percentile(samples, 99), runs))
}

func fileSize(_ path: String) -> Int {
    ["", "-wal"].reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: path + $1)[.size] as? Int) ?? 0) }
}

let arguments = CommandLine.arguments
let customers = arguments.count > 1 ? Int(arguments[1])! : 1_000_000
let sales = arguments.count > 2 ? Int(arguments[2])! : 100_000
let work = NSTemporaryDirectory() + "till-crm-bench-" + UUID().uuidString
let normalizer = IdentifierNormalizer(defaultRegion: "GB")

// 1. N customers, each with an email, a phone and a card, inserted in bulk.
let database = try SQLiteCRMStore(path: work + "/lookup/crm.sqlite")
let fill = ContinuousClock.now
try database.writer.write { db in
    let customer = try db.makeStatement(sql: "INSERT INTO customer(id, name, first_seen_ms, last_seen_ms, visits) VALUES (?, ?, 0, 0, 1)")
    let identifier = try db.makeStatement(sql: "INSERT INTO identifier(customer_id, kind, raw, normalized, added_ms) VALUES (?, ?, ?, ?, 0)")
    for index in 0..<customers {
        let id = "C\(index)"
        try customer.execute(arguments: [id, "Customer \(index)"])
        try identifier.execute(arguments: [id, "email", "c\(index)@example.com", "c\(index)@example.com"])
        let phone = "+4479\(String(format: "%08d", index))"
        try identifier.execute(arguments: [id, "phone", phone, phone])
        try identifier.execute(arguments: [id, "loyalty_card", "LOY\(index)", "LOY\(index)"])
    }
}
print("filled \(customers) customers in \(ContinuousClock.now - fill); file \(fileSize(database.path) / 1_000_000) MB")
let directory = CustomerDirectory(store: database, normalizer: normalizer)
var generator = SystemRandomNumberGenerator()
let picks = (0..<2000).map { _ in Int.random(in: 0..<customers, using: &generator) }
await Task.yield()
try await measure("lookup by phone (\"07 9...\" national form)", picks.count) { i in
    _ = try await directory.resolve("079\(String(format: "%08d", picks[i]))")
}
try await measure("lookup by email (mixed case)", picks.count) { i in _ = try await directory.resolve("C\(picks[i])@Example.com") }
try await measure("lookup by card", picks.count) { i in _ = try await directory.resolve("loy\(picks[i])") }

// 1b. The same customers and lookups on PostgreSQL, in the same run, when one is given
// (eval "$(scripts/postgres-test-server.sh)": a new schema in that database, left behind).
if let url = ProcessInfo.processInfo.environment["TILL_TEST_POSTGRES_URL"] {
    let password = ProcessInfo.processInfo.environment["TILL_TEST_POSTGRES_PASSWORD"]
    var settings = try PostgresSettings(url: url, password: password)
    settings.schema = "bench_" + UUID().uuidString.prefix(8).lowercased()
    let postgres = try await PostgresCRMStore(settings: settings)
    _ = try await postgres.read { try $0.cursor("bench") }  // makes the schema
    let fill = ContinuousClock.now
    // Filled by the server itself (generate_series): the figure is the lookups, not the load.
    let parts = URLComponents(string: url)!
    let psql = Process()
    psql.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
    psql.arguments = ["-h", parts.host!, "-p", "\(parts.port ?? 5432)", "-U", parts.user!, "-d", String(parts.path.dropFirst()), "-qX", "-v", "ON_ERROR_STOP=1", "-c", """
        BEGIN;
        INSERT INTO customer(id, name, first_seen_ms, last_seen_ms, visits) SELECT 'C' || i, 'Customer ' || i, 0, 0, 1 FROM generate_series(0, \(customers - 1)) i;
        INSERT INTO identifier(customer_id, kind, raw, normalized, added_ms)
            SELECT 'C' || i, 'email', 'c' || i || '@example.com', 'c' || i || '@example.com', 0 FROM generate_series(0, \(customers - 1)) i
            UNION ALL SELECT 'C' || i, 'phone', '+4479' || lpad(i::text, 8, '0'), '+4479' || lpad(i::text, 8, '0'), 0 FROM generate_series(0, \(customers - 1)) i
            UNION ALL SELECT 'C' || i, 'loyalty_card', 'LOY' || i, 'LOY' || i, 0 FROM generate_series(0, \(customers - 1)) i;
        COMMIT;
        ANALYZE customer; ANALYZE identifier;
        """]
    psql.environment = ["PGPASSWORD": password ?? "", "PGOPTIONS": "-c search_path=\(settings.schema!)"]
    try psql.run()
    psql.waitUntilExit()
    guard psql.terminationStatus == 0 else { fatalError("psql could not fill the PostgreSQL store") }
    print("filled \(customers) customers in PostgreSQL (schema \(settings.schema!)) in \(ContinuousClock.now - fill)")
    let onPostgres = CustomerDirectory(store: postgres, normalizer: normalizer)
    try await measure("PostgreSQL: lookup by phone (national form)", picks.count) { i in
        _ = try await onPostgres.resolve("079\(String(format: "%08d", picks[i]))")
    }
    try await measure("PostgreSQL: lookup by email (mixed case)", picks.count) { i in _ = try await onPostgres.resolve("C\(picks[i])@Example.com") }
    try await measure("PostgreSQL: lookup by card", picks.count) { i in _ = try await onPostgres.resolve("loy\(picks[i])") }
    // And SQLite again, after: the machine is shared, so the two are measured side by side.
    try await measure("SQLite again: lookup by phone", picks.count) { i in _ = try await directory.resolve("079\(String(format: "%08d", picks[i]))") }
    try await measure("SQLite again: lookup by email", picks.count) { i in _ = try await directory.resolve("C\(picks[i])@Example.com") }
    try await measure("SQLite again: lookup by card", picks.count) { i in _ = try await directory.resolve("loy\(picks[i])") }
    postgres.shutdown()
}

// 2. Timeline of a customer with 500 events: purchases of 5 lines, as the processor writes them.
let purchase = JSONText.encode(JSONValue.object([
    "sale": "S1", "receipt": "R1", "total": "12.50", "currency": "EUR",
    "lines": .array((0..<5).map { line in
        ["sale": "S1", "name": .string("Item \(line)"), "qty": 1, "unit_price": "2.50", "amount": "2.50", "gtin": "4006381333931"]
    }),
]))
try database.writer.write { db in
    let entry = try db.makeStatement(sql: "INSERT INTO timeline(customer_id, occurred_ms, recorded_ms, type, source, payload) VALUES ('C1', ?, ?, 'purchase', ?, ?)")
    for index in 0..<500 {
        try entry.execute(arguments: [index * 1000, index * 1000, "bench:\(index)", purchase])
    }
}
try await measure("timeline of a customer with 500 events", 300) { _ in _ = try await directory.profile("C1", timelineLimit: 500) }
try await measure("  of which the store read (rows + JSON decode)", 300) { _ in
    _ = try await database.read { try $0.timeline(of: "C1", limit: 500) }
}

// 3. Size per sale: sales of 5 lines, 1 in 2 identified (of 10,000 customers), through the real processor.
let ingest = try SQLiteCRMStore(path: work + "/ingest/crm.sqlite")
let empty = fileSize(ingest.path)
let processor = TillEventProcessor(normalizer: normalizer)
let start = Date(timeIntervalSince1970: 1_764_000_000)
let ingestClock = ContinuousClock.now
var seq: Int64 = 0
for batch in stride(from: 0, to: sales, by: 1000) {
    var events: [Event] = []
    for sale in batch..<min(sales, batch + 1000) {
        func add(_ topic: String, _ data: JSONValue) {
            seq += 1
            events.append(Event(seq: seq, time: start.addingTimeInterval(Double(seq)), topic: topic, device: nil, data: data))
        }
        let id = JSONValue.string("S\(sale)")
        add("sale.started", ["sale": id, "till": "T1"])
        for line in 0..<5 {
            add("sale.line", ["sale": id, "name": .string("Item \(line)"), "qty": 1, "unit_price": "2.50", "amount": "2.50", "gtin": "4006381333931"])
        }
        if sale % 2 == 0 { add("customer.identified", ["sale": id, "email": .string("c\(sale % 10_000)@example.com")]) }
        add("sale.completed", ["sale": id, "total": "12.50", "currency": "EUR", "receipt": .string("R\(sale)")])
    }
    _ = try await ingest.apply(events) { event, store in try processor.process(event, in: store) }
}
let ingestTime = ContinuousClock.now - ingestClock
try ingest.writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
let bytes = fileSize(ingest.path) - empty
print("ingested \(sales) sales (\(seq) events) through the processor in \(ingestTime) (batched transactions)")
print(String(format: "database size: %.1f MB for %d sales -> %.0f MB per 1,000,000 sales", Double(bytes) / 1e6, sales, Double(bytes) / Double(sales) * 1e6 / 1e6))
try? FileManager.default.removeItem(atPath: work)
