-- 001_initial: the whole schema (SQLite's migrations 001-007), in PostgreSQL's terms.
-- Integer primary keys are internal; the Store trait speaks ARNs. Text that is sorted or
-- compared as a range (names, ARNs, keys of ordered lists) uses the "C" collation: bytewise,
-- like SQLite, whatever the database's default collation.
--
-- Ordered logs (events, outbox, audit, deliveries): a row is inserted with its public
-- number NULL and its transaction's id (`tx`). The sequencer (src/sequence.rs) numbers rows
-- once every transaction that could precede them has ended (tx below the oldest running
-- transaction), in (tx, row_id) order, so a reader never sees a number appear below one it
-- has seen, whichever node wrote it. `counters` keeps each log's highest number (never
-- reused, not even after a wipe) and the audit chain's head hash.

CREATE TABLE counters (
    name  text   PRIMARY KEY CHECK (name IN ('events', 'outbox', 'audit', 'deliveries')),
    value bigint NOT NULL CHECK (value >= 0),
    hash  bytea  CHECK (hash IS NULL OR length(hash) = 32)
);
INSERT INTO counters (name, value, hash) VALUES
    ('events', 0, NULL),
    ('outbox', 0, NULL),
    ('audit', 0, decode(repeat('00', 32), 'hex')),
    ('deliveries', 0, NULL);

CREATE TABLE secrets (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region            text   COLLATE "C" NOT NULL,
    arn               text   COLLATE "C" NOT NULL UNIQUE,
    name              text   COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 512),
    description       text,
    kms_key_id        text,
    secret_type       text,
    owning_service    text,
    primary_region    text,
    created_at        bigint NOT NULL,
    last_changed_at   bigint NOT NULL,
    last_accessed_day bigint,
    -- NULL ("never read") sorts as the smallest value; keyset pagination compares this
    -- non-NULL twin (a row comparison with NULL is NULL).
    last_accessed_key bigint GENERATED ALWAYS AS
                      (coalesce(last_accessed_day, '-9223372036854775808'::bigint)) STORED,
    deleted_at        bigint,
    purge_at          bigint,
    rotation_due_at   bigint,
    extra             json   NOT NULL DEFAULT '{}',
    revision          bigint NOT NULL CHECK (revision >= 1),
    -- A scheduled purge has a deletion date.
    CHECK (purge_at IS NULL OR deleted_at IS NOT NULL),
    CONSTRAINT secrets_region_name UNIQUE (region, name)
);
CREATE INDEX secrets_by_created  ON secrets (region, created_at, arn);
CREATE INDEX secrets_by_changed  ON secrets (region, last_changed_at, arn);
CREATE INDEX secrets_by_accessed ON secrets (region, last_accessed_key, arn);
CREATE INDEX secrets_by_purge    ON secrets (purge_at, arn) WHERE purge_at IS NOT NULL;
CREATE INDEX secrets_by_rotation ON secrets (rotation_due_at, arn) WHERE rotation_due_at IS NOT NULL;

CREATE TABLE tags (
    secret_id bigint NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    position  int    NOT NULL CHECK (position >= 0),
    key       text   NOT NULL,
    value     text   NOT NULL,
    PRIMARY KEY (secret_id, position)
);

CREATE TABLE versions (
    id                bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret_id         bigint  NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version_id        text    NOT NULL,
    stages            text[]  NOT NULL,
    created_at        bigint  NOT NULL,
    last_accessed_day bigint,
    kms_key_ids       text[]  NOT NULL,
    value_digest      bytea   NOT NULL,
    has_value         boolean NOT NULL,
    UNIQUE (secret_id, version_id)
);
-- Listing shows only labelled versions.
CREATE INDEX versions_labelled ON versions (secret_id, id) WHERE cardinality(stages) > 0;

-- Sealed values apart from version metadata, so listing never reads ciphertext pages.
CREATE TABLE sealed_values (
    version_row bigint PRIMARY KEY REFERENCES versions (id) ON DELETE CASCADE,
    sealed      bytea  NOT NULL
);

CREATE TABLE access_keys (
    access_key_id text    COLLATE "C" PRIMARY KEY,
    sealed_secret bytea   NOT NULL,
    description   text,
    created_at    bigint  NOT NULL,
    enabled       boolean NOT NULL,
    scope         text    NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'replication'))
);

CREATE TABLE encryption_keys (
    key_id     text   COLLATE "C" PRIMARY KEY,
    alias      text,
    region     text   NOT NULL,
    wrapped    bytea  NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT encryption_keys_region_alias UNIQUE (region, alias)
);

