-- A row its destination deferred (its parents, its origin's keys or its agency are not there
-- yet) waits before it is sent again, longer after each deferral: no resend loop
-- (docs/PROTOCOL.md, Delivery).
ALTER TABLE outbox ADD COLUMN retry_at_ms BIGINT;
ALTER TABLE outbox ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
-- What operators see of a link: its measured rate, the compressed size of an event on it,
-- and the events delivered in the current minute (`lapor-node peers`).
ALTER TABLE peers ADD COLUMN rate_bytes_per_sec BIGINT;
ALTER TABLE peers ADD COLUMN bytes_per_event BIGINT;
ALTER TABLE peers ADD COLUMN recent_delivered BIGINT NOT NULL DEFAULT 0;
ALTER TABLE peers ADD COLUMN recent_since_ms BIGINT;
