import Foundation
import GRDB
import Testing
import TillCore
@testable import TillCRM

extension Ledger {
    /// An identification at the till (a sale with `customer.identified`), `daysLater` days on;
    /// returns the customer the sale went to.
    @discardableResult
    func identify(_ fields: JSONValue, daysLater: Double = 0) async throws -> String {
        let sale = "S\(seq + 1)"
        _ = try await self.sale(sale, total: "1.00", identify: fields, daysLater: daysLater)
        let record = try #require(try await text(store, "SELECT customer_id FROM sale_link WHERE sale_id = '\(sale)' AND unlinked_ms IS NULL"))
        return try await store.read { try $0.root(of: record) }
    }

    func activeCustomers() async throws -> Int {
        try await count("SELECT COUNT(*) FROM customer WHERE status = 'active'")
    }
}

/// The hard cases of a till's customers, each through the live path (`customer.identified`
/// events into the processor, as `till-crm serve` applies them).
@Suite("Identity: the hard cases at the till", .timeLimit(.minutes(1)))
struct IdentityHardCaseTests {
    @Test("a household's phone: the partner who gives the shared landline with their own name is their own customer", arguments: StoreKind.all)
    func householdPhone(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let mary = try await ledger.identify(["phone": "020 7946 0018", "email": "mary@example.com", "name": "Mary Smith", "postcode": "SW1A 1AA"])
        let john = try await ledger.identify(["phone": "020 7946 0018", "name": "John Smith", "postcode": "SW1A 1AA"], daysLater: 3)
        #expect(john != mary)
        #expect(try await ledger.identify(["phone": "020 7946 0018", "name": "Mary Smith"], daysLater: 5) == mary)
        #expect(try await ledger.identify(["phone": "+44 20 7946 0018", "name": "John Smith"], daysLater: 6) == john)
        #expect(try await ledger.activeCustomers() == 2)
    }

    @Test("a recycled number: a mobile given years later under another name is a new person", arguments: StoreKind.all)
    func recycledNumber(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let anna = try await ledger.identify(["phone": "07911 123456", "name": "Anna Lee"])
        let tom = try await ledger.identify(["phone": "07911 123456", "name": "Tom Baker"], daysLater: 3 * 365)
        #expect(tom != anna)
        #expect(try await ledger.count("SELECT COUNT(*) FROM merge_log") == 0)
    }

    @Test("twins: same family, postcode, landline and email; different given names; two people", arguments: StoreKind.all)
    func twins(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let shared: [String: JSONValue] = ["phone": "020 7946 0018", "email": "jones.family@example.com", "postcode": "SW1A 1AA"]
        let emma = try await ledger.identify(.object(shared.merging(["name": "Emma Jones"]) { $1 }))
        let lily = try await ledger.identify(.object(shared.merging(["name": "Lily Jones"]) { $1 }), daysLater: 1)
        #expect(emma != lily)
        #expect(try await ledger.identify(.object(shared.merging(["name": "Emma Jones"]) { $1 }), daysLater: 2) == emma)
        #expect(try await ledger.identify(.object(shared.merging(["name": "LILY JONES"]) { $1 }), daysLater: 3) == lily)
        #expect(try await ledger.activeCustomers() == 2)
    }

    @Test("a nickname: Jon and Jonathan Smith at one postcode are one person, with a new phone recorded", arguments: StoreKind.all)
    func nickname(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let jonathan = try await ledger.identify(["email": "jonathan@example.com", "name": "Jonathan Smith", "postcode": "SW1A 1AA"])
        #expect(try await ledger.identify(["phone": "07911 123456", "name": "Jon Smith", "postcode": "sw1a1aa"], daysLater: 10) == jonathan)
        #expect(try await ledger.identify(["phone": "07911 123456"], daysLater: 20) == jonathan, "the phone was kept")
        #expect(try await ledger.activeCustomers() == 1)
    }

