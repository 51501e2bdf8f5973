-- Scratch data of a settings session (store/migrations/0014_web_scratch.sql):
-- sealed under a key the database never holds, ended with its session,
-- when taken, or at expires (unix seconds).
CREATE TABLE web_scratch (
	id_hash  BYTEA NOT NULL REFERENCES web_sessions(id_hash) ON DELETE CASCADE,
	kind     TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 16),
	sealed   BYTEA NOT NULL CHECK (octet_length(sealed) <= 4096),
	expires  BIGINT NOT NULL,
	failures INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (id_hash, kind)
);
