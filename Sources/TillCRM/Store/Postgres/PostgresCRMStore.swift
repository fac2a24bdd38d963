import Foundation
public import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// Customer memory in PostgreSQL, for a chain of shops: every till-crm of every till writes
/// to one database (docs/crm.md, "A chain of shops"). The rules are the same as on SQLite;
/// only the store differs.
///
/// A transaction body is synchronous (`CRMStore` says why), so it runs on a thread pool of the
/// store's own, where waiting on postgres-nio's futures is allowed (never on an event loop or
/// the cooperative pool). Writes are SERIALIZABLE: two tills identifying the same new person at
/// the same moment cannot both see "no such customer" and both create one; PostgreSQL fails
/// one of them (40001), and the store runs that transaction again from the start, when it will
/// find the other's customer. Constraints and a retry, not luck.
public final class PostgresCRMStore: CRMStore, OutboxStore {
    public let settings: PostgresSettings
    public let outboxDoorbell = Doorbell()
    let connections: PostgresConnections
    let threads: NIOThreadPool
    let logger: Logger
    /// Tries of a transaction that lost a race before the error is given up to the caller.
    static let maximumTries = 20

    /// The schema is made (or brought up to date) by the first transaction, not here: a till
    /// started while the database is out of reach still starts, and waits for it.
    public init(settings: PostgresSettings, logger: Logger = Logger(label: "till-crm.postgres")) async throws {
        self.settings = settings
        self.logger = logger
        connections = PostgresConnections(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        threads = NIOThreadPool(numberOfThreads: settings.poolSize)
        threads.start()
    }

    private let migrated = Mutex(false)

    /// Hears every statement the store's transactions run (`recordingStatements`).
    private let observer = Mutex<(@Sendable (PostgresQuery) -> Void)?>(nil)

    private let lost = Mutex(0)
    /// Transactions run again because another till's won a race (`CRMStore.racesLost`).
    public var racesLost: Int { lost.withLock { $0 } }

    deinit {
        threads.shutdownGracefully { _ in }
    }

    /// Closes the connections and stops the store's threads.
    public func shutdown() {
        connections.close()
        threads.shutdownGracefully { _ in }
    }

    // MARK: CRMStore

    public func read<T: Sendable>(_ body: @escaping @Sendable (any CRMTransaction) throws -> T) async throws -> T {
        try await threads.runIfActive { [self] in
            try transaction(readOnly: true) { session in try body(PostgresTransaction(session: session)) }
        }
    }

    /// One transaction, its outbox entries written in it just before it commits.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any CRMTransaction) throws -> T) async throws -> T {
        let (result, entries) = try await threads.runIfActive { [self] in
            try transaction(readOnly: false) { session -> (T, Int) in
                let recorder = OutboxRecorder()
                let result = try body(PostgresTransaction(session: session, outbox: recorder))
                return (result, try recorder.flush(into: PostgresTransaction(session: session), atMs: Date().milliseconds))
            }
        }
        if entries > 0 { outboxDoorbell.ring() }
        return result
    }

    public func outboxRead<T: Sendable>(_ body: @escaping @Sendable (any OutboxTransaction) throws -> T) async throws -> T {
        try await threads.runIfActive { [self] in
            try transaction(readOnly: true) { session in try body(PostgresTransaction(session: session)) }
        }
    }

    public func outboxWrite<T: Sendable>(_ body: @escaping @Sendable (any OutboxTransaction) throws -> T) async throws -> T {
        try await threads.runIfActive { [self] in
            try transaction(readOnly: false) { session in try body(PostgresTransaction(session: session)) }
        }
    }