    @Test("a Gmail alias: dots and a +tag are the same mailbox", arguments: StoreKind.all)
    func gmailAlias(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let jon = try await ledger.identify(["email": "jon.smith@gmail.com", "name": "Jon Smith"])
        #expect(try await ledger.identify(["email": "jonsmith+shop@gmail.com"], daysLater: 1) == jon)
        #expect(try await ledger.identify(["email": "Jon.Smith@googlemail.com"], daysLater: 2) == jon)
    }

    @Test("a typo'd domain: gmial.com is gmail.com", arguments: StoreKind.all)
    func typoDomain(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let ann = try await ledger.identify(["email": "ann.lee@gmail.com", "name": "Ann Lee"])
        #expect(try await ledger.identify(["email": "ann.lee@gmial.com"], daysLater: 1) == ann)
        #expect(try await ledger.identify(["email": "ann.lee@gmail.co", "name": "Ann Lee"], daysLater: 2) == ann)
    }

    @Test("a replacement card: the new card given with the known email joins the old record, and then works on its own", arguments: StoreKind.all)
    func replacementCard(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let ann = try await ledger.identify(["loyalty": "LOY-1001", "email": "ann@example.com", "name": "Ann Lee"])
        #expect(try await ledger.identify(["loyalty": "LOY-2002", "email": "ann@example.com"], daysLater: 100) == ann)
        #expect(try await ledger.identify(["loyalty": "LOY-2002"], daysLater: 101) == ann)
        #expect(try await ledger.identify(["loyalty": "LOY-1001"], daysLater: 102) == ann, "the old card still names her")
    }

    @Test("same-name strangers: two John Smiths with nothing else in common stay two", arguments: StoreKind.all)
    func sameNameStrangers(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let first = try await ledger.identify(["email": "js@example.com", "name": "John Smith", "postcode": "SW1A 1AA"])
        let second = try await ledger.identify(["email": "john.smith@example.org", "name": "John Smith", "postcode": "M1 1AE"], daysLater: 1)
        #expect(first != second)
        #expect(try await ledger.count("SELECT COUNT(*) FROM duplicate_review") == 0, "a common name alone is not worth a person's time")
    }

    @Test("a visitor's national phone number is read in their own country when the email says so", arguments: StoreKind.all)
    func visitorPhone(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let jurgen = try await ledger.identify(["phone": "0151 12345678", "email": "jm@web.de", "name": "Jürgen Müller"])
        #expect(try await ledger.identify(["phone": "+49 151 12345678", "name": "Juergen Mueller"], daysLater: 2) == jurgen)
        #expect(try await ledger.count("SELECT COUNT(*) FROM identifier WHERE normalized = '+4915112345678'") == 1)
    }

    @Test("a shared landline given with no name goes to a household member, never to a new nameless customer", arguments: StoreKind.all)
    func sharedWithoutName(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let mary = try await ledger.identify(["phone": "020 7946 0018", "name": "Mary Smith"])
        let john = try await ledger.identify(["phone": "020 7946 0018", "name": "John Smith"], daysLater: 1)
        let someone = try await ledger.identify(["phone": "020 7946 0018"], daysLater: 2)
        #expect([mary, john].contains(someone))
        #expect(try await ledger.activeCustomers() == 2)
    }
}

/// Merges and their undoing: nothing moves, so an unmerge gives each person back exactly
/// what is theirs, including what happened to either while they were one.
@Suite("Identity: merge and unmerge", .timeLimit(.minutes(2)))
struct MergeTests {
    /// Everything a person's data is, in a form two stores can be compared by: the rows of
    /// every table, without the merge's own traces (its log, the review queue, its timeline
    /// entries) and without what depends on the wall clock.
    static func dump(_ store: SQLiteCRMStore) async throws -> [String: [String]] {
        try await store.writer.read { db in
            var tables: [String: [String]] = [:]
            let queries = [
                "customer": "SELECT id, name, given_name, family_name, postcode, status, merged_into, first_seen_ms, last_seen_ms, visits FROM customer",
                "identifier": "SELECT customer_id, kind, raw, normalized, active FROM identifier",
                "customer_name": "SELECT customer_id, given, family FROM customer_name",
                "consent": "SELECT customer_id, channel, purpose, granted, basis, source, sale_id FROM consent",
                // A note's source is a random id of the command that wrote it.
                "timeline": "SELECT customer_id, type, CASE WHEN source LIKE 'cli:%' THEN 'cli' ELSE source END, payload, occurred_ms FROM timeline WHERE type != 'merge'",
                "sale_link": "SELECT sale_id, customer_id, method, unlinked_ms IS NULL FROM sale_link",
                "match_key": "SELECT key, customer_id FROM match_key",
            ]
            for (table, sql) in queries {
                tables[table] = try Row.fetchAll(db, sql: sql).map { row in row.databaseValues.map(\.description).joined(separator: "|") }.sorted()
            }
            return tables
        }
    }

