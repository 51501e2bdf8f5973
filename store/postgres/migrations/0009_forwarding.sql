-- Mail forwarding (store/migrations/0009_forwarding.sql): at most one
-- target per account; token_hash is SHA-256 of the one-time link's token,
-- valid until token_expires (unix seconds); confirmed is the unix second
-- the link was opened (0: pending); keep = false leaves no local copy.
CREATE TABLE forwards (
	account_id    BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	target        TEXT COLLATE "C" NOT NULL,
	keep          BOOLEAN NOT NULL,
	confirmed     BIGINT NOT NULL DEFAULT 0,
	token_hash    BYTEA CHECK (token_hash IS NULL OR length(token_hash) = 32),
	token_expires BIGINT NOT NULL DEFAULT 0,
	created       BIGINT NOT NULL
);
CREATE UNIQUE INDEX forwards_token ON forwards(token_hash);