    /// Runs `body` in a transaction on a checked-out connection (on the store's threads), again
    /// from the start when it lost a race with another till's (serialization failure, deadlock).
    func transaction<T>(readOnly: Bool, _ body: (PostgresSession) throws -> T) throws -> T {
        if !migrated.withLock({ $0 }) {
            try migrate()
            migrated.withLock { $0 = true }
        }
        var tries = 0
        while true {
            tries += 1
            let connection: PostgresConnection
            do {
                connection = try connections.checkout()
            } catch {
                throw Self.explained(error, settings: settings)
            }
            var broken = false
            defer { connections.checkin(connection, broken: broken) }
            do {
                _ = try connection.run(
                    readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN ISOLATION LEVEL SERIALIZABLE", logger: logger)
                let session = PostgresSession(connection: connection, logger: logger, observer: observer.withLock { $0 })
                let result = try body(session)
                try session.settle()
                _ = try connection.run("COMMIT", logger: logger)
                return result
            } catch {
                if isUnreachable(error) {
                    broken = true
                } else {
                    do { _ = try connection.run("ROLLBACK", logger: logger) } catch { broken = true }
                }
                guard isRetryable(error) else { throw Self.explained(error, settings: settings) }
                guard tries < Self.maximumTries else {
                    throw StoreContended(description: "PostgreSQL at \(settings.description): this transaction lost \(tries) races in a row with other tills' (SQLSTATE \(sqlState(error) ?? "?"))")
                }
                lost.withLock { $0 += 1 }
                logger.debug("a transaction lost a race with another till's; running it again", metadata: [
                    "sqlstate": "\(sqlState(error) ?? "")", "try": "\(tries)",
                ])
                // Apart, at random, and further apart each time (2 ms doubling to 200 ms, about
                // 3 s over all the tries): two tills that collided should not collide again, and
                // a server slowed by load gets the time to let one through.
                Thread.sleep(forTimeInterval: min(0.2, 0.002 * Double(1 << min(tries - 1, 10))) * Double.random(in: 0.5...1))
            }
        }
    }

    /// An error that says what happened and what to check. postgres-nio's own description of
    /// its errors is deliberately empty (it could hold data); the server's message and code
    /// are what a technician needs.
    static func explained(_ error: any Error, settings: PostgresSettings) -> any Error {
        if isUnreachable(error) {
            let code = (error as? PSQLError).map { "\($0.code)" } ?? "\(error)"
            return StoreUnreachable(
                description: "PostgreSQL at \(settings.description) cannot be reached (\(code)): is it running, and may this till connect (listen_addresses, pg_hba.conf, a firewall)?")
        }
        guard let error = error as? PSQLError else { return error }
        if let info = error.serverInfo, let message = info[.message] {
            let state = info[.sqlState] ?? "?"
            let hint = state == "28P01" || state == "28000"
                ? ": check the user in [store] url and the password in password_file (or TILL_CRM_DB_PASSWORD)"
                : state == "3D000" ? ": create it (createdb -O USER DATABASE)" : ""
            return PostgresStoreError("PostgreSQL at \(settings.description): \(message) (SQLSTATE \(state))\(hint)")
        }
        return PostgresStoreError("PostgreSQL at \(settings.description): \(error.code)")
    }

    // MARK: migrations

    private func migrate() throws {
        let connection = try connections.checkout()
        var broken = false
        defer { connections.checkin(connection, broken: broken) }
        do {
            // Tills starting together against a new database: one creates it, the others wait.
            // The lock is taken before the transaction begins, so the transaction's view of the
            // database is taken after the one before it committed (it sees the tables made).
            _ = try connection.run("SELECT pg_advisory_lock(7345001)", logger: logger)
            defer { _ = try? connection.run("SELECT pg_advisory_unlock(7345001)", logger: logger) }
            _ = try connection.run("BEGIN", logger: logger)
            do {
                try migrate(on: connection)
                _ = try connection.run("COMMIT", logger: logger)
            } catch {
                _ = try? connection.run("ROLLBACK", logger: logger)
                throw error
            }
        } catch {
            broken = isUnreachable(error)
            throw Self.explained(error, settings: settings)
        }
    }

    private func migrate(on connection: PostgresConnection) throws {
        if let schema = settings.schema {
            guard schema.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw PostgresStoreError("[store] schema must be letters, digits and _ only, got \(schema)")
            }
            _ = try connection.run("CREATE SCHEMA IF NOT EXISTS \(schema)", logger: logger)
        }
        _ = try connection.run(
            "CREATE TABLE IF NOT EXISTS till_crm_migration (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
            logger: logger)
        let applied = Set(try connection.run("SELECT version FROM till_crm_migration", logger: logger).map { try PostgresValues($0).int(0) })
        for migration in PostgresSchema.migrations where !applied.contains(migration.version) {
            for statement in Self.statements(migration.sql) { _ = try connection.run(statement, logger: logger) }
            _ = try connection.run(
                "INSERT INTO till_crm_migration(version, name, applied_ms) VALUES ($1, $2, $3)",
                [Int64(migration.version), migration.name, Date().milliseconds], logger: logger)
        }
        var generator = SystemRandomNumberGenerator()
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        _ = try connection.run("INSERT INTO secret(name, value) VALUES ('suppression', $1) ON CONFLICT (name) DO NOTHING", [key], logger: logger)
    }