    @Test("merge picks the survivor by visits, logs who, why and the score, keeps every row, and old ids resolve to the survivor", arguments: StoreKind.all)
    func merge(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let ann = try await ledger.identify(["email": "ann@example.com", "name": "Ann Lee", "consent": ["email_marketing": true]])
        _ = try await ledger.identify(["email": "ann@example.com"], daysLater: 1)
        let annie = try await ledger.identify(["phone": "07911 123456", "name": "Annie Lee"], daysLater: 2)
        #expect(ann != annie)
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let merge = try await directory.merge("07911 123456", "ann@example.com", actor: "sam", reason: "same person, asked at the till")
        #expect(merge.survivor == ann && merge.absorbed == annie, "two visits beat one")
        #expect(merge.actor == "sam" && merge.reason.contains("asked") && !merge.automatic && merge.score != nil && !merge.evidence.isEmpty)
        #expect(try await directory.resolve(annie) == ann)
        #expect(try await directory.resolve("07911 123456") == ann)
        let profile = try await directory.profile(ann)
        #expect(profile["visits"] == 3)
        #expect(Set((profile["identifiers"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }) == ["email", "phone"])
        #expect((profile["timeline"]?.arrayValue ?? []).contains { $0["type"] == "merge" }, "the merge is on the timeline")
        #expect((profile["consent"]?.arrayValue ?? []).contains { $0["granted"] == true }, "consent is kept")
        // Merging again, or an erased or unknown customer, is refused with the reason.
        await #expect(throws: Merging.Refused.self) { try await directory.merge(ann, annie, actor: "sam", reason: "again") }
        // And the matcher never merges by itself what a person separated.
        _ = try await directory.unmerge(annie, actor: "sam")
        #expect(try await ledger.identify(["phone": "07911 123456", "email": "ann@example.com"], daysLater: 3) == ann)
        #expect(try await ledger.activeCustomers() == 2, "an unmerged pair is not merged again automatically")
    }

    @Test("unmerge refuses what it cannot do, saying what to do", arguments: StoreKind.all)
    func unmergeRefusals(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        let a = try await ledger.identify(["email": "a@example.com"])
        let b = try await ledger.identify(["email": "b@example.com"], daysLater: 1)
        let c = try await ledger.identify(["email": "c@example.com"], daysLater: 2)
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        await #expect { try await directory.unmerge(a, actor: "sam") } throws: { "\($0)".contains("no merge to undo") }
        let first = try await directory.merge(a, b, actor: "sam", reason: "test")
        _ = try await directory.merge(first.survivor, c, actor: "sam", reason: "test")
        await #expect { try await directory.unmerge(first.survivor, actor: "sam") } throws: { "\($0)".contains("say which") }
    }