CREATE TABLE events (
    row_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         bigint UNIQUE,
    tx         xid8   NOT NULL DEFAULT pg_current_xact_id(),
    time       bigint NOT NULL,
    name       text   NOT NULL,
    region     text   NOT NULL,
    secret_arn text   COLLATE "C",
    version_id text,
    step       text,
    error      text,
    detail     json   NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_secret ON events (secret_arn, id) WHERE id IS NOT NULL;
CREATE INDEX events_unsequenced ON events (tx, row_id) WHERE id IS NULL;

CREATE TABLE rotation_functions (
    arn           text   COLLATE "C" PRIMARY KEY,
    spec          json   NOT NULL,
    sealed_secret bytea,
    created_at    bigint NOT NULL
);

CREATE TABLE outbox (
    row_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              bigint UNIQUE,
    tx              xid8   NOT NULL DEFAULT pg_current_xact_id(),
    created_at      bigint NOT NULL,
    kind            text   NOT NULL CHECK (kind IN ('sync', 'remove', 'promoted')),
    source_region   text   NOT NULL,
    arn             text   COLLATE "C" NOT NULL,
    name            text   NOT NULL,
    target_region   text   NOT NULL,
    version_ids     text[] NOT NULL DEFAULT '{}',
    revision        bigint NOT NULL DEFAULT 0,
    attempts        int    NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at bigint NOT NULL,
    last_error      text
);
CREATE INDEX outbox_due ON outbox (id) WHERE id IS NOT NULL;
CREATE INDEX outbox_failed_by_arn ON outbox (arn, id) WHERE attempts > 0;
CREATE INDEX outbox_unsequenced ON outbox (tx, row_id) WHERE id IS NULL;

-- The audit trail: one hash chain over every record (arca-store's audit module). seq,
-- prev_hash and hash are set together by the sequencer.
CREATE TABLE audit (
    row_id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq           bigint  UNIQUE,
    tx            xid8    NOT NULL DEFAULT pg_current_xact_id(),
    time          bigint  NOT NULL,
    event_id      text    NOT NULL,
    event_type    text    NOT NULL,
    event_name    text    NOT NULL,
    region        text    NOT NULL,
    read_only     boolean NOT NULL,
    access_key_id text,
    resource      text    COLLATE "C",
    error_code    text,
    batch_size    int     NOT NULL DEFAULT 0 CHECK (batch_size >= 0),
    detail        text    NOT NULL,
    prev_hash     bytea,
    hash          bytea,
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL))
);
CREATE INDEX audit_by_time ON audit (time);
CREATE INDEX audit_by_resource ON audit (resource, seq) WHERE resource IS NOT NULL;
CREATE INDEX audit_unsequenced ON audit (tx, row_id) WHERE seq IS NULL;

CREATE TABLE rules (
    region      text   COLLATE "C" NOT NULL,
    name        text   COLLATE "C" NOT NULL,
    pattern     text   NOT NULL,
    state       text   NOT NULL CHECK (state IN
                    ('ENABLED', 'DISABLED', 'ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS')),
    description text,
    managed_by  text,
    created_at  bigint NOT NULL,
    PRIMARY KEY (region, name)
);
CREATE TABLE targets (
    region       text COLLATE "C" NOT NULL,
    rule         text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    arn          text NOT NULL,
    input        text,
    input_path   text,
    max_retries  int  NOT NULL CHECK (max_retries BETWEEN 0 AND 185),
    max_age_secs int  NOT NULL CHECK (max_age_secs BETWEEN 60 AND 86400),
    options      text NOT NULL DEFAULT '{}',
    PRIMARY KEY (region, rule, id),
    FOREIGN KEY (region, rule) REFERENCES rules (region, name) ON DELETE CASCADE
);
CREATE TABLE deliveries (
    row_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq             bigint UNIQUE,
    tx              xid8   NOT NULL DEFAULT pg_current_xact_id(),
    region          text   COLLATE "C" NOT NULL,
    rule            text   COLLATE "C" NOT NULL,
    target_id       text   COLLATE "C" NOT NULL,
    event_id        text   NOT NULL,
    event           text   NOT NULL,
    created_at      bigint NOT NULL,
    state           text   NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempts        int    NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at bigint NOT NULL,
    last_error      text
);
CREATE INDEX deliveries_by_target ON deliveries (region, rule, target_id, state, seq);
CREATE INDEX deliveries_by_state ON deliveries (state, seq);
CREATE INDEX deliveries_unsequenced ON deliveries (tx, row_id) WHERE seq IS NULL;

CREATE TABLE sync_jobs (
    name       text   COLLATE "C" PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    spec       json   NOT NULL,
    created_at bigint NOT NULL
);
