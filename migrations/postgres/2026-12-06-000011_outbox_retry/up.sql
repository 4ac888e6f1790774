-- A row its destination deferred (its parents, its origin's keys or its agency are not there
-- yet) waits before it is sent again, longer after each deferral: no resend loop
-- (docs/PROTOCOL.md, Delivery).
ALTER TABLE outbox ADD COLUMN retry_at_ms BIGINT;
ALTER TABLE outbox ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
