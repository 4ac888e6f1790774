-- Federation: outbox per destination, peer delivery state, ticket participants, quarantine of
-- refused events, and catch-up cursors.

-- One row per (destination, event) still to be acknowledged. A row leaves only when the
-- destination acknowledged the event (accepted or duplicate); a refused event stays with the
-- destination's reason and is shown to operators. Never deleted on a timer.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    destination     TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES events (id),
    with_pii        BOOLEAN NOT NULL,
    enqueued_at_ms  BIGINT NOT NULL,
    refused_reason  TEXT,
    UNIQUE (destination, event_id)
);
CREATE INDEX outbox_destination ON outbox (destination, id);

-- Delivery state of each peer (persisted backoff) and what we last heard from it.
CREATE TABLE peers (
    node_id          TEXT PRIMARY KEY NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL DEFAULT 0,
    last_contact_ms  BIGINT,
    last_success_ms  BIGINT,
    last_error       TEXT,
    delivered        BIGINT NOT NULL DEFAULT 0
);

-- Nodes taking part in a ticket: its origin and every node that has handled it.
CREATE TABLE ticket_participants (
    ticket  TEXT NOT NULL,
    node    TEXT NOT NULL,
    PRIMARY KEY (ticket, node)
);
CREATE INDEX ticket_participants_node ON ticket_participants (node, ticket);

-- Received events that were refused, with the reason: never applied, never acknowledged as
-- applied, never dropped silently.
CREATE TABLE quarantine (
    id              BIGSERIAL PRIMARY KEY,
    received_from   TEXT NOT NULL,
    event_id        TEXT,
    origin          TEXT,
    seq             BIGINT,
    reason          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    raw             TEXT NOT NULL,
    received_at_ms  BIGINT NOT NULL
);
CREATE INDEX quarantine_event ON quarantine (event_id);

-- Catch-up: the highest seq of each origin this node has pulled up to.
CREATE TABLE pull_cursors (
    origin     TEXT PRIMARY KEY NOT NULL,
    after_seq  BIGINT NOT NULL
);
