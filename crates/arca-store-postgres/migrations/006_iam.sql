-- IAM users, roles and customer managed policies, so that access keys belong to
-- principals whose policies decide what a key may do. Each entity is one JSON document
-- (arca-core owns its shape), keyed by (account, kind, name). An access key names its
-- owner (account and user); keys from before this migration have none and stand for the
-- default account's administrator.
CREATE TABLE iam_entities (
    account    text   COLLATE "C" NOT NULL,
    kind       text   COLLATE "C" NOT NULL CHECK (kind IN ('user', 'role', 'policy')),
    name       text   COLLATE "C" NOT NULL,
    document   text   NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (account, kind, name)
);

-- Both owner columns or neither. Adding nullable columns without a default rewrites no
-- rows, and the check holds for the existing ones (they have neither).
ALTER TABLE access_keys
    ADD COLUMN owner_account text COLLATE "C",
    ADD COLUMN owner_user    text COLLATE "C",
    ADD CONSTRAINT access_keys_owner_whole
        CHECK ((owner_account IS NULL) = (owner_user IS NULL));
