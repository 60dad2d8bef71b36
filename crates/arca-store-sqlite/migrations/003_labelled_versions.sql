-- 003_labelled_versions: listing shows only labelled versions; a partial index finds them
-- without visiting the (up to a hundred) deprecated versions of each secret.
CREATE INDEX versions_labelled ON versions (secret_id, id) WHERE stages <> '[]';
