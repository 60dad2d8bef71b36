-- Leases on background jobs, and the change feed.
--
-- A job's lease: who holds it, until when (milliseconds by the database's clock, so nodes'
-- clocks need not agree), and its fencing token, which grows with every new grant. A
-- released lease keeps its row (expires_at 0) so that its token keeps growing.
CREATE TABLE leases (
    job        text COLLATE "C" PRIMARY KEY,
    holder     text   NOT NULL,
    token      bigint NOT NULL CHECK (token > 0),
    expires_at bigint NOT NULL
);

-- The database's clock in milliseconds: what leases are granted and checked against.
CREATE FUNCTION arca_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

-- The change feed's channel: one per schema, so deployments in different schemas of one
-- database do not hear each other (a channel name is at most 63 bytes, hence the digest).
CREATE FUNCTION arca_channel() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT 'arca_changes_' || md5(current_schema()) $$;

-- Queues a change notice, delivered to every listener when (and only if) the calling
-- transaction commits. Returns true, so that a write can call it in its own statement.
CREATE FUNCTION arca_notify(payload text) RETURNS boolean LANGUAGE sql VOLATILE AS
$$ SELECT pg_notify(arca_channel(), payload); SELECT true $$;
