-- When the SLA sweep next has something to do for a ticket (`TicketState::next_due`), with an
-- index, so each sweep reads only the due tickets instead of the whole table. Rows written
-- before get the earliest of their deadlines (what the sweep filtered on until now); the
-- sweep corrects a row it finds nothing due in.
ALTER TABLE tickets ADD COLUMN next_due_ms BIGINT;
UPDATE tickets
    SET next_due_ms = min(
        verify_due_ms,
        COALESCE(response_due_ms, overall_due_ms),
        COALESCE(auto_close_due_ms, overall_due_ms),
        overall_due_ms)
    WHERE status NOT IN ('closed', 'archived');
CREATE INDEX tickets_next_due ON tickets (next_due_ms, id);
