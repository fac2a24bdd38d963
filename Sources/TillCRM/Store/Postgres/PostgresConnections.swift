import Foundation
import Logging
import NIOCore
import NIOPosix
public import PostgresNIO
import Synchronization

/// Where the PostgreSQL store is, from `[store] url` (`postgres://user@host:port/database`)
/// and a password from a file or the environment, never from the command line (which any
/// user on the box can read in /proc).
public struct PostgresSettings: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// Connections (and threads running transactions) at most.
    public var poolSize: Int = 4
    /// The schema the tables live in (nil: the user's default, `public`). Several shops' or
    /// tests' memories can share a database this way.
    public var schema: String? = nil

    public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String, poolSize: Int = 4) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.poolSize = poolSize
    }

    /// Reads `postgres://user[:password]@host[:port]/database`. A password in the URL is
    /// refused: a config file is read by more than the service (backups, support bundles).
    public init(url: String, password: String?) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
            throw PostgresStoreError("[store] url must look like postgres://USER@HOST:5432/DATABASE, got \(url)")
        }
        guard components.password == nil else {
            throw PostgresStoreError("[store] url holds a password; put it in a file named by password_file (mode 0600) or in TILL_CRM_DB_PASSWORD instead")
        }
        guard let host = components.host, !host.isEmpty else { throw PostgresStoreError("[store] url names no host: postgres://USER@HOST/DATABASE") }
        guard let user = components.user, !user.isEmpty else { throw PostgresStoreError("[store] url names no user: postgres://USER@HOST/DATABASE") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw PostgresStoreError("[store] url names no database: postgres://USER@HOST/DATABASE") }
        self.init(host: host, port: components.port ?? 5432, username: user, password: password, database: database)
    }

    /// For messages: never the password.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }
}

public struct PostgresStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A transaction that kept losing races with other tills' (serialization failures, deadlocks)
/// through every retry: nothing is wrong with the data or the disk; the server is busy with
/// many tills writing at once. The event is tried again later, like any that was not stored.
public struct StoreContended: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// PostgreSQL's error code for an error, when the server gave one ("40001": a serialization
/// failure, "23505": a unique constraint).
func sqlState(_ error: any Error) -> String? {
    (error as? PSQLError)?.serverInfo?[.sqlState]
}

/// Whether a transaction that failed this way should simply run again: another till's
/// transaction won a race (serialization failure, deadlock) or took a unique key first.
func isRetryable(_ error: any Error) -> Bool {
    ["40001", "40P01"].contains(sqlState(error) ?? "")
}

/// Whether the server cannot be reached at all (down, network gone), as against a statement
/// it refused.
func isUnreachable(_ error: any Error) -> Bool {
    guard let error = error as? PSQLError else { return error is ChannelError || error is IOError || error is NIOConnectionError }
    return [.connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection].contains(error.code)
}

/// A few connections a transaction checks out and in, from a thread that may block
/// (`PostgresCRMStore` runs transaction bodies on a thread pool of its own). A connection
/// found closed is dropped and a new one made; every wait is bounded.
final class PostgresConnections: Sendable {
    private let settings: PostgresSettings
    private let logger: Logger
    private let group: any EventLoopGroup
    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var nextID = 1
        var closed = false
    }
    private let state = Mutex(State())
    private let available: DispatchSemaphore

    init(settings: PostgresSettings, group: any EventLoopGroup, logger: Logger) {
        self.settings = settings
        self.group = group
        self.logger = logger
        available = DispatchSemaphore(value: settings.poolSize)
    }

    /// Blocks until a connection is free (at most `timeout`), connecting one when needed.
    func checkout(timeout: Duration = .seconds(30)) throws -> PostgresConnection {
        let (seconds, attoseconds) = timeout.components
        guard available.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))) == .success else {
            throw PostgresStoreError("no PostgreSQL connection came free within \(timeout) (\(settings.poolSize) in use): a transaction is stuck, or the server is slow")
        }
        let (reused, id) = state.withLock { state -> (PostgresConnection?, Int) in
            while let connection = state.idle.popLast() {
                if !connection.isClosed { return (connection, 0) }
                state.open -= 1
            }
            state.open += 1
            defer { state.nextID += 1 }
            return (nil, state.nextID)
        }
        if let reused { return reused }
        do {
            var configuration = PostgresConnection.Configuration(
                host: settings.host, port: settings.port, username: settings.username, password: settings.password,
                database: settings.database, tls: .disable)
            configuration.options.connectTimeout = .seconds(5)
            if let schema = settings.schema { configuration.options.additionalStartupParameters = [("search_path", schema)] }
            return try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
        } catch {
            state.withLock { $0.open -= 1 }
            available.signal()
            throw error
        }
    }

    /// Gives a connection back; a broken one (or any after `close`) is closed instead.
    func checkin(_ connection: PostgresConnection, broken: Bool = false) {
        let keep = state.withLock { state -> Bool in
            guard !broken, !state.closed, !connection.isClosed else {
                state.open -= 1
                return false
            }
            state.idle.append(connection)
            return true
        }
        if !keep { connection.close().whenComplete { _ in } }
        available.signal()
    }

    deinit {
        close()
    }

    /// Closes the idle connections (and each one checked in later), waiting for them.
    func close() {
        let idle = state.withLock { state -> [PostgresConnection] in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for connection in idle { try? connection.close().wait() }
    }
}

