-- Settings-screen sessions (store/migrations/0006_sessions.sql): id_hash
-- is SHA-256 of the cookie's session id, never the id itself.
CREATE TABLE web_sessions (
	id_hash    BYTEA PRIMARY KEY CHECK (length(id_hash) = 32),
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	generation BIGINT NOT NULL,
	created    BIGINT NOT NULL,
	seen       BIGINT NOT NULL,
	auth_at    BIGINT NOT NULL
);
CREATE INDEX web_sessions_account ON web_sessions(account_id, seen);
CREATE INDEX web_sessions_seen ON web_sessions(seen);
CREATE INDEX web_sessions_created ON web_sessions(created);
