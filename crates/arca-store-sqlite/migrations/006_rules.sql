-- 006_rules: event rules on each region's default bus, their targets, and the deliveries
-- they owe. A delivery is inserted in the transaction of the write whose event matched;
-- seq (AUTOINCREMENT on the single writer) is the order a target receives them.
CREATE TABLE rules (
    region      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    pattern     TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN
                    ('ENABLED', 'DISABLED', 'ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS')),
    description TEXT,
    managed_by  TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (region, name)
);
CREATE TABLE targets (
    region       TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    arn          TEXT    NOT NULL,
    input        TEXT,
    input_path   TEXT,
    max_retries  INTEGER NOT NULL CHECK (max_retries BETWEEN 0 AND 185),
    max_age_secs INTEGER NOT NULL CHECK (max_age_secs BETWEEN 60 AND 86400),
    options      TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (region, rule, id),
    FOREIGN KEY (region, rule) REFERENCES rules (region, name) ON DELETE CASCADE
);
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    region          TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    target_id       TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);
-- Each target's queue in order (the head is its lowest pending seq).
CREATE INDEX deliveries_by_target ON deliveries (region, rule, target_id, state, seq);
CREATE INDEX deliveries_by_state ON deliveries (state, seq);
