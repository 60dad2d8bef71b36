-- 005_audit: the audit trail, one hash chain over every record (see arca-store's audit
-- module). seq is assigned by the single writer as one more than the highest ever used
-- (AUTOINCREMENT's counter), so a deleted record leaves a gap that verification finds.
CREATE TABLE audit (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    time          INTEGER NOT NULL,
    event_id      TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    event_name    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    read_only     INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    access_key_id TEXT,
    resource      TEXT,
    error_code    TEXT,
    batch_size    INTEGER NOT NULL DEFAULT 0 CHECK (batch_size >= 0),
    detail        TEXT    NOT NULL,
    prev_hash     BLOB    NOT NULL,
    hash          BLOB    NOT NULL
);
-- Reads and refused calls arrive packed, many to a row (batch_size > 0; their columns
-- are not their calls'): queries keep every batch in range and arca-core filters its
-- calls. Two indexes: time ranges, and one secret's history among single records.
CREATE INDEX audit_by_time ON audit (time);
CREATE INDEX audit_by_resource ON audit (resource, seq) WHERE resource IS NOT NULL;
