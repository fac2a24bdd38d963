import Foundation
import GRDB
import Testing
import TillCore

/// The till-crm commands a shop owner uses to keep one record per person, run as they would
/// be: `import`, `customer find`, `duplicates`, `merge`, `unmerge`, `dismiss`, `customer show`.
@Suite("till-crm identity commands", .timeLimit(.minutes(2)))
struct CRMIdentityCLITests {
    let directory = NSTemporaryDirectory() + "till-crm-cli-" + UUID().uuidString.prefix(8)

    func crm(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
        try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, arguments + ["--data-dir", directory, "--region", "GB"], environment: environment)
    }

    func list(_ text: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/list-\(UUID().uuidString.prefix(4)).csv"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("import, find by any part of a name, email or phone (national or international), show with items and tender")
    func importAndFind() throws {
        let file = try list("""
            record_id,captured_at,given_name,family_name,email,phone,loyalty_card,postcode
            1,2024-01-01,Ann,Lee,ann.lee@example.com,07911 123456,,SW1A 1AA
            2,2024-01-02,Bea,Khan,bea@shop.example,+44 20 7946 0018,LOY7,M1 1AE
            3,2024-01-03,Cal,Reid,cal@example.org,,,
            """)
        let (code, out, error) = try crm(["import", file, "--clusters-out", directory + "/clusters.csv"])
        #expect(code == 0, "\(error)")
        #expect(out.contains("3 rows read; made 3 new customers"), "\(out)")
        #expect(try String(contentsOfFile: directory + "/clusters.csv", encoding: .utf8).hasPrefix("record_id,customer\n1,C"))
        for (query, who) in [("07911", "Ann Lee"), ("+44 7911", "Ann Lee"), ("0044 7911 12", "Ann Lee"), ("example.com", "Ann Lee"), ("0207946", "Bea Khan"),
                             ("shop.example", "Bea Khan"), ("khan", "Bea Khan"), ("Cal Reid", "Cal Reid"), ("loy7", "Bea Khan")] {
            let (found, text, _) = try crm(["customer", "find", query])
            #expect(found == 0 && text.contains(who), "customer find \(query): \(text)")
        }
        let (_, nobody, _) = try crm(["customer", "find", "07000"])
        #expect(!nobody.contains("Lee") && !nobody.contains("Khan"))
        let (shown, profile, _) = try crm(["customer", "show", "ann.lee@example.com"])
        #expect(shown == 0 && profile.contains("Ann Lee") && profile.contains("0 visits") && profile.contains("postcode: SW1A 1AA"), "\(profile)")
    }

    @Test("duplicates lists the evidence; merge, unmerge and dismiss decide; each refuses what cannot be done, saying why")
    func reviewQueue() throws {
        // "A. Lee" of Ann Lee's postcode, with a landline: perhaps Ann, perhaps her household.
        let file = try list("""
            record_id,captured_at,given_name,family_name,email,phone,postcode
            1,2024-01-01,Ann,Lee,ann@example.com,,SW1A 1AA
            2,2024-02-01,A.,Lee,,020 7946 0018,SW1A 1AA
            """)
        #expect(try crm(["import", file]).0 == 0)
        let (code, out, _) = try crm(["duplicates", "--json"])
        #expect(code == 0)
        let pairs = try JSONText.decode(out).arrayValue ?? []
        #expect(pairs.count == 1, "\(out)")
        let pair = try #require(pairs.first)
        #expect((pair["evidence"]?.arrayValue ?? []).contains { $0.stringValue?.contains("postcode exact") == true }, "\(pair)")
        let a = try #require(pair["a"]?["id"]?.stringValue), b = try #require(pair["b"]?["id"]?.stringValue)
        let (_, readable, _) = try crm(["duplicates"])
        #expect(readable.contains("evidence:") && readable.contains("till-crm merge \(a) \(b)"), "\(readable)")

        let (merged, mergeOut, mergeError) = try crm(["merge", a, b, "--reason", "same person", "--by", "sam"])
        #expect(merged == 0 && mergeOut.contains("undo with: till-crm unmerge"), "\(mergeError)")
        let (again, _, againError) = try crm(["merge", a, b])
        #expect(again == 1 && againError.contains("already one customer"), "\(againError)")
        let (_, emptyQueue, _) = try crm(["duplicates"])
        #expect(emptyQueue.contains("no possible duplicates"))
        let (_, show, _) = try crm(["customer", "show", "ann@example.com"])
        #expect(show.contains("also known as") && show.contains("merged"), "\(show)")

        let absorbed = mergeOut.split(separator: " ")[1]
        let (unmerged, unmergeOut, unmergeError) = try crm(["unmerge", String(absorbed)])
        #expect(unmerged == 0 && unmergeOut.contains("two customers again"), "\(unmergeError)")
        let (dismissed, _, dismissError) = try crm(["dismiss", a, b])
        #expect(dismissed == 0, "\(dismissError)")
        let (unknown, _, unknownError) = try crm(["merge", a, "nobody@example.com"])
        #expect(unknown == 1 && unknownError.contains("no customer matches"), "\(unknownError)")
    }

    @Test("import reports bad rows on stderr with their line, exits 2, and imports the rest")
    func badRows() throws {
        let file = try list("record_id,email,phone\n1,ann@example.com,\n2,bea@example,\n3,,12\n4,cal@example.com,\n")
        let (code, out, error) = try crm(["import", file])
        #expect(code == 2)
        #expect(error.contains("line 3: invalid email") && error.contains("line 4: invalid phone") && error.contains("2 bad rows skipped"), "\(error)")
        #expect(out.contains("made 2 new customers"), "\(out)")
        let (again, againOut, _) = try crm(["import", file])
        #expect(again == 2 && againOut.contains("2 imported before"), "\(againOut)")
    }

    @Test("a bad config file or region is refused at start, naming the file, the line and what to write")
    func config() throws {
        let config = directory + "/till-crm.toml"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "region = \"UK\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let (code, _, error) = try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, ["customer", "find", "x", "--config", config])
        #expect(code == 1 && error.contains("unknown region \"UK\"") && error.contains("GB"), "\(error)")
        try "regin = \"GB\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let (typo, _, typoError) = try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, ["customer", "find", "x", "--config", config])
        #expect(typo == 1 && typoError.contains("till-crm.toml:1") && typoError.contains("region"), "\(typoError)")
        let (missing, _, missingError) = try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, ["customer", "find", "x", "--config", directory + "/none.toml"])
        #expect(missing == 1 && missingError.contains("no config file"), "\(missingError)")
        // serve refuses an unknown region at start, instead of skipping every phone number for good.
        let (serve, _, serveError) = try runProcess(
            Binaries.directory.appendingPathComponent("till-crm").path, ["serve", "--region", "XX", "--data-dir", directory, "--socket", directory + "/none.sock"])
        #expect(serve == 1 && serveError.contains("unknown region \"XX\" (from --region)"), "\(serveError)")
    }

    @Test("moments: listed (terminal and JSON), snoozed, done, dismissed; mistakes say what to write")
    func moments() async throws {
        let file = try list("record_id,given_name,family_name,email\n1,Ann,Lee,ann@example.com\n")
        #expect(try crm(["import", file]).0 == 0)
        let database = try DatabaseQueue(path: directory + "/crm.sqlite")
        let customer = try #require(try await database.read { try String.fetchOne($0, sql: "SELECT id FROM customer") })
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO moment(id, customer_id, kind, due_ms, reason, channels, status, created_ms)
                    VALUES ('care:S1', ?, 'care_follow_up', 0, 'bought 899.00 EUR; a care follow-up', 'email,sms', 'open', 0)
                    """, arguments: [customer])
        }
        try database.close()
        let (listed, text, _) = try crm(["moments"])
        #expect(listed == 0 && text.contains("care_follow_up") && text.contains("Ann Lee") && text.contains("id: care:S1") && text.contains("transactional"), "\(text)")
        let (_, json, _) = try crm(["moments", "--due", "--json"])
        #expect((try JSONText.decode(json)).arrayValue?.first?["moment"] == "care_follow_up", "\(json)")
        let (noLength, _, noLengthError) = try crm(["moments", "snooze", "care:S1"])
        #expect(noLength == 1 && noLengthError.contains("--days N"), "\(noLengthError)")
        let (snoozed, snoozeOut, _) = try crm(["moments", "snooze", "care:S1", "--days", "3"])
        #expect(snoozed == 0 && snoozeOut.contains("snoozed until"))
        #expect(try crm(["moments", "--due"]).1.contains("nothing due today"))
        let (done, doneOut, _) = try crm(["moments", "done", "care:S1", "--by", "sam"])
        #expect(done == 0 && doneOut.contains("done: care:S1"))
        #expect(try crm(["moments"]).1.contains("no open moments"))
        #expect(try crm(["moments", "--all"]).1.contains("[done]"))
        let (unknown, _, unknownError) = try crm(["moments", "dismiss", "care:S9"])
        #expect(unknown == 1 && unknownError.contains("till-crm moments lists them"), "\(unknownError)")
    }
}
