// Identification at the till against a large customer base: the time `customer.identified`
// takes to decide who someone is (candidates by blocking key, scores, attach or create) and
// write it, with N customers in the store (default 1,000,000), each with a name, a postcode,
// an email, a mobile and a card, and the names and blocking keys the matcher keeps.
//
// Run: swift build -c release --product till-crm-identity-bench && .build/release/till-crm-identity-bench [CUSTOMERS] [IDENTIFICATIONS]
//
// Two figures per kind of identification: the identification itself (inside the transaction,
// as the service runs it in a batch) and the whole write transaction around a single one,
// with its commit (synchronous = FULL: an fsync of the WAL, which depends on the disk).
import Foundation
import GRDB
import TillCRM
import TillCore

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
}

let arguments = CommandLine.arguments
let customers = arguments.count > 1 ? Int(arguments[1])! : 1_000_000
let identifications = arguments.count > 2 ? Int(arguments[2])! : 2_000
let work = NSTemporaryDirectory() + "till-crm-identity-bench-" + UUID().uuidString
defer { try? FileManager.default.removeItem(atPath: work) }

// A population with the name distribution of a real one: a few given and family names are
// very common (the blocks a common name makes are large), most are rare.
let given = ["John", "David", "Michael", "James", "Sarah", "Emma", "Anna", "Thomas", "Laura", "Jon", "Katharina", "Jürgen", "Łukasz",
             "Maria", "Peter", "Paul", "Claire", "Sophie", "Oliver", "Lucy"] + (0..<480).map { "Given\($0)" }
let family = ["Smith", "Jones", "Taylor", "Brown", "Müller", "Schmidt", "Nowak", "Martin", "Williams", "Wilson"] + (0..<4990).map { "Family\($0)" }
func zipf(_ count: Int) -> Int {
    // Index i drawn with weight 1/(i+1): the first names are much more common.
    let u = Double.random(in: 0..<1)
    return min(count - 1, Int(pow(Double(count + 1), u)) - 1)
}
struct Person {
    var given: String
    var family: String
    var postcode: String
    var email: String
    var phone: String
    var card: String
}
func person(_ index: Int) -> Person {
    let g = given[zipf(given.count)], f = family[zipf(family.count)]
    let postcode = "PC\(index % 100_000)"
    return Person(
        given: g, family: f, postcode: postcode, email: "p\(index)@example.com", phone: "+447\(String(format: "%09d", 100_000_000 + index))",
        card: "LOY\(index)")
}

let database = try SQLiteCRMStore(path: work + "/crm.sqlite")
let people = (0..<customers).map(person)
let fillStarted = ContinuousClock.now
try database.writer.write { db in
    let customer = try db.makeStatement(sql: """
        INSERT INTO customer(id, name, given_name, family_name, postcode, first_seen_ms, last_seen_ms, visits) VALUES (?, ?, ?, ?, ?, 0, 0, 3)
        """)
    let identifier = try db.makeStatement(sql: "INSERT INTO identifier(customer_id, kind, raw, normalized, added_ms) VALUES (?, ?, ?, ?, 0)")
    let name = try db.makeStatement(sql: "INSERT INTO customer_name(customer_id, given, family, added_ms) VALUES (?, ?, ?, 0)")
    let key = try db.makeStatement(sql: "INSERT OR IGNORE INTO match_key(key, customer_id) VALUES (?, ?)")
    for (index, p) in people.enumerated() {
        let id = "C\(index)"
        try customer.execute(arguments: [id, "\(p.given) \(p.family)", p.given, p.family, p.postcode])
        try identifier.execute(arguments: [id, "email", p.email, p.email])
        try identifier.execute(arguments: [id, "phone", p.phone, p.phone])
        try identifier.execute(arguments: [id, "loyalty_card", p.card, p.card])
        try name.execute(arguments: [id, p.given, p.family])
        let record = MatchRecord(
            names: [.init(given: p.given, family: p.family)], emails: [p.email], phones: [p.phone], cards: [p.card], postcodes: [p.postcode])
        for blockingKey in record.blockingKeys { try key.execute(arguments: [blockingKey, id]) }
    }
}
try database.writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
let size = ((try? FileManager.default.attributesOfItem(atPath: database.path)[.size] as? Int) ?? 0) / 1_000_000
print("filled \(customers) customers in \(ContinuousClock.now - fillStarted); file \(size) MB")

let normalizer = IdentifierNormalizer(defaultRegion: "GB")
let counter = UnsafeCounter()
let identification = Identification(newID: { "N\(counter.next())" })