    @Test("property: merge, then sales, notes and consent on either, then unmerge, gives exactly the store that never merged", arguments: 0..<12)
    func roundTrip(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let people = (0..<6).map { index in
            (email: "p\(index)@example.com", phone: "07911 1234\(String(format: "%02d", index))", card: "LOY\(1000 + index)", name: ["Ann Lee", "Bea Khan", "Cal Reid", "Dee Moss", "Eve Park", "Fin Shaw"][index])
        }
        // Each person's identifications, one identifier at a time (a combination of two people's
        // identifiers would merge them by itself, in the store that never merged too).
        func step(_ person: Int, _ kind: Int, _ day: Double) -> (String, JSONValue) {
            let p = people[person]
            switch kind {
            case 0: return ("identify", ["email": .string(p.email), "name": .string(p.name)])
            case 1: return ("identify", ["phone": .string(p.phone)])
            case 2: return ("identify", ["loyalty": .string(p.card), "consent": ["sms_marketing": .bool(day.truncatingRemainder(dividingBy: 2) == 0)]])
            default: return ("note", .string(p.email))
            }
        }
        let before = (0..<18).map { _ in (Int(random.next() % 6), 0) }.enumerated().map { ($0.element.0, $0.offset % 3) }
        let during = (0..<14).map { _ in (Int(random.next() % 2), Int(random.next() % 4)) }  // the two merged people only

        func run(merging: Bool) async throws -> [String: [String]] {
            let ledger = try await Ledger(deterministicIDs: true)
            let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
            var day = 0.0
            func apply(_ person: Int, _ kind: Int) async throws {
                day += 1
                let (action, value) = step(person, kind, day)
                if action == "note" {
                    let record = try await directory.record(value.stringValue!)
                    try await directory.add(.note, to: record, data: ["text": .string("note \(day)")], actor: "sam", at: ledger.start.addingTimeInterval(day * 86400))
                } else {
                    try await ledger.identify(value, daysLater: day)
                }
            }
            for (person, kind) in before { try await apply(person, kind) }
            // Everyone has an email record by now.
            for person in 0..<2 { try await apply(person, 0) }
            if merging { _ = try await directory.merge(people[0].email, people[1].email, actor: "sam", reason: "test") }
            for (person, kind) in during { try await apply(person, kind) }
            if merging { _ = try await directory.unmerge(people[1].email, actor: "sam") }
            return try await Self.dump(try #require(ledger.store as? SQLiteCRMStore))
        }
        let merged = try await run(merging: true)
        let never = try await run(merging: false)
        for table in never.keys.sorted() {
            #expect(merged[table] == never[table], "\(table) differs after merge and unmerge (seed \(seed))")
        }
    }
}

/// A small deterministic generator for property tests.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `till-crm import`: the same identification as the till, row by row.
@Suite("Identity: importing a customer list", .timeLimit(.minutes(2)))
struct ImportTests {
    func store() throws -> SQLiteCRMStore {
        try SQLiteCRMStore(path: NSTemporaryDirectory() + "till-crm-import-" + UUID().uuidString + "/crm.sqlite")
    }

    func importer(columns: [CustomerImport.Field: String] = [:]) -> CustomerImport {
        let counter = Counter()
        return CustomerImport(
            normalizer: IdentifierNormalizer(defaultRegion: "GB"), identification: Identification(newID: { counter.next() }), columns: columns)
    }

    let list = """
        record_id,captured_at,given_name,family_name,email,phone,loyalty_card,postcode
        1,2024-01-01,Jonathan,Smith,jon.smith@gmail.com,07911 123456,,SW1A 1AA
        2,2024-02-01,Jon,Smith,jonsmith@gmial.com,,,SW1A 1AA
        3,2024-03-01,Mary,Smith,,020 7946 0018,,SW1A 1AA
        4,2024-03-02,Jürgen,Müller,jm@web.de,0151 12345678,,10115
        5,2024-03-03,Juergen,Mueller,,+49 151 12345678,,
        6,2024-03-05,Anna,Kowalska,anna.k@wp.pl,,LOY 1,00-950
        7,2024-03-06,Anna,Kowalska,,,LOY1,
        8,2024-04-01,Ann,Kowalska,anna.k@wp.pl,,LOY2,00-950
        9,2024-04-02,Peter,Smith,,020 7946 0018,,SW1A 1AA
        """

