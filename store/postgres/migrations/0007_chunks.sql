-- The PostgreSQL twin of store/migrations/0007_chunks.sql. Large message
-- bodies are stored in bounded chunks, so neither a write nor a read ever
-- holds a whole message in memory. A row with chunked = true keeps an
-- empty body; its octets are message_chunks in seq order, each ChunkSize
-- (256 KiB) long except the last. Rows written before this migration
-- (chunked = false) keep their single bytea and stay readable.
ALTER TABLE messages ADD COLUMN chunked BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE message_chunks (
	message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,        -- 0, 1, …: octets [seq*ChunkSize, …)
	data       BYTEA NOT NULL,
	PRIMARY KEY (message_id, seq)
);
-- Out of line and uncompressed, as messages.body (migration 0001).
ALTER TABLE message_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- Per-account quota: quota NULL follows the configured default, 0 means
-- unlimited, otherwise octets. usage is the octets of the account's stored
-- messages, kept in the same transaction as every delivery and deletion
-- (under the account row's lock, store/postgres/quota.go).
ALTER TABLE accounts ADD COLUMN quota BIGINT CHECK (quota IS NULL OR quota >= 0);
ALTER TABLE accounts ADD COLUMN usage BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET usage = (SELECT coalesce(sum(size), 0) FROM messages WHERE account_id = accounts.id);
