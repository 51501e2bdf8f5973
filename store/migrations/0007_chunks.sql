-- Large message bodies are stored in bounded chunks, so neither a write nor
-- a read ever holds a whole message in memory. A row with chunked = 1 keeps
-- an empty body; its octets are message_chunks in seq order, each
-- ChunkSize (256 KiB) long except the last. Rows written before this
-- migration (chunked = 0) keep their single blob and stay readable.
ALTER TABLE messages ADD COLUMN chunked INTEGER NOT NULL DEFAULT 0 CHECK (chunked IN (0, 1));

CREATE TABLE message_chunks (
	message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,        -- 0, 1, …: octets [seq*ChunkSize, …)
	data       BLOB NOT NULL,
	PRIMARY KEY (message_id, seq)
) STRICT, WITHOUT ROWID;

-- Per-account quota: quota NULL follows the configured default, 0 means
-- unlimited, otherwise octets. usage is the octets of the account's stored
-- messages, kept in the same transaction as every delivery and deletion.
ALTER TABLE accounts ADD COLUMN quota INTEGER CHECK (quota IS NULL OR quota >= 0);
ALTER TABLE accounts ADD COLUMN usage INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET usage = (SELECT coalesce(sum(size), 0) FROM messages WHERE account_id = accounts.id);
