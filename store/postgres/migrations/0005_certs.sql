-- ACME material and the named locks of certificate orders
-- (store/migrations/0005_certs.sql). Keys compare bytewise (COLLATE "C"),
-- so the prefix range "p/" <= key < "p0" is what it is in SQLite.
CREATE TABLE cert_blobs (
	key      TEXT COLLATE "C" PRIMARY KEY,
	value    BYTEA NOT NULL,
	modified BIGINT NOT NULL -- unix milliseconds
);

CREATE TABLE cert_locks (
	name    TEXT PRIMARY KEY,
	owner   TEXT NOT NULL,
	expires BIGINT NOT NULL -- unix milliseconds
);
