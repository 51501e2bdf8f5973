-- The PostgreSQL twin of store/migrations/0008_pop_day_access_onboarding.sql.
-- POP access from a chosen day: since_day is the day as chosen
-- (YYYY-MM-DD, in the provider's time zone) and since its first instant
-- (unix nanoseconds); since_day NULL with access 'since' is "from now on".
ALTER TABLE pop_settings ADD COLUMN since_day TEXT CHECK (since_day IS NULL OR length(since_day) = 10);

-- The last POP session of each account, written once at QUIT or when the
-- connection ends: when, from which client address, how many messages it
-- downloaded.
CREATE TABLE pop_last_access (
	account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	at         BIGINT NOT NULL,         -- unix nanoseconds
	remote     TEXT NOT NULL,           -- client IP address, "" if unknown
	downloaded BIGINT NOT NULL CHECK (downloaded >= 0)
);

-- Onboarding: an address asked a discovery format for its settings, and
-- whether it then logged in to POP or SMTP within an hour. The address is
-- kept only as an HMAC under onboarding_key (never in clear). requested
-- and first_login are unix nanoseconds; settled is true once the outcome
-- was counted (a login, or an hour passed without one). Formats compare
-- bytewise (COLLATE "C") so the figures sort as on SQLite.
CREATE TABLE onboarding (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	addr_hash   BYTEA NOT NULL CHECK (length(addr_hash) = 32),
	format      TEXT COLLATE "C" NOT NULL CHECK (length(format) BETWEEN 1 AND 32),
	requested   BIGINT NOT NULL,
	first_login BIGINT,
	settled     BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX onboarding_addr ON onboarding(addr_hash, requested);
CREATE INDEX onboarding_requested ON onboarding(requested);
CREATE INDEX onboarding_unsettled ON onboarding(settled, requested);
-- 32 random bytes in hex without pgcrypto: gen_random_uuid() (built in
-- since PostgreSQL 13) draws from the strong random source; two version 4
-- UUIDs without their dashes are 64 hex digits, 244 of their bits random.
INSERT INTO meta (key, value) VALUES ('onboarding_key', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
