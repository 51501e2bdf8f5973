-- Mail forwarding (store/forward.go): at most one target per account.
-- A target starts pending: token_hash is SHA-256 of the one-time link's
-- token (the token itself is only in the message sent to the target, so
-- a copy of the database confirms nothing), valid until token_expires
-- (unix seconds). Confirming sets confirmed (unix seconds) and clears the
-- token, so a link works once. keep = 0 leaves no copy in the mailbox.
CREATE TABLE forwards (
	account_id    INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	target        TEXT NOT NULL,
	keep          INTEGER NOT NULL,
	confirmed     INTEGER NOT NULL DEFAULT 0,
	token_hash    BLOB CHECK (token_hash IS NULL OR length(token_hash) = 32),
	token_expires INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX forwards_token ON forwards(token_hash);
