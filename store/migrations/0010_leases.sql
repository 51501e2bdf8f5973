-- POP3 maildrop leases: the RFC 1939 §4 exclusive lock as a row, so that
-- every process on the database (several nodes, or a node beside an admin
-- command) sees it. holder names one POP3 session (random, per process and
-- session); expires is unix milliseconds. A lease past its expiry is free
-- to take: its holder died without releasing it.
CREATE TABLE pop_leases (
	account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	holder     TEXT NOT NULL,
	expires    INTEGER NOT NULL
) STRICT;
