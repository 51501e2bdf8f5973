-- Outbound queue: mail submitted for recipients outside our domains, relayed
-- through the configured smarthost (smtpd/relay.go). A message row holds the
-- envelope sender and the body once; each recipient has its own retry state.
-- Rows leave the queue when the recipient is delivered or bounced.
CREATE TABLE queue_messages (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	mail_from TEXT NOT NULL,           -- the authenticated sender
	body      BLOB NOT NULL,           -- CRLF line endings, headers fixed up
	created   INTEGER NOT NULL         -- unix nanoseconds: the retry period starts here
) STRICT;

CREATE TABLE queue_rcpts (
	message_id   INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
	rcpt         TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,     -- unix nanoseconds
	last_error   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (message_id, rcpt)
) STRICT;
CREATE INDEX queue_rcpts_due ON queue_rcpts(next_attempt);
