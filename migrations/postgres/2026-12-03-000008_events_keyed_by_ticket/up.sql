-- Events are keyed by (ticket, id) instead of id (see the SQLite migration of the same name);
-- the outbox names its event by the same key.
ALTER TABLE outbox ADD COLUMN ticket TEXT;
UPDATE outbox SET ticket = events.ticket FROM events WHERE events.id = outbox.event_id;
ALTER TABLE outbox ALTER COLUMN ticket SET NOT NULL;
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (ticket, id);
DROP INDEX events_ticket;
ALTER TABLE outbox ADD CONSTRAINT outbox_event_fkey
    FOREIGN KEY (ticket, event_id) REFERENCES events (ticket, id);
