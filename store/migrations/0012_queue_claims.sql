-- Relay queue claims (store/queue_claim.go): a relay worker claims a due
-- message for a lease before sending it, so two workers never send it at
-- once; a worker that dies leaves a claim that ends with its lease, after
-- which another worker takes the message over. claim_until is unix
-- nanoseconds of this process's clock (the processes sharing one SQLite
-- file share one machine).
ALTER TABLE queue_messages ADD COLUMN claimed_by TEXT;
ALTER TABLE queue_messages ADD COLUMN claim_until INTEGER;
