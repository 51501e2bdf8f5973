-- The failed-login throttle's counts, shared by every node (store/
-- throttle.go has the leaky-bucket arithmetic, store/driver.go
-- ThrottleCounters the contract). key_hash is the HMAC-SHA256 of the
-- key (a client network, a network and account pair, an account) under
-- onboarding_key, never an address in clear. Times are unix nanoseconds
-- from the nodes' clocks; locked_until 0 is not locked. A row past
-- expires is empty: each write deletes a few of those, so the rows are
-- bounded by the failures of the last hour or so. The SQLite driver has
-- no twin of this table: it counts in process memory (one node per file).
CREATE TABLE throttle (
	key_hash     BYTEA PRIMARY KEY CHECK (length(key_hash) = 32),
	level        DOUBLE PRECISION NOT NULL CHECK (level >= 0),
	updated_at   BIGINT NOT NULL,
	locked_until BIGINT NOT NULL,
	expires      BIGINT NOT NULL
);
CREATE INDEX throttle_expires ON throttle (expires);
