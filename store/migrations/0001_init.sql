-- Hosted domains: organizations' domains. The personal domain is config.
CREATE TABLE domains (
	name    TEXT PRIMARY KEY,          -- A-labels, lower case
	created INTEGER NOT NULL           -- unix seconds
) STRICT;

CREATE TABLE accounts (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	address       TEXT NOT NULL UNIQUE, -- local@a-label-domain, domain lower case
	domain        TEXT NOT NULL,
	kind          TEXT NOT NULL CHECK (kind IN ('personal', 'organization')),
	password_hash TEXT,                 -- NULL: no mail password (federated until set)
	two_step      INTEGER NOT NULL DEFAULT 0 CHECK (two_step IN (0, 1)),
	federated     INTEGER NOT NULL DEFAULT 0 CHECK (federated IN (0, 1)),
	-- credential_gen changes with every password or app-password change, so
	-- the verified-login cache drops stale entries.
	credential_gen INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL
) STRICT;
CREATE INDEX accounts_domain ON accounts(domain);

CREATE TABLE app_passwords (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created    INTEGER NOT NULL,
	last_used  INTEGER,                 -- unix seconds, NULL until first use
	UNIQUE (account_id, name)
) STRICT;

CREATE TABLE pop_settings (
	account_id   INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	access       TEXT NOT NULL DEFAULT 'disabled' CHECK (access IN ('disabled', 'all', 'since')),
	since        INTEGER,               -- unix nanoseconds when "from now on" was chosen
	include_spam INTEGER NOT NULL DEFAULT 0 CHECK (include_spam IN (0, 1)),
	on_delete    TEXT NOT NULL DEFAULT 'keep' CHECK (on_delete IN ('keep', 'delete'))
) STRICT;

-- Messages. id is the UID: AUTOINCREMENT never reuses a value, so UIDL
-- values stay unique per account forever (RFC 1939 §7).
CREATE TABLE messages (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	received   INTEGER NOT NULL,        -- unix nanoseconds
	size       INTEGER NOT NULL,        -- octets with CRLF line endings, as sent
	spam       INTEGER NOT NULL DEFAULT 0 CHECK (spam IN (0, 1)),
	in_pop     INTEGER NOT NULL DEFAULT 1 CHECK (in_pop IN (0, 1)),
	body       BLOB NOT NULL            -- CRLF line endings
) STRICT;
-- Covers the maildrop listing at login without touching bodies.
CREATE INDEX messages_pop ON messages(account_id, in_pop, id, size, spam, received);

-- Small key/value facts: domains_serial (bumped on every domain change; the
-- DNS SOA serial), login_secret (HMAC key of the verified-login cache).
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('domains_serial', '1');