    @Test("an import makes one customer per person of the list, through the matcher")
    func clusters() async throws {
        let store = try store()
        let report = try await importer().run(list, source: "old.csv", dryRun: false, in: store)
        #expect(report.bad.isEmpty && report.rows == 9)
        let cluster = Dictionary(uniqueKeysWithValues: report.clusters.map { ($0.record, $0.customer) })
        #expect(cluster["1"] == cluster["2"], "nickname, Gmail alias and typo'd domain")
        #expect(cluster["4"] == cluster["5"], "a German number read as German, names with and without umlauts")
        #expect(cluster["6"] == cluster["7"] && cluster["7"] == cluster["8"], "a replacement card with the known email")
        #expect(cluster["3"] != cluster["9"], "a household's landline, two given names")
        #expect(cluster["1"] != cluster["9"], "Jonathan and Peter Smith of one postcode")
        #expect(Set(cluster.values).count == 5)
    }

    @Test("bad rows are reported with their line and skipped whole; good rows go in")
    func badRows() async throws {
        let store = try store()
        let text = """
            record_id,captured_at,given_name,family_name,email,phone,loyalty_card,postcode
            1,2024-01-01,Ann,Lee,ann@example.com,,,
            2,2024-01-02,Bea,Khan,bea@example.com,12,,
            3,yesterday,Cal,Reid,cal@example.com,,,
            ,2024-01-04,Dee,Moss,dee@example.com,,,
            1,2024-01-05,Eve,Park,eve@example.com,,,
            6,2024-01-06,Fin,Shaw,fin@example,,,
            7,2024-01-07,Gus,Hale,gus@example.com,,
            8,2024-01-08,,,,,,SW1A 1AA
            "9","2024-01-09","Hal","Ode","hal@example.com","","",""
            """
        let report = try await importer().run(text, source: "bad.csv", dryRun: false, in: store)
        #expect(report.bad.map(\.line) == [3, 4, 5, 6, 7, 8, 9])
        let reasons = report.bad.map(\.reason)
        #expect(reasons[0].contains("phone") && reasons[1].contains("captured_at") && reasons[2].contains("record_id"))
        #expect(reasons[3].contains("repeats line 2") && reasons[4].contains("email") && reasons[5].contains("fields") && reasons[6].contains("nothing to identify"))
        #expect(report.created == 2)
        // Nothing of a bad row is in the store: not Bea's valid email beside her invalid phone.
        let emails = try await store.writer.read { try String.fetchAll($0, sql: "SELECT normalized FROM identifier ORDER BY normalized") }
        #expect(emails == ["ann@example.com", "hal@example.com"])
    }

    @Test("a file that cannot be imported at all says what is missing")
    func unusableFiles() async throws {
        let store = try store()
        await #expect { _ = try await importer().run("", source: "x", dryRun: false, in: store) } throws: { "\($0)".contains("empty") }
        await #expect { _ = try await importer().run("email\nann@example.com\n", source: "x", dryRun: false, in: store) } throws: { "\($0)".contains("record_id") }
        await #expect { _ = try await importer().run("record_id,notes\n1,hi\n", source: "x", dryRun: false, in: store) } throws: { "\($0)".contains("no column to identify") }
        await #expect { _ = try await importer(columns: [.email: "E-mail"]).run("record_id,email\n1,a@b.com\n", source: "x", dryRun: false, in: store) } throws: { "\($0)".contains("E-mail") }
    }

    @Test("columns can be mapped; a CSV with quotes, commas and line breaks in fields reads right")
    func mapping() async throws {
        let store = try store()
        let text = "Id,First Name,Surname,E-mail\r\nA1,\"Ann, called Annie\",Lee,ann@example.com\r\nA2,\"Bea\nKhan\",\"O\"\"Neill\",bea@example.com\r\n"
        let report = try await importer(columns: [.recordID: "Id", .givenName: "First Name", .familyName: "Surname", .email: "E-mail"])
            .run(text, source: "crm.csv", dryRun: false, in: store)
        #expect(report.bad.isEmpty && report.created == 2)
        let names = try await store.writer.read { try String.fetchAll($0, sql: "SELECT family_name FROM customer ORDER BY family_name") }
        #expect(names == ["Lee", "O\"Neill"])
    }

