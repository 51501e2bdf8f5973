-- ACME certificates, keys, account data and challenge tokens, stored by key
-- as certmagic names them ("certificates/<issuer>/<name>/<name>.crt"), so
-- every node serving from this store serves the same certificates; and the
-- named locks that make one node order a certificate while the others wait
-- (certmagic.Locker). A lock whose expiry has passed is stale: its holder
-- died, and the next Lock takes it over.
CREATE TABLE cert_blobs (
	key      TEXT PRIMARY KEY,
	value    BLOB NOT NULL,
	modified INTEGER NOT NULL -- Unix milliseconds
) STRICT;

CREATE TABLE cert_locks (
	name    TEXT PRIMARY KEY,
	owner   TEXT NOT NULL,
	expires INTEGER NOT NULL -- Unix milliseconds
) STRICT;