/// What the till is given, by kind.
enum Kind: String, CaseIterable {
    case email = "a known customer's email", card = "a known customer's card", phoneAndName = "a known customer's phone and name"
    case typo = "a known customer's email with a typo, and name", new = "a new person (email, phone, name)"
}
func input(_ kind: Kind, _ index: Int, _ people: [Person]) throws -> IdentityInput {
    let p = people[Int.random(in: 0..<people.count)]
    switch kind {
    case .email: return IdentityInput(identifiers: [try normalizer.email(p.email)])
    case .card: return IdentityInput(identifiers: [try normalizer.loyaltyCard(p.card)])
    case .phoneAndName: return IdentityInput(identifiers: [try normalizer.phone(p.phone)], givenName: p.given, familyName: p.family)
    case .typo:
        return IdentityInput(identifiers: [try normalizer.email(p.email.replacingOccurrences(of: "example.com", with: "exmaple.com"))], givenName: p.given, familyName: p.family, postcode: p.postcode)
    case .new:
        return IdentityInput(
            identifiers: [try normalizer.email("new\(index)@example.org"), try normalizer.phone("+4479\(String(format: "%08d", index))")],
            givenName: given[zipf(given.count)], familyName: family[zipf(family.count)], postcode: "PC\(index % 100_000)")
    }
}

final class UnsafeCounter: @unchecked Sendable {
    var value = 0
    func next() -> Int {
        value += 1
        return value
    }
}

let now = Int64(Date().timeIntervalSince1970 * 1000)
var all: [Double] = []
for kind in Kind.allCases {
    var inside: [Double] = []
    var whole: [Double] = []
    for index in 0..<(identifications / Kind.allCases.count) {
        let given = try input(kind, index, people)
        let started = ContinuousClock.now
        let elapsed = try await database.write { store -> Double in
            let clock = ContinuousClock.now
            _ = try identification.identify(given, atMs: now, sourceSeq: nil, in: store)
            return milliseconds(ContinuousClock.now - clock)
        }
        whole.append(milliseconds(ContinuousClock.now - started))
        inside.append(elapsed)
    }
    all += inside
    print(String(format: "%-50@ identify p50 %6.3f ms  p99 %6.3f ms   with its commit p50 %6.3f ms  p99 %6.3f ms",
                 kind.rawValue as NSString, percentile(inside, 50), percentile(inside, 99), percentile(whole, 50), percentile(whole, 99)))
}
print(String(format: "all identifications at %d customers: p50 %.3f ms, p99 %.3f ms (%d runs)", customers, percentile(all, 50), percentile(all, 99), all.count))

// The moment scan over every customer: each gets a purchase a week for eight weeks (their
// activity on the timeline), one in ten has gone quiet; the scan reads all of them in one pass.
if arguments.count > 3, arguments[3] == "--scan" {
    let weekMs: Int64 = 7 * 86_400_000
    let base = now - 200 * 86_400_000
    try database.writer.write { db in
        let entry = try db.makeStatement(sql: "INSERT INTO timeline(customer_id, occurred_ms, recorded_ms, type, source, payload) VALUES (?, ?, ?, 'purchase', ?, '{}')")
        let visits = try db.makeStatement(sql: "UPDATE customer SET visits = 8 WHERE id = ?")
        for index in 0..<customers {
            let id = "C\(index)"
            let start = index % 10 == 0 ? base : now - 60 * 86_400_000  // one in ten quiet for months
            for week in 0..<8 { try entry.execute(arguments: [id, start + Int64(week) * weekMs, start, "bench:\(index):\(week)"]) }
            try visits.execute(arguments: [id])
        }
    }
    let processor = TillEventProcessor(normalizer: normalizer)
    let scan = MomentScan(rules: processor.moments)
    let rssBefore = residentMB()
    let started = ContinuousClock.now
    let result = try await scan.run(in: database, processor: processor, now: Date(milliseconds: now))
    print(String(format: "moment scan over %d customers: %.2f s; %d regulars, %d quiet, %d raised (no marketing consent); RSS %.0f MB before, peak %.0f MB",
                 customers, milliseconds(ContinuousClock.now - started) / 1000, result.regulars, result.quiet, result.raised, rssBefore, peakMB()))
}

func residentMB() -> Double { statusField("VmRSS:") }
func peakMB() -> Double { statusField("VmHWM:") }
func statusField(_ name: String) -> Double {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix(name) } ?? ""
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}
