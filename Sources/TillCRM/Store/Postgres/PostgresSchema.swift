/// The PostgreSQL store's schema: the same tables as the SQLite store's (SQLiteCRMStore's
/// migrations, v1 to v7 there), written for PostgreSQL at once rather than replaying SQLite's
/// history. Times are milliseconds since 1970 (BIGINT), JSON is kept as the text till-crm wrote
/// (what it reads back is what it wrote, byte for byte), booleans are BOOLEAN.
enum PostgresSchema {
    /// Applied in order, each once, in a transaction holding an advisory lock, so that tills
    /// starting together against a new database create it once.
    static let migrations: [(version: Int, name: String, sql: String)] = [
        (1, "customer memory: customers, identifiers, consent, sales, timeline, identity, moments, outbox", """
            CREATE TABLE customer (
                id TEXT PRIMARY KEY,
                name TEXT,
                given_name TEXT,
                family_name TEXT,
                postcode TEXT,
                status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'merged', 'erased')),
                merged_into TEXT REFERENCES customer(id),
                first_seen_ms BIGINT NOT NULL,
                last_seen_ms BIGINT NOT NULL,
                visits BIGINT NOT NULL DEFAULT 0
            );
            CREATE INDEX customer_merged_into ON customer(merged_into) WHERE merged_into IS NOT NULL;
            CREATE TABLE identifier (
                id BIGSERIAL PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES customer(id),
                kind TEXT NOT NULL CHECK (kind IN ('loyalty_card', 'email', 'phone', 'external')),
                raw TEXT NOT NULL,
                normalized TEXT NOT NULL,
                source_seq BIGINT,
                added_ms BIGINT NOT NULL,
                active BOOLEAN NOT NULL DEFAULT TRUE
            );
            -- A loyalty card is one person's; a household may share an email or a phone.
            CREATE UNIQUE INDEX identifier_unique_card ON identifier(kind, normalized) WHERE active AND kind IN ('loyalty_card', 'external');
            CREATE UNIQUE INDEX identifier_per_customer ON identifier(customer_id, kind, normalized) WHERE active;
            -- Byte order ("C"), so a prefix is a range whatever the database's collation.
            CREATE INDEX identifier_lookup ON identifier((normalized COLLATE "C"), kind) WHERE active;
            CREATE INDEX identifier_customer ON identifier(customer_id);
            CREATE TABLE consent (
                id BIGSERIAL PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES customer(id),
                channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'post', 'phone')),
                purpose TEXT NOT NULL CHECK (purpose IN ('marketing', 'transactional', 'profiling')),
                granted BOOLEAN NOT NULL,
                basis TEXT NOT NULL CHECK (basis IN ('consent', 'soft_opt_in', 'contract', 'legitimate_interest')),
                source TEXT NOT NULL,
                sale_id TEXT,
                source_seq BIGINT,
                recorded_ms BIGINT NOT NULL
            );
            CREATE INDEX consent_customer ON consent(customer_id, channel, purpose, id);
            CREATE TABLE sale (
                sale_id TEXT PRIMARY KEY,
                till TEXT,
                store TEXT,
                receipt TEXT,
                state TEXT NOT NULL CHECK (state IN ('open', 'completed', 'voided')),
                total TEXT,
                currency TEXT,
                lines TEXT NOT NULL DEFAULT '[]',
                tenders TEXT NOT NULL DEFAULT '[]',
                started_ms BIGINT,
                completed_ms BIGINT,
                -- Who served (sale.started's staff).
                staff TEXT
            );
            CREATE INDEX sale_receipt ON sale(receipt);
            CREATE INDEX sale_open ON sale(started_ms) WHERE state = 'open';
            CREATE TABLE sale_link (
                id BIGSERIAL PRIMARY KEY,
                sale_id TEXT NOT NULL REFERENCES sale(sale_id),
                customer_id TEXT NOT NULL REFERENCES customer(id),
                method TEXT NOT NULL CHECK (method IN ('loyalty_scan', 'email', 'phone', 'loyalty', 'late_attach', 'manual')),
                linked_ms BIGINT NOT NULL,
                unlinked_ms BIGINT
            );
            CREATE UNIQUE INDEX sale_link_current ON sale_link(sale_id) WHERE unlinked_ms IS NULL;
            CREATE INDEX sale_link_customer ON sale_link(customer_id);
            CREATE TABLE timeline (
                id BIGSERIAL PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES customer(id),
                occurred_ms BIGINT NOT NULL,
                recorded_ms BIGINT NOT NULL,
                type TEXT NOT NULL CHECK (type IN ('purchase', 'refund', 'exchange', 'note', 'conversation', 'opportunity', 'service', 'consent', 'merge', 'moment')),
                source TEXT NOT NULL UNIQUE,
                payload TEXT NOT NULL,
                actor TEXT
            );
            CREATE INDEX timeline_customer ON timeline(customer_id, occurred_ms);
            CREATE TABLE suppression (
                hash TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                reason TEXT NOT NULL,
                created_ms BIGINT NOT NULL
            );
            CREATE TABLE cursor (name TEXT PRIMARY KEY, seq BIGINT NOT NULL);
            CREATE TABLE pending_card (
                sale_id TEXT PRIMARY KEY,
                card TEXT NOT NULL,
                raw TEXT NOT NULL,
                source_seq BIGINT NOT NULL
            );
            CREATE TABLE secret (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
            CREATE TABLE customer_name (
                customer_id TEXT NOT NULL REFERENCES customer(id),
                given TEXT NOT NULL DEFAULT '',
                family TEXT NOT NULL DEFAULT '',
                added_ms BIGINT NOT NULL,
                PRIMARY KEY (customer_id, given, family)
            );
            CREATE TABLE match_key (
                key TEXT NOT NULL,
                customer_id TEXT NOT NULL REFERENCES customer(id),
                PRIMARY KEY (key, customer_id)
            );
            CREATE INDEX match_key_customer ON match_key(customer_id);
            CREATE TABLE merge_log (
                id BIGSERIAL PRIMARY KEY,
                survivor TEXT NOT NULL REFERENCES customer(id),
                absorbed TEXT NOT NULL REFERENCES customer(id),
                automatic BOOLEAN NOT NULL,
                score DOUBLE PRECISION,
                evidence TEXT NOT NULL,
                actor TEXT NOT NULL,
                reason TEXT NOT NULL,
                merged_ms BIGINT NOT NULL,
                undone_ms BIGINT,
                undone_by TEXT
            );
            CREATE INDEX merge_log_survivor ON merge_log(survivor);
            CREATE INDEX merge_log_absorbed ON merge_log(absorbed);
            CREATE TABLE duplicate_review (
                a TEXT NOT NULL REFERENCES customer(id),
                b TEXT NOT NULL REFERENCES customer(id),
                score DOUBLE PRECISION NOT NULL,
                evidence TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('open', 'merged', 'dismissed')),
                queued_ms BIGINT NOT NULL,
                decided_ms BIGINT,
                decided_by TEXT,
                PRIMARY KEY (a, b)
            );
            CREATE INDEX duplicate_review_status ON duplicate_review(status, score);
            CREATE TABLE import_record (
                source TEXT NOT NULL,
                record TEXT NOT NULL,
                customer_id TEXT NOT NULL REFERENCES customer(id),
                imported_ms BIGINT NOT NULL,
                PRIMARY KEY (source, record)
            );
            CREATE TABLE moment (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES customer(id),
                kind TEXT NOT NULL,
                due_ms BIGINT NOT NULL,
                reason TEXT NOT NULL,
                channels TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('open', 'done', 'snoozed', 'dismissed')),
                snoozed_until_ms BIGINT,
                created_ms BIGINT NOT NULL,
                decided_ms BIGINT,
                decided_by TEXT,
                publish_after_seq BIGINT,
                -- Which till's journal it is being published to (tilld's stream).
                publish_stream TEXT,
                published_seq BIGINT
            );
            CREATE INDEX moment_customer ON moment(customer_id);
            CREATE INDEX moment_due ON moment(status, due_ms);
            CREATE INDEX moment_unpublished ON moment(created_ms) WHERE published_seq IS NULL;
            -- The outbox. Entries are numbered under an advisory lock held to commit
            -- (PostgresTransaction.appendOutbox), so seq order is commit order even with many
            -- till-crm processes writing: a target's cursor never passes an entry still uncommitted.
            CREATE TABLE outbox (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                customer_id TEXT NOT NULL,
                type TEXT NOT NULL,
                body TEXT NOT NULL,
                created_ms BIGINT NOT NULL
            );
            CREATE INDEX outbox_customer ON outbox(customer_id);
            CREATE TABLE outbox_target (
                name TEXT PRIMARY KEY,
                taken_seq BIGINT NOT NULL,
                delivered BIGINT NOT NULL DEFAULT 0,
                last_delivered_ms BIGINT,
                last_error TEXT,
                last_error_ms BIGINT,
                paused_until_ms BIGINT,
                checkpoint TEXT
            );
            CREATE TABLE delivery (
                target TEXT NOT NULL REFERENCES outbox_target(name),
                seq BIGINT NOT NULL REFERENCES outbox(seq),
                customer_id TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
                attempts BIGINT NOT NULL DEFAULT 0,
                refusals BIGINT NOT NULL DEFAULT 0,
                next_ms BIGINT NOT NULL,
                first_failed_ms BIGINT,
                retried_ms BIGINT,
                last_error TEXT,
                PRIMARY KEY (target, seq)
            );
            CREATE INDEX delivery_customer ON delivery(target, customer_id, seq) WHERE state = 'pending';
            CREATE INDEX delivery_seq ON delivery(seq);
            """),
    ]
}
