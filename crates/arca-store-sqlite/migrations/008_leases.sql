-- Leases on background jobs (the purge, rotation, replication, event delivery, each sync
-- job). One node on SQLite holds them all; the table gives it the same worker code and
-- fencing as several nodes on PostgreSQL. A released lease keeps its row (expires_at 0)
-- so that its token keeps growing.
CREATE TABLE leases (
    job        TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    token      INTEGER NOT NULL CHECK (token > 0),
    expires_at INTEGER NOT NULL
);
