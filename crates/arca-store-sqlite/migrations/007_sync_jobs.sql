-- Sync jobs added through `arca sync add` (the config file's jobs are not stored).
-- `spec` is the job's configuration as JSON: it names credential files, never holds
-- credentials.
CREATE TABLE sync_jobs (
    name       TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    spec       TEXT NOT NULL CHECK (json_valid(spec)),
    created_at INTEGER NOT NULL
);
