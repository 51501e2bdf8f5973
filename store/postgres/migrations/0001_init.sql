-- The PostgreSQL twin of store/migrations/0001_init.sql: same tables, same
-- columns, same units (unix seconds or nanoseconds in BIGINT), so a
-- version number means the same schema on both drivers. Identity columns
-- come from sequences, which never hand out a value twice: UIDs stay
-- unique per account forever (RFC 1939 §7). Text that is listed in order
-- compares bytewise (COLLATE "C"), as SQLite's BINARY does, whatever the
-- database's locale.
CREATE TABLE domains (
	name    TEXT COLLATE "C" PRIMARY KEY, -- A-labels, lower case
	created BIGINT NOT NULL            -- unix seconds
);

CREATE TABLE accounts (
	id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	address        TEXT COLLATE "C" NOT NULL UNIQUE, -- local@a-label-domain, domain lower case
	domain         TEXT NOT NULL,
	kind           TEXT NOT NULL CHECK (kind IN ('personal', 'organization')),
	password_hash  TEXT,                 -- NULL: no mail password (federated until set)
	two_step       BOOLEAN NOT NULL DEFAULT false,
	federated      BOOLEAN NOT NULL DEFAULT false,
	credential_gen BIGINT NOT NULL DEFAULT 0,
	created        BIGINT NOT NULL
);
CREATE INDEX accounts_domain ON accounts(domain);

CREATE TABLE app_passwords (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name       TEXT COLLATE "C" NOT NULL,
	hash       TEXT NOT NULL,
	created    BIGINT NOT NULL,
	last_used  BIGINT,
	UNIQUE (account_id, name)
);

CREATE TABLE pop_settings (
	account_id   BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	access       TEXT NOT NULL DEFAULT 'disabled' CHECK (access IN ('disabled', 'all', 'since')),
	since        BIGINT,                -- unix nanoseconds when "from now on" was chosen
	include_spam BOOLEAN NOT NULL DEFAULT false,
	on_delete    TEXT NOT NULL DEFAULT 'keep' CHECK (on_delete IN ('keep', 'delete'))
);

CREATE TABLE messages (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	received   BIGINT NOT NULL,         -- unix nanoseconds
	size       BIGINT NOT NULL,         -- octets with CRLF line endings, as sent
	spam       BOOLEAN NOT NULL DEFAULT false,
	in_pop     BOOLEAN NOT NULL DEFAULT true,
	body       BYTEA NOT NULL           -- CRLF line endings
);
-- Covers the maildrop listing at login without touching bodies.
CREATE INDEX messages_pop ON messages(account_id, in_pop, id) INCLUDE (size, spam, received);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('domains_serial', '1');
-- Bodies out of line and uncompressed: substring() then reads only the
-- pages a RETR slice needs (store/postgres/body.go).
ALTER TABLE messages ALTER COLUMN body SET STORAGE EXTERNAL;
