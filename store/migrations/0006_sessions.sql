-- Sessions of the settings screen (webui). id_hash is SHA-256 of the
-- session id: the id itself is the secret in the browser's cookie and is
-- never stored, so a copy of the database signs nobody in. generation is
-- the account's credential_gen at sign-in: a session whose generation is
-- no longer the account's is over (a password, two-step or app-password
-- change happened since). Times are unix seconds; auth_at is the last
-- time the owner proved the password (sign-in or re-authentication).
CREATE TABLE web_sessions (
	id_hash    BLOB PRIMARY KEY CHECK (length(id_hash) = 32),
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	generation INTEGER NOT NULL,
	created    INTEGER NOT NULL,
	seen       INTEGER NOT NULL,
	auth_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_account ON web_sessions(account_id, seen);
CREATE INDEX web_sessions_seen ON web_sessions(seen);
CREATE INDEX web_sessions_created ON web_sessions(created);
