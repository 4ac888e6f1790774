CREATE TABLE events_by_id (
    id          TEXT PRIMARY KEY NOT NULL,
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
    UNIQUE (origin, seq)
);
INSERT INTO events_by_id (id, origin, seq, prev, ticket, kind, at_ms, raw, key_id, sig, stored_at_ms)
    SELECT id, origin, seq, prev, ticket, kind, at_ms, raw, key_id, sig, stored_at_ms
    FROM events ORDER BY rowid;

CREATE TABLE outbox_by_id (
    id              INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    destination     TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES events_by_id (id),
    with_pii        BOOLEAN NOT NULL,
    enqueued_at_ms  BIGINT NOT NULL,
    refused_reason  TEXT,
    UNIQUE (destination, event_id)
);
INSERT INTO outbox_by_id (id, destination, event_id, with_pii, enqueued_at_ms, refused_reason)
    SELECT id, destination, event_id, with_pii, enqueued_at_ms, refused_reason
    FROM outbox ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'outbox_by_id';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_by_id', seq FROM sqlite_sequence WHERE name = 'outbox';

DROP TABLE outbox;
DROP TABLE events;
ALTER TABLE events_by_id RENAME TO events;
ALTER TABLE outbox_by_id RENAME TO outbox;
CREATE INDEX events_ticket ON events (ticket);
CREATE INDEX outbox_destination ON outbox (destination, id);
