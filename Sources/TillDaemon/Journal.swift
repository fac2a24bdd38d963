public import Foundation
import GRDB
import GRDBSQLite  // sqlite3_bind_* for the journal's insert (see `insert`)
public import TillCore
import TillSystem
public import TillSQLite

/// The event journal and print spool: one SQLite database (WAL) under the state dir.
/// An event is committed here before anyone sees it; `seq` is never reused, even
/// after retention deleted every row, because the high-water mark is stored too.
public final class Journal: Sendable {
    /// A journaled event as stored: the data stays JSON text, so a replay sends it without
    /// decoding and re-encoding it.
    public struct Stored: Sendable {
        public var seq: Int64
        public var time: Date
        public var topic: String
        public var device: String?
        public var dataJSON: String

        public var event: Event {
            Event(seq: seq, time: time, topic: topic, device: device, data: (try? JSONText.decode(dataJSON)) ?? .null)
        }

        public var wireLine: String {
            Event(seq: seq, time: time, topic: topic, device: device, data: .null).wireLine(dataJSON: dataJSON)
        }
    }

    private let pool: DatabasePool
    public let path: String
    /// The durability level SQLite reports in force (read back after opening, not assumed).
    public let synchronous: SQLiteSynchronous
    /// The files this journal opened. If the path later names another file (deleted, replaced
    /// by a restore or a rename), commits would go to a file nobody will read again.
    private let identities: [(path: String, identity: FileIdentity)]

    /// The page size of a new journal. A commit of a few events writes one page to the WAL
    /// (a frame: the page and a 24-byte header); at 4 KiB a frame straddles two file-system
    /// blocks, and the sync's time grows with what it writes. A journal created with another
    /// page size keeps it (SQLite cannot change it in WAL mode).
    static let pageSize = 1024

    /// How many WAL frames are written ahead: a little more than SQLite's automatic checkpoint
    /// lets the WAL reach (1000 frames) before it starts again from the top.
    static let reservedFrames = 1100