    /// A migration's statements, one at a time (a bound statement holds one command).
    static func statements(_ sql: String) -> [String] {
        sql.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }.joined(separator: "\n")
            .split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }
}

extension PostgresCRMStore {
    /// The first column of the first row as a number (0 when none): for tools and tests.
    func scalar(_ sql: String) async throws -> Int {
        try await threads.runIfActive { [self] in
            try transaction(readOnly: true) { session in
                try session.run(sql).rows.first.map { try PostgresValues($0).int(0) } ?? 0
            }
        }
    }

    /// Runs `body` and returns with its result every statement the store ran meanwhile, in
    /// order (for tests: what does a sale cost, and does each statement use an index).
    func recordingStatements<T>(_ body: () async throws -> T) async rethrows -> (T, [PostgresQuery]) {
        let recorded = Mutex<[PostgresQuery]>([])
        observer.withLock { $0 = { query in recorded.withLock { $0.append(query) } } }
        defer { observer.withLock { $0 = nil } }
        let result = try await body()
        return (result, recorded.withLock { $0 })
    }

    /// Runs `query` once more under `EXPLAIN (ANALYZE, BUFFERS)` in a transaction that is then
    /// rolled back, and returns PostgreSQL's plan with the pages (8 kB) the statement touched:
    /// a lookup touches a few; one that reads a whole table touches all of that table's.
    func explainAnalyzed(_ query: PostgresQuery) async throws -> (plan: String, pages: Int) {
        try await threads.runIfActive { [self] in
            let connection = try connections.checkout()
            defer { connections.checkin(connection, broken: false) }
            _ = try connection.run("BEGIN", logger: logger)
            defer { _ = try? connection.run("ROLLBACK", logger: logger) }
            let result = try connection.query(
                PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, BUFFERS) " + query.sql, binds: query.binds), logger: logger).wait()
            let lines = try result.rows.map { try PostgresValues($0)[0] as String }
            // The first "Buffers:" line is the top node's, which counts its children's too.
            let top = lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("Buffers:") } ?? ""
            let pages = ["hit=", "read="].reduce(0) { sum, key in
                guard let range = top.range(of: key) else { return sum }
                return sum + (Int(top[range.upperBound...].prefix { $0.isNumber }) ?? 0)
            }
            return (lines.joined(separator: "\n"), pages)
        }
    }

    /// Runs SQL statements (separated by semicolons) in one transaction: for tools and tests.
    func execute(_ sql: String) async throws {
        try await threads.runIfActive { [self] in
            try transaction(readOnly: false) { session in
                for statement in Self.statements(sql) { _ = try session.run(statement) }
            }
        }
    }

    /// The first column of the first row as text.
    func text(_ sql: String) async throws -> String? {
        try await threads.runIfActive { [self] in
            try transaction(readOnly: true) { session in
                try session.run(sql).rows.first.flatMap { try PostgresValues($0)[0] as String? }
            }
        }
    }
}
