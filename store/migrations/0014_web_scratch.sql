-- Scratch data of a settings session (webui/scratch.go): what the page
-- after a form shows once (a new app password) and a two-step secret
-- awaiting its confirming code. Kept here, next to the session, so that
-- whichever node serves the next request finds it (no sticky routing).
-- sealed is AES-256-GCM under a key derived from the web secret and the
-- cookie's session id, which the database never holds (web_sessions
-- keeps only its SHA-256): a copy of the database opens no entry. An
-- entry ends with its session (ON DELETE CASCADE), when taken, or at
-- expires (unix seconds); failures counts wrong uses (confirming codes).
CREATE TABLE web_scratch (
	id_hash  BLOB NOT NULL REFERENCES web_sessions(id_hash) ON DELETE CASCADE,
	kind     TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 16),
	sealed   BLOB NOT NULL CHECK (length(sealed) <= 4096),
	expires  INTEGER NOT NULL,
	failures INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (id_hash, kind)
) STRICT, WITHOUT ROWID;
