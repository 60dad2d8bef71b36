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
    revision        INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);
-- DescribeSecret's scan (one secret's failed deliveries): partial, so the normal path (an
-- entry inserted, delivered, deleted) writes no index page; only a failed attempt adds
-- the entry here. The worker's scan of what is due walks the table in id order: it is
-- kept near empty. (Measured: the full (arn, id) index cost a replicated write ~10% of
-- the primary's CPU.)
CREATE INDEX outbox_failed_by_arn ON outbox (arn, id) WHERE attempts > 0;

ALTER TABLE access_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'
    CHECK (scope IN ('full', 'replication'));