    @Test("importing the same list twice changes nothing the second time")
    func idempotent() async throws {
        let store = try store()
        let first = try await importer().run(list, source: "old.csv", dryRun: false, in: store)
        let after = try await MergeTests.dump(store)
        let second = try await importer().run(list, source: "old.csv", dryRun: false, in: store)
        #expect(second.alreadyImported == 9 && second.created == 0 && second.attached == 0 && second.merged == 0)
        #expect(try await MergeTests.dump(store) == after)
        #expect(Dictionary(uniqueKeysWithValues: second.clusters.map { ($0.record, $0.customer) }) == Dictionary(uniqueKeysWithValues: first.clusters.map { ($0.record, $0.customer) }))
    }

    @Test("a dry run changes nothing and reports the clusters the import makes")
    func dryRun() async throws {
        let store = try store()
        let dry = try await importer().run(list, source: "old.csv", dryRun: true, in: store)
        #expect(dry.dryRun)
        #expect(try await store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM customer") } == 0)
        let real = try await importer().run(list, source: "old.csv", dryRun: false, in: store)
        #expect(dry.clusters.map(\.record) == real.clusters.map(\.record))
        #expect(dry.clusters.map(\.customer) == real.clusters.map(\.customer), "the same customers (ids are made in the same order)")
    }

    @Test("live identification and import agree on the same records")
    func liveAndImportAgree() async throws {
        // The same records, once as a customer list and once as customer.identified events at the till.
        let rows = CSV.records(list).dropFirst().map(\.fields)
        let store = try store()
        let report = try await importer().run(list, source: "old.csv", dryRun: false, in: store)
        let imported = Dictionary(uniqueKeysWithValues: report.clusters.map { ($0.record, $0.customer) })

        let ledger = try await Ledger()
        var live: [String: String] = [:]
        for (index, row) in rows.sorted(by: { $0[1] < $1[1] }).enumerated() {
            var fields: [String: JSONValue] = [:]
            for (column, value) in zip(["record_id", "captured_at", "given_name", "family_name", "email", "phone", "loyalty", "postcode"], row)
            where !value.isEmpty && !["record_id", "captured_at"].contains(column) {
                fields[column] = .string(value)
            }
            live[row[0]] = try await ledger.identify(.object(fields), daysLater: Double(index))
        }
        // The same partition of records into people (ids differ: they are made anew).
        func partition(_ clusters: [String: String]) -> Set<Set<String>> {
            Set(Dictionary(grouping: clusters.keys) { clusters[$0]! }.values.map(Set.init))
        }
        #expect(partition(live) == partition(imported))
    }
}

/// Ids in order, for stores two runs must make alike.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> String {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return String(format: "C%05d", value)
    }
}

