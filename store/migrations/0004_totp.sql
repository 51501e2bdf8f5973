-- The second factor of two-step verification for the settings page: a TOTP
-- secret (RFC 6238; base32, as authenticator apps take it), NULL until an
-- authenticator app is registered, and the last time step a code was
-- accepted for, so no code is accepted twice (RFC 6238 §5.2). The secret
-- must be readable to check codes, so unlike passwords it cannot be hashed.
ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER;
