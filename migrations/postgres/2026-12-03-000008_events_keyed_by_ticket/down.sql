ALTER TABLE outbox DROP CONSTRAINT outbox_event_fkey;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (id);
CREATE INDEX events_ticket ON events (ticket);
ALTER TABLE outbox ADD CONSTRAINT outbox_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id);
ALTER TABLE outbox DROP COLUMN ticket;