extension PostgresConnection {
    /// Runs one statement and waits for all its rows (from a thread that may block).
    func run(_ sql: String, _ values: [PostgresBind] = [], logger: Logger) throws -> PostgresQueryResult {
        try query(PostgresQuery(sql, values), logger: logger).wait()
    }
}

/// A value bound to a statement's `$n`; nil is SQL NULL.
typealias PostgresBind = (any PostgresThrowingDynamicTypeEncodable)?

/// A row's columns by position.
struct PostgresValues {
    let row: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        self.row = row.makeRandomAccess()
    }

    subscript<T: PostgresDecodable>(_ index: Int) -> T {
        get throws { try row[index].decode(T.self) }
    }

    func int(_ index: Int) throws -> Int { Int(try row[index].decode(Int64.self)) }
}

/// One connection inside one transaction, as a transaction body uses it (from one thread).
///
/// Every statement waited for costs three thread wake-ups (this thread hands it to the event
/// loop, the event loop hears the server, then wakes this thread), which on PostgreSQL is
/// most of a transaction's time. A write whose answer nobody reads is therefore `send`:
/// handed over without waiting, and queued by postgres-nio behind the one before it. The next
/// statement that is waited for, or the commit, first waits for what was sent, and throws the
/// first of their errors: a statement that failed aborts the transaction on the server, so
/// nothing after it took effect either, and the transaction is rolled back or run again whole.
final class PostgresSession {
    let connection: PostgresConnection
    let logger: Logger
    /// Hears each statement before it is run (tests: which statements does a sale cost).
    let observer: (@Sendable (PostgresQuery) -> Void)?
    private var sent: [EventLoopFuture<PostgresQueryResult>] = []

    init(connection: PostgresConnection, logger: Logger, observer: (@Sendable (PostgresQuery) -> Void)? = nil) {
        self.connection = connection
        self.logger = logger
        self.observer = observer
    }

    /// Runs a statement without waiting for it.
    func send(_ sql: String, _ values: [PostgresBind] = []) throws {
        let query = try PostgresQuery(sql, values)
        observer?(query)
        sent.append(connection.query(query, logger: logger))
    }

    /// Runs a statement and waits for all its rows (and for what was sent before it).
    func run(_ sql: String, _ values: [PostgresBind] = []) throws -> PostgresQueryResult {
        try settle()
        let query = try PostgresQuery(sql, values)
        observer?(query)
        return try connection.query(query, logger: logger).wait()
    }

    /// Waits for every statement sent; throws the first one's error, after all have ended.
    func settle() throws {
        guard !sent.isEmpty else { return }
        let waiting = sent
        sent.removeAll()
        var first: (any Error)?
        for future in waiting {
            do { _ = try future.wait() } catch { first = first ?? error }
        }
        if let first { throw first }
    }
}

extension PostgresQuery {
    init(_ sql: String, _ values: [PostgresBind]) throws {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            if let value { try bindings.append(value) } else { bindings.appendNull() }
        }
        self.init(unsafeSQL: sql, binds: bindings)
    }
}
