-- 001_initial: secrets, their tags and versions, sealed values, access keys, encryption keys.
-- Integer primary keys are internal; the Store trait speaks ARNs.

CREATE TABLE secrets (
    id                INTEGER PRIMARY KEY,
    region            TEXT    NOT NULL,
    arn               TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL,
    description       TEXT,
    kms_key_id        TEXT,
    secret_type       TEXT,
    owning_service    TEXT,
    primary_region    TEXT,
    created_at        INTEGER NOT NULL,
    last_changed_at   INTEGER NOT NULL,
    last_accessed_day INTEGER,
    -- NULL ("never read") sorts as the smallest value. Comparing row values against NULL
    -- yields NULL, so keyset pagination sorts and compares this non-NULL twin instead.
    last_accessed_key INTEGER GENERATED ALWAYS AS (coalesce(last_accessed_day, -9223372036854775808)) VIRTUAL,
    deleted_at        INTEGER,
    purge_at          INTEGER,
    extra             TEXT    NOT NULL DEFAULT '{}',
    revision          INTEGER NOT NULL,
    -- Also serves ListSecrets sorted by name (names are unique per region, so the ARN
    -- tie-break never decides there).
    UNIQUE (region, name)
);

-- List orders (each tie-broken by ARN, as the keyset cursor is).
CREATE INDEX secrets_by_created  ON secrets (region, created_at, arn);
CREATE INDEX secrets_by_changed  ON secrets (region, last_changed_at, arn);
CREATE INDEX secrets_by_accessed ON secrets (region, last_accessed_key, arn);
-- The purge worker only ever looks at scheduled deletions.
CREATE INDEX secrets_by_purge    ON secrets (purge_at) WHERE purge_at IS NOT NULL;

CREATE TABLE tags (
    secret_id INTEGER NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (secret_id, position)
) WITHOUT ROWID;

CREATE TABLE versions (
    id                INTEGER PRIMARY KEY,
    secret_id         INTEGER NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version_id        TEXT    NOT NULL,
    stages            TEXT    NOT NULL, -- JSON array of labels
    created_at        INTEGER NOT NULL,
    last_accessed_day INTEGER,
    kms_key_ids       TEXT    NOT NULL, -- JSON array of key ids
    value_digest      BLOB    NOT NULL,
    has_value         INTEGER NOT NULL,
    UNIQUE (secret_id, version_id)
);

-- Sealed values live apart from version metadata so that listing (which loads the
-- metadata of many versions) never drags ciphertext pages through the cache.
CREATE TABLE sealed_values (
    version_row INTEGER PRIMARY KEY REFERENCES versions (id) ON DELETE CASCADE,
    sealed      BLOB    NOT NULL
);

CREATE TABLE access_keys (
    access_key_id TEXT    PRIMARY KEY,
    sealed_secret BLOB    NOT NULL,
    description   TEXT,
    created_at    INTEGER NOT NULL,
    enabled       INTEGER NOT NULL
);

CREATE TABLE encryption_keys (
    key_id     TEXT    PRIMARY KEY,
    alias      TEXT,
    region     TEXT    NOT NULL,
    wrapped    BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
