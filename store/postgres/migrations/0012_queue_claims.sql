-- The PostgreSQL twin of store/migrations/0012_queue_claims.sql: relay
-- queue claims. claim_until is read against the database's clock
-- (clock_timestamp()), so nodes with skewed clocks agree on when a dead
-- node's claim ends.
ALTER TABLE queue_messages ADD COLUMN claimed_by TEXT, ADD COLUMN claim_until TIMESTAMPTZ;
