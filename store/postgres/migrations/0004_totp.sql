-- Two-step verification's authenticator secret and last accepted step
-- (store/migrations/0004_totp.sql).
ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT;
