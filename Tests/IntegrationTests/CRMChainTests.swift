import Foundation
import Testing
import TillClient
import TillCore

/// A PostgreSQL database for one test: its own schema in the test server's database
/// (`scripts/postgres-test-server.sh`), a till-crm.toml naming it, and psql to read it
/// independently of till-crm's own code.
struct ChainDatabase {
    static let url = ProcessInfo.processInfo.environment["TILL_TEST_POSTGRES_URL"]
    static let password = ProcessInfo.processInfo.environment["TILL_TEST_POSTGRES_PASSWORD"]
    /// CI requires the server (TILL_TEST_REQUIRE_POSTGRES=1): there a missing one fails the test.
    static let available = url != nil || ProcessInfo.processInfo.environment["TILL_TEST_REQUIRE_POSTGRES"] == "1"

    let schema = "chain_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    let directory: String

    init(directory: String) throws {
        guard Self.url != nil, Self.password != nil else {
            throw TimedOut(what: "a PostgreSQL server: TILL_TEST_POSTGRES_URL and TILL_TEST_POSTGRES_PASSWORD are not set (scripts/test.sh sets them)")
        }
        self.directory = directory
        let passwordFile = directory + "/db.password"
        try (Self.password! + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        chmod(passwordFile, 0o600)
    }

    /// A till-crm.toml for a till's follower; `port` overrides the server's (a proxy in between).
    func config(named name: String, port: Int? = nil) throws -> String {
        var url = Self.url!
        if let port, var components = URLComponents(string: url) {
            components.port = port
            url = components.string ?? url
        }
        let path = directory + "/\(name).toml"
        try """
            [store]
            url = "\(url)"
            password_file = "\(directory)/db.password"
            schema = "\(schema)"
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The first column of the first row, through psql.
    func query(_ sql: String) throws -> String {
        let components = URLComponents(string: Self.url!)!
        let (code, out, error) = try runProcess(
            "/usr/bin/psql",
            ["-h", components.host ?? "127.0.0.1", "-p", "\(components.port ?? 5432)", "-U", components.user ?? "", "-d",
             String(components.path.dropFirst()), "-tAX", "-c", sql],
            environment: ["PGPASSWORD": Self.password!, "PGOPTIONS": "-c search_path=\(schema)", "PATH": "/usr/bin:/bin"])
        guard code == 0 else { throw TimedOut(what: "psql answered \(code): \(error)") }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func count(_ sql: String) throws -> Int { Int(try query(sql)) ?? -1 }
}

@Suite("A chain of shops: many tills, one customer memory on PostgreSQL", .serialized, .enabled(if: ChainDatabase.available), .timeLimit(.minutes(5)))
struct CRMChainTests {
    @Test("4 tills, each with its own till-crm, selling to the same 12 people at once: every sale counted once, one customer per person, one cursor per till")
    func fourTills() async throws {
        let tills = 4
        let salesPerTill = 40
        let people = 12
        var daemons: [DaemonUnderTest] = []
        for _ in 0..<tills { daemons.append(try await DaemonUnderTest()) }
        let database = try ChainDatabase(directory: daemons[0].directory)
        var followers: [CRMUnderTest] = []
        for (index, daemon) in daemons.enumerated() {
            followers.append(try CRMUnderTest(daemon: daemon, config: try database.config(named: "till\(index)")))
        }
        // Every till sells at once; the same people come to every till, so two tills often
        // identify the same new person at the same moment.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, daemon) in daemons.enumerated() {
                group.addTask {
                    try await daemon.connect { till in
                        for sale in 0..<salesPerTill {
                            let person = (sale + index) % people
                            try await till.sale("T\(index)-S\(sale)", total: "10.00", identify: ["email": .string("p\(person)@example.com")])
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let expected = tills * salesPerTill
        try await followers[0].eventually("every sale applied", timeout: .seconds(120)) {
            try database.count("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'") == expected
        }
        #expect(try database.count("SELECT COUNT(*) FROM customer WHERE status = 'active'") == people, "one customer per person")
        #expect(try database.count("SELECT COUNT(*) FROM sale_link WHERE unlinked_ms IS NULL") == expected, "each sale linked once")
        #expect(try database.count("SELECT COALESCE(SUM(visits), 0) FROM customer") == expected, "each sale counted once")
        #expect(try database.count("SELECT COUNT(DISTINCT customer_id) FROM identifier WHERE kind = 'email'") == people)
        #expect(try database.count("SELECT COUNT(*) FROM cursor WHERE name LIKE 'tilld/%' AND seq > 0") == tills, "one cursor per till's stream")
        // Nothing was held back: each follower logged no event it could not store.
        for follower in followers { #expect(!follower.log.contains("could not be stored"), "\(follower.log.suffix(2000))") }
    }
}
