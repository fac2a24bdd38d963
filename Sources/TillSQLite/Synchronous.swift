public import GRDB

/// SQLite's `PRAGMA synchronous` levels (https://www.sqlite.org/pragma.html#pragma_synchronous).
/// In WAL mode, `full` syncs the WAL at every commit, so a committed transaction survives a
/// power cut; `normal` syncs only at checkpoints, so it survives a crash of the process but
/// the last commits can be lost with the power.
public enum SQLiteSynchronous: Int, Sendable, CustomStringConvertible {
    case off = 0, normal = 1, full = 2, extra = 3

    public var description: String {
        switch self {
        case .off: "off"
        case .normal: "normal"
        case .full: "full"
        case .extra: "extra"
        }
    }
}

/// The durability level a database was asked for is not the one SQLite reports in force.
public struct SynchronousNotInForce: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var wanted: SQLiteSynchronous
    public var found: Int

    public var description: String {
        "\(path): PRAGMA synchronous reads \(found) after setting it to \(wanted) (\(wanted.rawValue)); refusing to run with a durability weaker than configured"
    }
}

extension DatabasePool {
    /// Sets `PRAGMA synchronous` on the writer connection, then reads it back and throws
    /// unless it is in force.
    ///
    /// Call it after the pool is open: `DatabasePool` switches the writer to WAL after the
    /// `prepareDatabase` hook runs, and sets `synchronous = NORMAL` as it does, so a value set
    /// in that hook is silently replaced. The setting is per connection; only the writer
    /// connection writes, so it is the one that counts (readers never sync).
    @discardableResult
    public func enforceSynchronous(_ wanted: SQLiteSynchronous) throws -> SQLiteSynchronous {
        try writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(wanted.rawValue)")
            let found = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
            guard found == wanted.rawValue else { throw SynchronousNotInForce(path: path, wanted: wanted, found: found) }
            return wanted
        }
    }

    /// The level in force on the writer connection now.
    public func synchronousInForce() throws -> SQLiteSynchronous? {
        try writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "PRAGMA synchronous").flatMap(SQLiteSynchronous.init(rawValue:))
        }
    }
}