/// A generated till population with its truth (`Benchmarks/identity/population.py --people 400
/// --seed 7`): the import and the live path resolve it alike, and well.
@Suite("Identity: a generated population", .timeLimit(.minutes(3)))
struct PopulationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func truth() throws -> [String: String] {
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent("population-truth.csv"), encoding: .utf8)
        return Dictionary(uniqueKeysWithValues: CSV.records(text).dropFirst().map { ($0.fields[0], $0.fields[1]) })
    }

    /// Pairwise precision and recall of `clusters` (record → customer) against the truth (record → person).
    func pairwise(_ clusters: [String: String], _ truth: [String: String]) -> (precision: Double, recall: Double, falseMerges: Double) {
        func pairs(_ sizes: some Sequence<Int>) -> Int { sizes.reduce(0) { $0 + $1 * ($1 - 1) / 2 } }
        var joint: [String: Int] = [:], byCluster: [String: Int] = [:], byPerson: [String: Int] = [:]
        var people: [String: Set<String>] = [:]
        for (record, customer) in clusters {
            joint[customer + "|" + truth[record]!, default: 0] += 1
            byCluster[customer, default: 0] += 1
            byPerson[truth[record]!, default: 0] += 1
            people[customer, default: []].insert(truth[record]!)
        }
        let together = pairs(joint.values)
        let multi = byCluster.filter { $0.value > 1 }
        let mixed = multi.keys.filter { people[$0]!.count > 1 }.count
        return (Double(together) / Double(pairs(byCluster.values)), Double(together) / Double(pairs(byPerson.values)), Double(mixed) / Double(multi.count))
    }

    @Test("import and live identification make the same customers of a generated population, with few false merges")
    func importAndLiveAgree() async throws {
        // The till identifies by an email, phone or card (the contract's customer.identified);
        // a list may hold name-only rows too, which the live path cannot be given: left out of both.
        let file = try String(contentsOf: Self.fixtures.appendingPathComponent("population.csv"), encoding: .utf8)
        let lines = file.split(separator: "\n").map(String.init)
        let text = ([lines[0]] + lines.dropFirst().filter { line in
            let fields = CSV.records(line).first?.fields ?? []
            return fields.count == 8 && !(fields[4].isEmpty && fields[5].isEmpty && fields[6].isEmpty)
        }).joined(separator: "\n") + "\n"
        let truth = try truth()
        let store = try SQLiteCRMStore(path: NSTemporaryDirectory() + "till-crm-population-" + UUID().uuidString + "/crm.sqlite")
        let report = try await CustomerImport(normalizer: IdentifierNormalizer(defaultRegion: "GB"), identification: Identification())
            .run(text, source: "population.csv", dryRun: false, in: store)
        #expect(report.bad.count <= 2, "\(report.bad)")
        let imported = Dictionary(uniqueKeysWithValues: report.clusters.map { ($0.record, $0.customer) })

        // The same records as customer.identified events, oldest first, through the processor.
        let ledger = try await Ledger()
        var live: [String: String] = [:]
        let columns = ["record_id", "captured_at", "given_name", "family_name", "email", "phone", "loyalty", "postcode"]
        let rows = CSV.records(text).dropFirst().map(\.fields).filter { imported[$0[0]] != nil }.sorted { ($0[1], $0[0]) < ($1[1], $1[0]) }
        for row in rows {
            var fields: [String: JSONValue] = [:]
            for (column, value) in zip(columns, row) where !value.isEmpty && column != "record_id" && column != "captured_at" {
                fields[column] = .string(value)
            }
            let time = try #require(CustomerImport.date(row[1]))
            let outcomes = try await ledger.feed("customer.identified", .object(fields), at: time)
            guard case .recognized(let recognized)? = outcomes.last else { Issue.record("\(row[0]) not identified: \(outcomes)"); continue }
            live[row[0]] = recognized.customer
        }
        // Where a record went may have been merged away since: compare final customers.
        for (record, customer) in live { live[record] = try await ledger.store.read { try $0.root(of: customer) } }
        func partition(_ clusters: [String: String]) -> Set<Set<String>> {
            Set(Dictionary(grouping: clusters.keys) { clusters[$0]! }.values.map(Set.init))
        }
        #expect(partition(live) == partition(imported), "the live path and the import disagree")

        let quality = pairwise(imported, truth)
        #expect(quality.precision >= 0.99, "pairwise precision \(quality.precision)")
        #expect(quality.recall >= 0.85, "pairwise recall \(quality.recall)")
        #expect(quality.falseMerges <= 0.03, "false merges \(quality.falseMerges)")
    }
}

@Suite("Import pipeline", .timeLimit(.minutes(1)))
struct PipelineTests {
    @Test("results come in order, across chunks, each worked out once on the producer's thread", arguments: [0, 1, 255, 256, 257, 2_000])
    func inOrder(count: Int) {
        let calls = Counter()
        let pipeline = Pipeline(Array(0..<count)) { value -> Int in
            _ = calls.next()
            return value * 2
        }
        #expect(pipeline.count == count)
        for index in 0..<count { #expect(pipeline[index] == index * 2) }
        #expect(calls.next() == String(format: "C%05d", count + 1), "each input worked once")
    }
}
