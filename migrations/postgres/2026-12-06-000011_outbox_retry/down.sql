ALTER TABLE outbox DROP COLUMN deferrals;
ALTER TABLE outbox DROP COLUMN retry_at_ms;
