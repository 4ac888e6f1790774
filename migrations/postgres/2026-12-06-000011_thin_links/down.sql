ALTER TABLE peers DROP COLUMN recent_since_ms;
ALTER TABLE peers DROP COLUMN recent_delivered;
ALTER TABLE peers DROP COLUMN bytes_per_event;
ALTER TABLE peers DROP COLUMN rate_bytes_per_sec;
ALTER TABLE outbox DROP COLUMN deferrals;
ALTER TABLE outbox DROP COLUMN retry_at_ms;
