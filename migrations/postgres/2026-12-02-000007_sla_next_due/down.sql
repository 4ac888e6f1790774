DROP INDEX tickets_next_due;
ALTER TABLE tickets DROP COLUMN next_due_ms;
