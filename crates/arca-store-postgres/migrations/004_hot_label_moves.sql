-- Label moves as heap-only updates: a PutSecretValue moves AWSCURRENT and AWSPREVIOUS,
-- rewriting two version rows. While `stages` sat in an index predicate, each rewrite
-- added an entry to every index of `versions`; without it, and with room left in each
-- page, PostgreSQL updates the row in place (HOT). Listing's filter on labelled versions
-- reads a secret's at most 100 versions through (secret_id, version_id) instead.
DROP INDEX versions_labelled;
ALTER TABLE versions SET (fillfactor = 85);
ALTER TABLE secrets SET (fillfactor = 85);
