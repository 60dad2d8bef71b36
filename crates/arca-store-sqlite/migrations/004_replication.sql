-- 004_replication: the replication outbox, and the scope an access key is bound to.

-- AUTOINCREMENT: ids follow commit order on the single writer and are never reused, so
-- the delivery worker can deliver in order and drop what it delivered by id.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      INTEGER NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('sync', 'remove', 'promoted')),
    source_region   TEXT    NOT NULL,
    arn             TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    target_region   TEXT    NOT NULL,
    version_ids     TEXT    NOT NULL DEFAULT '[]', -- JSON array
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);
-- The worker's scan (what is due), and DescribeSecret's (one secret's backlog).
CREATE INDEX outbox_by_due ON outbox (next_attempt_at, id);
CREATE INDEX outbox_by_arn ON outbox (arn, id);

ALTER TABLE access_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'
    CHECK (scope IN ('full', 'replication'));
