-- 007_key_policies: a key policy per customer key (JSON), as KMS keeps one, so that who
-- may use a key is decided by it. Keys from before have none and behave as KMS's default
-- policy (the account's identity policies decide).
ALTER TABLE encryption_keys ADD COLUMN policy text;
