-- ListSecrets' LastChangedDate order from a narrow table of its own, so that the UPDATE of
-- a secret's row in every write changes no indexed column and is a heap-only (HOT) update:
-- with `secrets_by_changed` on the row, each write added an entry to all six indexes of
-- `secrets`. `secrets.last_changed_at` stays the value reads return; a trigger keeps its
-- copy here, in the same statement, for every path that writes it.
CREATE TABLE secret_changed (
    secret_id       bigint PRIMARY KEY REFERENCES secrets (id) ON DELETE CASCADE,
    region          text   COLLATE "C" NOT NULL,
    arn             text   COLLATE "C" NOT NULL,
    last_changed_at bigint NOT NULL
);
INSERT INTO secret_changed (secret_id, region, arn, last_changed_at)
    SELECT id, region, arn, last_changed_at FROM secrets;
CREATE INDEX secret_changed_order ON secret_changed (region, last_changed_at, arn);
DROP INDEX secrets_by_changed;

CREATE FUNCTION arca_secret_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO secret_changed (secret_id, region, arn, last_changed_at)
        VALUES (NEW.id, NEW.region, NEW.arn, NEW.last_changed_at)
        ON CONFLICT (secret_id) DO UPDATE SET last_changed_at = EXCLUDED.last_changed_at;
    RETURN NULL;
END $$;
CREATE TRIGGER secrets_changed_on_insert AFTER INSERT ON secrets
    FOR EACH ROW EXECUTE FUNCTION arca_secret_changed();
CREATE TRIGGER secrets_changed_on_update AFTER UPDATE OF last_changed_at ON secrets
    FOR EACH ROW WHEN (OLD.last_changed_at IS DISTINCT FROM NEW.last_changed_at)
    EXECUTE FUNCTION arca_secret_changed();
