import Foundation
public import GRDB
import TillSystem
public import TillSQLite

/// The default store: one SQLite file through GRDB (WAL, synchronous=FULL, mode 0600)
/// holding customers, their identifiers, consent records, the sales the till reported, the
/// links between the two, the immutable timeline, the suppression list and the tilld cursor.
public final class SQLiteCRMStore: CRMStore, OutboxStore {
    /// The pool itself, for tools that fill or inspect the file in bulk (benchmarks, tests).
    public let writer: DatabasePool
    public let path: String
    /// The durability level read back from SQLite after opening (always `full`, or init throws).
    public let synchronous: SQLiteSynchronous
    public let outboxDoorbell = Doorbell()

    public init(path: String) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var configuration = Configuration()
        configuration.label = "till-crm"
        configuration.foreignKeysEnabled = true
        // `till-crm serve` and a CLI command (a note, an erase) write the same file: wait for
        // the other's transaction rather than failing at once with "database is locked".
        configuration.busyMode = .timeout(10)
        // 16 MiB of page cache per connection (SQLite's default is 2 MiB): an import or a
        // catch-up writes long transactions, and a cache smaller than what they touch spills
        // pages to the WAL and reads them back, statement after statement. Temporary files in
        // memory: a long transaction's statement journals (what undoes one failed statement)
        // otherwise went to a file in /var/tmp, 90,000 writes for an import of 26,000 rows.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA cache_size = -16384")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        // Opening takes turns across processes (a lock file beside the database): enabling WAL
        // on a new file needs it exclusively, and SQLite answers "database is locked" at once
        // there rather than waiting; and GRDB's migrator reads which migrations are applied
        // outside the transaction that applies them, so two processes opening a new file at once
        // (serve starting while a CLI command runs) would both create the schema.
        let opened = try FileSystem.withExclusiveLock(path + ".lock") { () throws -> (DatabasePool, SQLiteSynchronous) in
            // Customer data is personal data: the file (and WAL/SHM beside it) is readable by the
            // service's user only. Created 0600 before SQLite would create it with the umask's
            // mode, in place (O_EXCL), never by a rename: Foundation's createFile writes a new
            // file and renames it over, which replaced the database under a process that had
            // just opened it (SQLite then answered "disk I/O error").
            try FileSystem.createIfMissing(path, mode: 0o600)
            let pool = try DatabasePool(path: path, configuration: configuration)
            // FULL, set after the pool is open (it resets the level as it enables WAL) and read
            // back: a recorded sale survives a power cut, not only a crash.
            let level = try pool.enforceSynchronous(.full)
            try Self.migrator.migrate(pool)
            return (pool, level)
        }
        writer = opened.0
        synchronous = opened.1
        for suffix in ["", "-wal", "-shm", ".lock"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path + suffix)
        }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any CRMTransaction) throws -> T) async throws -> T {
        try await writer.read { db in try body(SQLiteTransaction(db: db)) }
    }

    /// Runs `body` in one transaction, and writes the outbox entries for what it changed in
    /// the same transaction, just before it commits.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any CRMTransaction) throws -> T) async throws -> T {
        let (result, entries) = try await writer.write { db -> (T, Int) in
            let recorder = OutboxRecorder()
            let result = try body(SQLiteTransaction(db: db, outbox: recorder))
            return (result, try recorder.flush(into: SQLiteTransaction(db: db), atMs: Date().milliseconds))
        }
        if entries > 0 { outboxDoorbell.ring() }
        return result
    }

    public func outboxRead<T: Sendable>(_ body: @escaping @Sendable (any OutboxTransaction) throws -> T) async throws -> T {
        try await writer.read { db in try body(SQLiteTransaction(db: db)) }
    }

    public func outboxWrite<T: Sendable>(_ body: @escaping @Sendable (any OutboxTransaction) throws -> T) async throws -> T {
        try await writer.write { db in try body(SQLiteTransaction(db: db)) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: customers, identifiers, consent, sales, timeline") { db in
            try db.execute(sql: """
                CREATE TABLE customer (
                    id TEXT PRIMARY KEY,
                    name TEXT,
                    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'merged', 'erased')),
                    merged_into TEXT REFERENCES customer(id),
                    first_seen_ms INTEGER NOT NULL,
                    last_seen_ms INTEGER NOT NULL,
                    visits INTEGER NOT NULL DEFAULT 0
                );
                -- One identifier belongs to one customer while active.
                CREATE TABLE identifier (
                    id INTEGER PRIMARY KEY,
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    kind TEXT NOT NULL CHECK (kind IN ('loyalty_card', 'email', 'phone', 'external')),
                    raw TEXT NOT NULL,
                    normalized TEXT NOT NULL,
                    source_seq INTEGER,
                    added_ms INTEGER NOT NULL,
                    active INTEGER NOT NULL DEFAULT 1
                );
                CREATE UNIQUE INDEX identifier_unique_active ON identifier(kind, normalized) WHERE active = 1;
                CREATE INDEX identifier_customer ON identifier(customer_id);
                -- Append-only; the current state per channel and purpose is the newest row.
                CREATE TABLE consent (
                    id INTEGER PRIMARY KEY,
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'post', 'phone')),
                    purpose TEXT NOT NULL CHECK (purpose IN ('marketing', 'transactional', 'profiling')),
                    granted INTEGER NOT NULL,
                    basis TEXT NOT NULL CHECK (basis IN ('consent', 'soft_opt_in', 'contract', 'legitimate_interest')),
                    source TEXT NOT NULL,
                    sale_id TEXT,
                    source_seq INTEGER,
                    recorded_ms INTEGER NOT NULL
                );
                CREATE INDEX consent_customer ON consent(customer_id, channel, purpose, id);
                -- What the till reported, kept apart from who it is linked to.
                CREATE TABLE sale (
                    sale_id TEXT PRIMARY KEY,
                    till TEXT,
                    store TEXT,
                    receipt TEXT,
                    state TEXT NOT NULL CHECK (state IN ('open', 'completed', 'voided')),
                    total TEXT,
                    currency TEXT,
                    lines TEXT NOT NULL DEFAULT '[]',
                    started_ms INTEGER,
                    completed_ms INTEGER
                );
                CREATE INDEX sale_receipt ON sale(receipt);
                CREATE TABLE sale_link (
                    sale_id TEXT NOT NULL REFERENCES sale(sale_id),
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    method TEXT NOT NULL CHECK (method IN ('loyalty_scan', 'email', 'phone', 'loyalty', 'late_attach', 'manual')),
                    linked_ms INTEGER NOT NULL,
                    unlinked_ms INTEGER
                );
                CREATE UNIQUE INDEX sale_link_current ON sale_link(sale_id) WHERE unlinked_ms IS NULL;
                CREATE INDEX sale_link_customer ON sale_link(customer_id);
                -- Immutable. `source` is the idempotency key ("tilld:SEQ", "cli:UUID").
                CREATE TABLE timeline (
                    id INTEGER PRIMARY KEY,
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    occurred_ms INTEGER NOT NULL,
                    recorded_ms INTEGER NOT NULL,
                    type TEXT NOT NULL CHECK (type IN ('purchase', 'refund', 'exchange', 'note', 'conversation', 'opportunity', 'service', 'consent', 'merge')),
                    source TEXT NOT NULL UNIQUE,
                    payload TEXT NOT NULL,
                    actor TEXT
                );
                CREATE INDEX timeline_customer ON timeline(customer_id, occurred_ms);
                -- Hashed identifiers of erased people: a later event cannot silently re-create them.
                CREATE TABLE suppression (
                    hash TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    created_ms INTEGER NOT NULL
                );
                CREATE TABLE cursor (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
                """)
        }
        migrator.registerMigration("v2: loyalty cards scanned during a sale, not yet enrolled") { db in
            try db.execute(sql: """
                CREATE TABLE pending_card (
                    sale_id TEXT PRIMARY KEY,
                    card TEXT NOT NULL,
                    raw TEXT NOT NULL,
                    source_seq INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3: the secret that keys suppression hashes") { db in
            try db.execute(sql: "CREATE TABLE secret (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
            var generator = SystemRandomNumberGenerator()
            let key = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
            try db.execute(sql: "INSERT INTO secret(name, value) VALUES ('suppression', ?)", arguments: [key])
        }
        migrator.registerMigration("v4: how each sale was paid") { db in
            try db.execute(sql: "ALTER TABLE sale ADD COLUMN tenders TEXT NOT NULL DEFAULT '[]'")
        }
        migrator.registerMigration("v5: identity resolution: names, blocking keys, merges, the review queue, imports") { db in
            try db.execute(sql: """
                ALTER TABLE customer ADD COLUMN given_name TEXT;
                ALTER TABLE customer ADD COLUMN family_name TEXT;
                ALTER TABLE customer ADD COLUMN postcode TEXT;
                CREATE INDEX customer_merged_into ON customer(merged_into) WHERE merged_into IS NOT NULL;
                -- A loyalty card is one person's; a household may share an email or a phone.
                DROP INDEX identifier_unique_active;
                CREATE UNIQUE INDEX identifier_unique_card ON identifier(kind, normalized) WHERE active = 1 AND kind IN ('loyalty_card', 'external');
                CREATE UNIQUE INDEX identifier_per_customer ON identifier(customer_id, kind, normalized) WHERE active = 1;
                CREATE INDEX identifier_lookup ON identifier(normalized, kind) WHERE active = 1;
                -- Every name a record was identified under (as given), so the matcher compares
                -- "Jon" and "Jonathan" both, not only the first name a record got.
                CREATE TABLE customer_name (
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    given TEXT NOT NULL DEFAULT '',
                    family TEXT NOT NULL DEFAULT '',
                    added_ms INTEGER NOT NULL,
                    PRIMARY KEY (customer_id, given, family)
                ) WITHOUT ROWID;
                -- Candidate generation: a record is compared with those sharing a key (MatchRecord.blockingKeys).
                CREATE TABLE match_key (
                    key TEXT NOT NULL,
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    PRIMARY KEY (key, customer_id)
                ) WITHOUT ROWID;
                CREATE INDEX match_key_customer ON match_key(customer_id);
                -- Who merged what, why and with which score; kept after an unmerge.
                CREATE TABLE merge_log (
                    id INTEGER PRIMARY KEY,
                    survivor TEXT NOT NULL REFERENCES customer(id),
                    absorbed TEXT NOT NULL REFERENCES customer(id),
                    automatic INTEGER NOT NULL,
                    score REAL,
                    evidence TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    merged_ms INTEGER NOT NULL,
                    undone_ms INTEGER,
                    undone_by TEXT
                );
                CREATE INDEX merge_log_survivor ON merge_log(survivor);
                CREATE INDEX merge_log_absorbed ON merge_log(absorbed);
                -- Possible duplicates for a person to decide; a decided pair is never queued again.
                CREATE TABLE duplicate_review (
                    a TEXT NOT NULL REFERENCES customer(id),
                    b TEXT NOT NULL REFERENCES customer(id),
                    score REAL NOT NULL,
                    evidence TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('open', 'merged', 'dismissed')),
                    queued_ms INTEGER NOT NULL,
                    decided_ms INTEGER,
                    decided_by TEXT,
                    PRIMARY KEY (a, b)
                ) WITHOUT ROWID;
                CREATE INDEX duplicate_review_status ON duplicate_review(status, score);
                -- Rows of imported customer lists: an import run twice imports each row once.
                CREATE TABLE import_record (
                    source TEXT NOT NULL,
                    record TEXT NOT NULL,
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    imported_ms INTEGER NOT NULL,
                    PRIMARY KEY (source, record)
                ) WITHOUT ROWID;
                """)
            // Customers recorded before: their names split and their keys made, so the matcher finds them.
            let transaction = SQLiteTransaction(db: db)
            for id in try String.fetchAll(db, sql: "SELECT id FROM customer WHERE status != 'erased'") {
                guard var customer = try transaction.customer(id) else { continue }
                if let name = customer.name {
                    (customer.givenName, customer.familyName) = NameKey.split(fullName: name)
                    try transaction.save(customer)
                    try transaction.addName(PersonName(given: customer.givenName, family: customer.familyName), to: id, atMs: customer.firstSeenMs)
                }
                try transaction.addMatchKeys(MatchRecord(customer, identifiers: try transaction.identifiers(of: id)).blockingKeys, to: id)
            }
        }
        migrator.registerMigration("v6: moments worth a follow-up; the timeline records them") { db in
            // SQLite cannot change a CHECK in place: the timeline is copied into a table that
            // allows 'moment' (GRDB checks the foreign keys before this commits).
            try db.execute(sql: """
                CREATE TABLE timeline_v6 (
                    id INTEGER PRIMARY KEY,
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    occurred_ms INTEGER NOT NULL,
                    recorded_ms INTEGER NOT NULL,
                    type TEXT NOT NULL CHECK (type IN ('purchase', 'refund', 'exchange', 'note', 'conversation', 'opportunity', 'service', 'consent', 'merge', 'moment')),
                    source TEXT NOT NULL UNIQUE,
                    payload TEXT NOT NULL,
                    actor TEXT
                );
                INSERT INTO timeline_v6 SELECT id, customer_id, occurred_ms, recorded_ms, type, source, payload, actor FROM timeline;
                DROP TABLE timeline;
                ALTER TABLE timeline_v6 RENAME TO timeline;
                CREATE INDEX timeline_customer ON timeline(customer_id, occurred_ms);
                -- What is worth a follow-up (docs/crm.md). One row per moment, by an id the rules
                -- make the same way every time, so nothing is raised twice.
                CREATE TABLE moment (
                    id TEXT PRIMARY KEY,
                    customer_id TEXT NOT NULL REFERENCES customer(id),
                    kind TEXT NOT NULL,
                    due_ms INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    channels TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('open', 'done', 'snoozed', 'dismissed')),
                    snoozed_until_ms INTEGER,
                    created_ms INTEGER NOT NULL,
                    decided_ms INTEGER,
                    decided_by TEXT,
                    -- Publishing as crm.moment: the seq known before the attempt, then the event's own seq.
                    publish_after_seq INTEGER,
                    published_seq INTEGER
                ) WITHOUT ROWID;
                CREATE INDEX moment_customer ON moment(customer_id);
                CREATE INDEX moment_due ON moment(status, due_ms);
                CREATE INDEX moment_unpublished ON moment(created_ms) WHERE published_seq IS NULL;
                """)
        }
        migrator.registerMigration("v7: the outbox, and its delivery to each target") { db in
            try db.execute(sql: """
                -- Everything till-crm learned, for the shop's other systems (docs/crm.md, the outbox),
                -- written in the transaction of the change itself. AUTOINCREMENT: a seq is never
                -- reused after the newest entries were pruned, so a target's cursor stays right.
                CREATE TABLE outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    customer_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_ms INTEGER NOT NULL
                );
                -- Erasure purges a person's entries.
                CREATE INDEX outbox_customer ON outbox(customer_id);
                -- One row per configured target: its cursor (entries up to taken_seq are queued
                -- for it), what it delivered, and how it is doing.
                CREATE TABLE outbox_target (
                    name TEXT PRIMARY KEY,
                    taken_seq INTEGER NOT NULL,
                    delivered INTEGER NOT NULL DEFAULT 0,
                    last_delivered_ms INTEGER,
                    last_error TEXT,
                    last_error_ms INTEGER,
                    paused_until_ms INTEGER,
                    -- A target's own recovery note (the JSON-lines file and offset of a batch being written).
                    checkpoint TEXT
                ) WITHOUT ROWID;
                -- Entries queued for a target and not yet delivered (a delivered one is deleted).
                CREATE TABLE delivery (
                    target TEXT NOT NULL REFERENCES outbox_target(name),
                    seq INTEGER NOT NULL REFERENCES outbox(seq),
                    customer_id TEXT NOT NULL,
                    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    refusals INTEGER NOT NULL DEFAULT 0,
                    next_ms INTEGER NOT NULL,
                    first_failed_ms INTEGER,
                    -- When `outbox retry` last put it back: its max_days count from then (NULL: from created_ms).
                    retried_ms INTEGER,
                    last_error TEXT,
                    PRIMARY KEY (target, seq)
                ) WITHOUT ROWID;
                -- Per-customer order: a customer's oldest pending entry goes first.
                CREATE INDEX delivery_customer ON delivery(target, customer_id, seq) WHERE state = 'pending';
                CREATE INDEX delivery_seq ON delivery(seq);
                """)
        }
        migrator.registerMigration("v8: which till's journal a moment is being published to") { db in
            // A chain's till-crms share one store: each settles only the moments it was publishing.
            try db.execute(sql: "ALTER TABLE moment ADD COLUMN publish_stream TEXT")
        }
        migrator.registerMigration("v9: who served each sale") { db in
            try db.execute(sql: "ALTER TABLE sale ADD COLUMN staff TEXT")
        }
        return migrator
    }
}
