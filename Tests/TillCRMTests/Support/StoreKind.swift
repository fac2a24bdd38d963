import Foundation
import GRDB
import Logging
import Testing
@testable import TillCRM

/// The stores the store-level tests run against: SQLite always, PostgreSQL when a server is
/// configured (`TILL_TEST_POSTGRES_URL`, password in `TILL_TEST_POSTGRES_PASSWORD`), as
/// `scripts/test.sh` and CI do (`scripts/postgres-test-server.sh` starts one on loopback). With
/// `TILL_TEST_REQUIRE_POSTGRES=1` (CI) a missing server fails the run instead of being left out.
enum StoreKind: String, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static let postgresURL = ProcessInfo.processInfo.environment["TILL_TEST_POSTGRES_URL"]

    /// SQLite, and PostgreSQL when there is one to test against.
    static var all: [StoreKind] {
        if postgresURL != nil { return [.sqlite, .postgres] }
        if ProcessInfo.processInfo.environment["TILL_TEST_REQUIRE_POSTGRES"] == "1" {
            // Kept in, so each test fails naming what is missing rather than passing on SQLite alone.
            return [.sqlite, .postgres]
        }
        return [.sqlite]
    }

    /// A new, empty store of this kind: a file in a new directory, or a new schema.
    func makeStore() async throws -> any CRMStore & OutboxStore {
        switch self {
        case .sqlite:
            return try SQLiteCRMStore(path: NSTemporaryDirectory() + "till-crm-test-" + UUID().uuidString + "/crm.sqlite")
        case .postgres:
            guard let url = Self.postgresURL else {
                throw PostgresStoreError("TILL_TEST_POSTGRES_URL is not set: run scripts/test.sh, or start one with scripts/postgres-test-server.sh")
            }
            var settings = try PostgresSettings(url: url, password: ProcessInfo.processInfo.environment["TILL_TEST_POSTGRES_PASSWORD"])
            settings.schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            settings.poolSize = 2  // dozens of these run at once beside the rest of the suite
            var logger = Logger(label: "test.postgres")
            logger.logLevel = .warning
            return try await PostgresCRMStore(settings: settings, logger: logger)
        }
    }
}

/// Reads a single number or text straight from a store's tables, whatever the store (tests
/// check what was written, not only what the store's own reads say).
func scalar(_ store: any CRMStore, _ sql: String) async throws -> Int {
    switch store {
    case let store as SQLiteCRMStore:
        return try await store.writer.read { try Int.fetchOne($0, sql: sql) ?? 0 }
    case let store as PostgresCRMStore:
        return try await store.scalar(sql)
    default:
        throw PostgresStoreError("not a store the tests know")
    }
}

func text(_ store: any CRMStore, _ sql: String) async throws -> String? {
    switch store {
    case let store as SQLiteCRMStore:
        return try await store.writer.read { try String.fetchOne($0, sql: sql) }
    case let store as PostgresCRMStore:
        return try await store.text(sql)
    default:
        throw PostgresStoreError("not a store the tests know")
    }
}
