-- 009_iam: IAM users, roles and customer managed policies, so that access keys belong to
-- principals whose policies decide what a key may do. Each entity is one JSON document
-- (arca-core owns its shape), keyed by (account, kind, name). An access key names its
-- owner (account and user); keys from before this migration have none and stand for the
-- default account's administrator.
CREATE TABLE iam_entities (
    account    TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('user', 'role', 'policy')),
    name       TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account, kind, name)
);

-- Both owner columns or neither. ADD COLUMN accepts a CHECK on a nullable column (tested
-- against the existing rows, which have neither); a column constraint in SQLite may name
-- the table's other columns, so the second column carries the check for the pair.
ALTER TABLE access_keys ADD COLUMN owner_account TEXT;
ALTER TABLE access_keys ADD COLUMN owner_user TEXT
    CHECK ((owner_account IS NULL) = (owner_user IS NULL));
