-- Events are keyed by (ticket, id) instead of id: ticket ids are UUIDv7, so a new ticket's
-- events go to the end of the key's index, where an index on the id alone (a SHA-256) put
-- every event on a random page. The key also serves the lookups by ticket (the former
-- `events_ticket` index). The outbox names its event by the same key. SQLite cannot change a
-- table's key or a foreign key in place: both tables are copied.
CREATE TABLE events_keyed (
    id          TEXT NOT NULL,
    origin      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    prev        TEXT,
    ticket      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    raw         TEXT NOT NULL,
    key_id      TEXT,
    sig         TEXT,
    stored_at_ms BIGINT NOT NULL,
    PRIMARY KEY (ticket, id),
    UNIQUE (origin, seq)
);
INSERT INTO events_keyed (id, origin, seq, prev, ticket, kind, at_ms, raw, key_id, sig, stored_at_ms)
    SELECT id, origin, seq, prev, ticket, kind, at_ms, raw, key_id, sig, stored_at_ms
    FROM events ORDER BY rowid;

CREATE TABLE outbox_keyed (
    id              INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    destination     TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    with_pii        BOOLEAN NOT NULL,
    enqueued_at_ms  BIGINT NOT NULL,
    refused_reason  TEXT,
    ticket          TEXT NOT NULL,
    UNIQUE (destination, event_id),
    FOREIGN KEY (ticket, event_id) REFERENCES events_keyed (ticket, id)
);
INSERT INTO outbox_keyed (id, destination, event_id, with_pii, enqueued_at_ms, refused_reason, ticket)
    SELECT o.id, o.destination, o.event_id, o.with_pii, o.enqueued_at_ms, o.refused_reason, e.ticket
    FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.id;
-- Row ids keep counting from where the old table stopped.
DELETE FROM sqlite_sequence WHERE name = 'outbox_keyed';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_keyed', seq FROM sqlite_sequence WHERE name = 'outbox';

DROP TABLE outbox;
DROP TABLE events;
ALTER TABLE events_keyed RENAME TO events;
ALTER TABLE outbox_keyed RENAME TO outbox;
CREATE INDEX outbox_destination ON outbox (destination, id);
