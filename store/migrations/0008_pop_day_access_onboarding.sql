-- POP access from a chosen day: since_day is the day as chosen
-- (YYYY-MM-DD, in the provider's time zone) and since its first instant
-- (unix nanoseconds); since_day NULL with access 'since' is "from now on".
ALTER TABLE pop_settings ADD COLUMN since_day TEXT CHECK (since_day IS NULL OR length(since_day) = 10);

-- The last POP session of each account (what a user checks when "my phone
-- stopped getting mail"), written once at QUIT or when the connection
-- ends: when, from which client address, how many messages it downloaded.
CREATE TABLE pop_last_access (
	account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	at         INTEGER NOT NULL,        -- unix nanoseconds
	remote     TEXT NOT NULL,           -- client IP address, "" if unknown
	downloaded INTEGER NOT NULL CHECK (downloaded >= 0)
) STRICT;

-- Onboarding: an address asked a discovery format for its settings, and
-- whether it then logged in to POP or SMTP within an hour. The address is
-- kept only as an HMAC under onboarding_key (never in clear). requested
-- and first_login are unix nanoseconds; settled is 1 once the outcome was
-- counted (a login, or an hour passed without one). Rows older than the
-- retention are deleted and their number is capped (store/onboarding.go).
CREATE TABLE onboarding (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	addr_hash   BLOB NOT NULL CHECK (length(addr_hash) = 32),
	format      TEXT NOT NULL CHECK (length(format) BETWEEN 1 AND 32),
	requested   INTEGER NOT NULL,
	first_login INTEGER,
	settled     INTEGER NOT NULL DEFAULT 0 CHECK (settled IN (0, 1))
) STRICT;
CREATE INDEX onboarding_addr ON onboarding(addr_hash, requested);
CREATE INDEX onboarding_requested ON onboarding(requested);
CREATE INDEX onboarding_unsettled ON onboarding(settled, requested);
INSERT INTO meta (key, value) VALUES ('onboarding_key', lower(hex(randomblob(32))));