    public init(path: String, synchronous wanted: SQLiteSynchronous = .full) throws {
        self.path = path
        var configuration = Configuration()
        configuration.label = "tilld.journal"
        configuration.maximumReaderCount = 4
        configuration.prepareDatabase { db in
            // Takes effect only on a new, empty database (before the pool switches it to WAL).
            try db.execute(sql: "PRAGMA page_size = \(Self.pageSize)")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        // Set (and read back) only now: the pool resets it to NORMAL while enabling WAL,
        // after any prepareDatabase hook. FULL: a committed event survives power loss; the
        // bus's group commit shares the sync among every event that arrived meanwhile.
        synchronous = try pool.enforceSynchronous(wanted)
        try Self.migrator.migrate(pool)
        try Self.reserveWAL(pool, path: path)
        identities = [path, path + "-wal"].compactMap { file in FileSystem.identity(file).map { (file, $0) } }
    }

    /// Why the journal files are not the ones opened, or nil when they are.
    public func replacementProblem() -> String? {
        for (file, identity) in identities {
            guard let now = FileSystem.identity(file) else {
                return "\(file) was deleted while tilld was running"
            }
            if now != identity { return "\(file) was replaced while tilld was running (\(identity) then, \(now) now)" }
        }
        return nil
    }

    /// Writes the WAL file's blocks ahead (zeros), so in steady state a commit overwrites
    /// blocks that exist instead of appending to the file.
    ///
    /// Why: a sync after an append also commits file-system metadata (the new size and
    /// blocks); measured on ext4 here, a 4 KiB frame appended and synced took ~205 µs against
    /// ~165 µs overwritten. SQLite deletes the WAL at a clean close and, after each checkpoint,
    /// writes it again from the top, so without this every start would append for a while.
    /// Zeros past the last valid frame are ignored: each frame carries a salt and a checksum.
    /// Done after opening, not before: switching a new database to WAL deletes a WAL it finds.
    private static func reserveWAL(_ pool: DatabasePool, path: String) throws {
        let pageSize = try pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } ?? 4096
        let bytes = 32 + reservedFrames * (pageSize + 24)
        try FileSystem.extendWithZeros(path + "-wal", to: bytes, mode: 0o640)
        // After a checkpoint SQLite truncates the WAL to this size, not below: the reserve stays
        // (and a WAL grown past it by a long replay holding a snapshot shrinks back).
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_size_limit = \(bytes)") }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE event (
                    seq INTEGER PRIMARY KEY,
                    time_ms INTEGER NOT NULL,
                    topic TEXT NOT NULL,
                    device TEXT,
                    data TEXT NOT NULL
                );
                CREATE INDEX event_time ON event(time_ms);
                CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO meta(key, value) VALUES ('last_seq', 0);
                CREATE TABLE print_job (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    device TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('receipt', 'raw')),
                    payload BLOB NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('queued', 'printing', 'done', 'failed', 'cancelled')),
                    error TEXT,
                    created_ms INTEGER NOT NULL,
                    updated_ms INTEGER NOT NULL
                );
                CREATE INDEX print_job_open ON print_job(device, state, id);
                """)
        }
        migrator.registerMigration("v2: one page per commit") { db in
            // A commit of a few events used to write three pages (the event, the time index,
            // the meta row), and the sync time grows with what is written. Retention finds its
            // cut-off by seq instead (time grows with seq), and the meta row is brought up to
            // date only before retention deletes rows, the only time it is needed.
            try db.execute(sql: """
                DROP INDEX IF EXISTS event_time;
                UPDATE meta SET value = MAX(value, COALESCE((SELECT MAX(seq) FROM event), 0)) WHERE key = 'last_seq';
                """)
        }
        migrator.registerMigration("v3: jobs spooled as the printer's bytes") { db in
            // A receipt is encoded once, when it is submitted, and spooled as the bytes the
            // printer gets (encoded = 1). Jobs from before (encoded = 0) hold the document's
            // JSON and are encoded when they print. `interrupted`: the job was cut off part-way
            // and is printed again whole under a REPRINT banner. `drawer_fallback`: the receipt
            // asked for the drawer and the printer has no drawer port of its own.
            try db.execute(sql: """
                ALTER TABLE print_job ADD COLUMN encoded INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE print_job ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE print_job ADD COLUMN drawer_fallback INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v4: followers") { db in
            // Where each follower (till-crm) says it has applied through (`follower.ack`), and
            // the topics it follows: a follower cut off from its own database stops
            // acknowledging, and status warns before retention prunes events it still needs.
            try db.execute(sql: """
                CREATE TABLE follower (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, acked_ms INTEGER NOT NULL, topics TEXT NOT NULL);
                """)
        }
        return migrator
    }

    // MARK: followers

    public struct Follower: Sendable, Hashable {
        public var name: String
        /// Every event through this seq is applied, the follower says.
        public var seq: Int64
        public var ackedMs: Int64
        /// Its subscription: only these topics count as behind.
        public var topics: [String]
        /// Events after `seq` it would be sent (counted up to a bound), and the first of them.
        public var pending: Int64 = 0
        public var firstPendingSeq: Int64?
        public var firstPendingMs: Int64?
    }

    /// Records a follower's acknowledgement (its last word stands, even a lower seq: a
    /// follower whose own store was restored from a backup really is back there).
    public func acknowledge(follower name: String, seq: Int64, topics: [String], atMs ms: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO follower(name, seq, acked_ms, topics) VALUES (?, ?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, acked_ms = excluded.acked_ms, topics = excluded.topics
                    """,
                arguments: [name, seq, ms, JSONText.encode(JSONValue.array(topics.map(JSONValue.string)))])
        }
    }

    /// The followers, each with what it has not applied yet: the events after its seq that
    /// match its topics (walked in seq order, at most `scanLimit` rows: status is asked
    /// rarely, and a follower that far behind is reported as such).
    public func followers(scanLimit: Int = 1_000_000) async throws -> [Follower] {
        try await pool.read { db in
            var followers = try Row.fetchAll(db, sql: "SELECT name, seq, acked_ms, topics FROM follower ORDER BY name").map { row in
                Follower(name: row["name"], seq: row["seq"], ackedMs: row["acked_ms"], topics: Self.topics(row["topics"]))
            }
            for index in followers.indices {
                let filter = TopicFilter(followers[index].topics)
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT seq, time_ms, topic FROM event WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [followers[index].seq, scanLimit])
                while let row = try rows.next() {
                    guard filter.matches(row["topic"]) else { continue }
                    if followers[index].firstPendingSeq == nil {
                        followers[index].firstPendingSeq = row["seq"]
                        followers[index].firstPendingMs = row["time_ms"]
                    }
                    followers[index].pending += 1
                }
            }
            return followers
        }
    }

    private static func topics(_ json: String) -> [String] {
        ((try? JSONText.decode(json))?.arrayValue ?? []).compactMap(\.stringValue)
    }

    /// Before events go: a follower none of whose events (by its topics) are among them has
    /// missed nothing by their going, so its position moves to just before what is kept.
    /// Afterwards a follower whose seq is below the oldest event held really did miss some.
    private static func advanceFollowers(_ db: Database, before keepFrom: Int64) throws {
        let followers = try Row.fetchAll(db, sql: "SELECT name, seq, topics FROM follower WHERE seq < ?", arguments: [keepFrom - 1])
        for follower in followers {
            let filter = TopicFilter(topics(follower["topics"]))
            let topics = try String.fetchCursor(
                db, sql: "SELECT topic FROM event WHERE seq > ? AND seq < ? ORDER BY seq", arguments: [follower["seq"] as Int64, keepFrom])
            var missed = false
            while let topic = try topics.next() {
                if filter.matches(topic) {
                    missed = true
                    break
                }
            }
            if !missed {
                try db.execute(sql: "UPDATE follower SET seq = ? WHERE name = ?", arguments: [keepFrom - 1, follower["name"] as String])
            }
        }
    }

    /// The highest seq ever assigned (0 for a new journal).
    public func lastSeq() throws -> Int64 {
        try pool.read { db in
            let meta = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_seq'") ?? 0
            let rows = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? 0
            return max(meta, rows)
        }
    }

    /// The oldest seq still held, or nil when the journal holds no event.
    public func oldestSeq() async throws -> Int64? {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM event") }
    }

    /// Appends events in one transaction (one sync for the batch). Blocks the calling thread:
    /// the bus's writer thread calls it, so a commit costs no hop to another thread.
    public func append(_ events: [(event: Event, dataJSON: String)]) throws {
        // The newest seq is the largest row; `meta.last_seq` catches up before retention deletes (see v2).
        guard !events.isEmpty else { return }
        try pool.writeWithoutTransaction { db in
            // The transaction by hand, with prepared statements: `write { }` parses its BEGIN and
            // COMMIT again at every commit, which was a tenth of the writer's time per event.
            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
            do {
                let statement = try db.cachedStatement(sql: "INSERT INTO event(seq, time_ms, topic, device, data) VALUES (?, ?, ?, ?, ?)")
                for (event, data) in events {
                    try Self.insert(event, data: data, with: statement, in: db)
                }
                try db.cachedStatement(sql: "COMMIT").execute()
            } catch {
                // A failed COMMIT may leave the transaction open (SQLite rolls back some errors
                // itself, not all): end it, so the next commit does not join a broken one.
                if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
                throw error
            }
        }
    }

    /// One row, bound through SQLite's C API on GRDB's prepared statement and connection.
    /// GRDB's `execute(arguments:)` boxes every argument into an existential, converts it and
    /// checks the count at each call: about a seventh of tilld's CPU in a fan-out at 100,000
    /// events/s (docs/benchmarks.md). A failure is GRDB's `DatabaseError` with SQLite's
    /// extended code and message, as `execute` would throw it, so faults classify the same.
    private static func insert(_ event: Event, data: String, with statement: Statement, in db: Database) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)  // its code is the previous step's, already handled
        var code = sqlite3_bind_int64(handle, 1, event.seq)
        if code == SQLITE_OK { code = sqlite3_bind_int64(handle, 2, Int64((event.time.timeIntervalSince1970 * 1000).rounded())) }
        if code == SQLITE_OK { code = bindText(handle, 3, event.topic) }
        if code == SQLITE_OK { code = event.device.map { bindText(handle, 4, $0) } ?? sqlite3_bind_null(handle, 4) }
        if code == SQLITE_OK { code = bindText(handle, 5, data) }
        if code == SQLITE_OK { code = sqlite3_step(handle) }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: statement.sql)
        }
    }

    /// Text, copied by SQLite (`SQLITE_TRANSIENT`): the string's storage is ours only for the call.
    private static func bindText(_ handle: OpaquePointer, _ index: Int32, _ text: String) -> Int32 {
        var text = text
        return text.withUTF8 { bytes in
            // An empty buffer may have no address; SQLite would take that for NULL.
            bytes.withMemoryRebound(to: CChar.self) { chars in
                guard let base = chars.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, transient) }
                return sqlite3_bind_text(handle, index, base, Int32(chars.count), transient)
            }
        }
    }

    /// SQLite's `SQLITE_TRANSIENT`, a macro Swift does not import.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// A write that changes nothing, to learn whether the journal can commit again.
    public func probe() throws {
        try pool.write { db in try db.execute(sql: "UPDATE meta SET value = value WHERE key = 'last_seq'") }
    }

    /// Events with seq > `after`, oldest first.
    public func events(after seq: Int64, limit: Int) async throws -> [Stored] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT seq, time_ms, topic, device, data FROM event WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [seq, limit]
            ).map { row in
                Stored(
                    seq: row["seq"], time: Date(timeIntervalSince1970: Double(row["time_ms"] as Int64) / 1000),
                    topic: row["topic"], device: row["device"], dataJSON: row["data"]
                )
            }
        }
    }

    /// Deletes events older than `olderThan` and beyond the newest `keepLast`. Returns how many went.
    @discardableResult
    public func prune(olderThan cutoff: Date, keepLast: Int?) throws -> Int {
        try pool.write { db in
            // Keep the high-water mark in the database too, before rows go.
            try db.execute(sql: "UPDATE meta SET value = MAX(value, COALESCE((SELECT MAX(seq) FROM event), 0)) WHERE key = 'last_seq'")
            // Time grows with seq, so everything before the first event at or after the cut-off
            // is older: found by walking from the oldest row, with no index on time.
            var keepFrom = try Int64.fetchOne(
                db, sql: "SELECT COALESCE((SELECT seq FROM event WHERE time_ms >= ? ORDER BY seq LIMIT 1), (SELECT MAX(seq) + 1 FROM event), 0)",
                arguments: [Int64(cutoff.timeIntervalSince1970 * 1000)]) ?? 0
            if let keepLast {
                let last = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_seq'") ?? 0
                keepFrom = max(keepFrom, last - Int64(keepLast) + 1)
            }
            try Self.advanceFollowers(db, before: keepFrom)
            try db.execute(sql: "DELETE FROM event WHERE seq < ?", arguments: [keepFrom])
            return db.changesCount
        }
    }

    // MARK: print spool

    public struct SpooledJob: Sendable, Hashable {
        public var id: Int64
        public var device: String
        public var kind: String
        public var payload: Data
        public var state: String
        public var error: String?
        /// The payload is the printer's bytes (else a receipt's JSON from an older tilld).
        public var encoded: Bool
        /// Cut off part-way before: printed again whole, under a REPRINT banner.
        public var interrupted: Bool
        /// Open the configured drawer after printing (the printer has no drawer port).
        public var drawerFallback: Bool
    }

    /// Durably spools a job (the printer's bytes); returns its id.
    public func spool(device: String, kind: String, payload: Data, drawerFallback: Bool = false) async throws -> Int64 {
        try await pool.write { db in
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try db.execute(
                sql: """
                    INSERT INTO print_job(device, kind, payload, state, created_ms, updated_ms, encoded, drawer_fallback)
                    VALUES (?, ?, ?, 'queued', ?, ?, 1, ?)
                    """,
                arguments: [device, kind, payload, now, now, drawerFallback]
            )
            return db.lastInsertedRowID
        }
    }

    /// A job cut off part-way goes back to the queue, to be printed again whole (REPRINT).
    public func requeueInterrupted(job id: Int64, error: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE print_job SET state = 'queued', interrupted = 1, error = ?, updated_ms = ? WHERE id = ? AND state = 'printing'",
                arguments: [error, Int64(Date().timeIntervalSince1970 * 1000), id]
            )
            return db.changesCount == 1
        }
    }

    public func nextQueuedJob(device: String) async throws -> SpooledJob? {
        try await pool.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM print_job WHERE device = ? AND state = 'queued' ORDER BY id LIMIT 1",
                arguments: [device]
            ).map(Self.job)
        }
    }

    public func job(id: Int64) async throws -> SpooledJob? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM print_job WHERE id = ?", arguments: [id]).map(Self.job)
        }
    }

    /// Moves a job from one state to another; false if it was not in `from` (a lost race with cancel).
    public func transition(job id: Int64, from: [String], to: String, error: String? = nil) async throws -> Bool {
        try await pool.write { db in
            let placeholders = from.map { _ in "?" }.joined(separator: ",")
            var arguments: StatementArguments = [to, error, Int64(Date().timeIntervalSince1970 * 1000), id]
            arguments += StatementArguments(from)
            try db.execute(
                sql: "UPDATE print_job SET state = ?, error = ?, updated_ms = ? WHERE id = ? AND state IN (\(placeholders))",
                arguments: arguments
            )
            return db.changesCount == 1
        }
    }

    /// Jobs that were printing when the daemon died: part of each may be on paper, and no one
    /// can tell how much. They go back to the queue marked interrupted, and print again whole
    /// under a REPRINT banner: never half a receipt twice, never a silent second copy. A job
    /// marked done is never touched.
    public func requeueJobsInterruptedByRestart() async throws -> [Int64] {
        try await pool.write { db in
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM print_job WHERE state = 'printing' ORDER BY id")
            try db.execute(
                sql: "UPDATE print_job SET state = 'queued', interrupted = 1, error = ?, updated_ms = ? WHERE state = 'printing'",
                arguments: [
                    "interrupted by a restart of tilld while printing; printed again in full under a REPRINT banner",
                    Int64(Date().timeIntervalSince1970 * 1000),
                ]
            )
            return ids
        }
    }

    public func queuedJobCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM print_job WHERE state IN ('queued','printing')") ?? 0 }
    }

    private static func job(_ row: Row) -> SpooledJob {
        SpooledJob(
            id: row["id"], device: row["device"], kind: row["kind"], payload: row["payload"], state: row["state"], error: row["error"],
            encoded: row["encoded"], interrupted: row["interrupted"], drawerFallback: row["drawer_fallback"])
    }
}
