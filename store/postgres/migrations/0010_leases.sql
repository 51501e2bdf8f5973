-- The PostgreSQL twin of store/migrations/0010_leases.sql: POP3 maildrop
-- leases. expires is read against the database's clock
-- (clock_timestamp()), so nodes with skewed clocks agree on it.
CREATE TABLE pop_leases (
	account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	holder     TEXT NOT NULL,
	expires    TIMESTAMPTZ NOT NULL
);
