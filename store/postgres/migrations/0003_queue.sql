-- Outbound queue (store/migrations/0003_queue.sql): one row per message,
-- one per recipient with its own retry state.
CREATE TABLE queue_messages (
	id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	mail_from TEXT NOT NULL,
	body      BYTEA NOT NULL,
	created   BIGINT NOT NULL           -- unix nanoseconds
);

CREATE TABLE queue_rcpts (
	message_id   BIGINT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
	rcpt         TEXT COLLATE "C" NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt BIGINT NOT NULL,       -- unix nanoseconds
	last_error   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (message_id, rcpt)
);
CREATE INDEX queue_rcpts_due ON queue_rcpts(next_attempt);
