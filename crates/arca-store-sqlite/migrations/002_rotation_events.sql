-- 002_rotation_events: when the rotation worker must next look at a secret, the event
-- log, and the operator's rotation-function bindings.

-- NULL = nothing to do (no rotation scheduled, no retry, no lease to expire).
ALTER TABLE secrets ADD COLUMN rotation_due_at INTEGER;
-- The rotation worker only ever looks at secrets with something due.
CREATE INDEX secrets_by_rotation ON secrets (rotation_due_at) WHERE rotation_due_at IS NOT NULL;

-- AUTOINCREMENT so ids are never reused, even after the newest events are deleted
-- (a wipe): a consumer resuming after the last id it saw must not skip new events.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    secret_arn TEXT,
    version_id TEXT,
    step       TEXT,
    error      TEXT,
    detail     TEXT    NOT NULL DEFAULT '{}'
);
-- One secret's history, in order.
CREATE INDEX events_by_secret ON events (secret_arn, id);

CREATE TABLE rotation_functions (
    arn           TEXT    PRIMARY KEY,
    spec          TEXT    NOT NULL, -- JSON
    sealed_secret BLOB,
    created_at    INTEGER NOT NULL
);
