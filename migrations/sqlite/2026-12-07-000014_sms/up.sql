-- SMS through Kannel (issue 24, docs/SMS.md). No table here holds a message a citizen sent;
-- phone numbers are held only where a message must reach them (see each table).

-- Inbound messages already handled, by the gateway's message id (SMSC id + Kannel's id): a
-- message the gateway sends again is answered from here, never filed twice. No number, no text.
CREATE TABLE sms_inbound (
    message_key     TEXT PRIMARY KEY NOT NULL,
    received_at_ms  BIGINT NOT NULL,
    outcome         TEXT NOT NULL
);
CREATE INDEX sms_inbound_received ON sms_inbound (received_at_ms);

-- The durable SMS outbox: written in the transaction of the event (or the inbound message)
-- that causes it. A notice about a ticket has `ticket_id` and no number: the number is read
-- from the reporter's contact when it is sent, so an erased contact stops it. An answer to a
-- message has its number in `phone` until it is sent. `number_key` is a keyed hash of the
-- number (the per-number daily cap counts it).
CREATE TABLE sms_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket_id       TEXT,
    event_id        TEXT UNIQUE,
    phone           TEXT,
    number_key      TEXT,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    parts_sent      INTEGER NOT NULL DEFAULT 0,
    next_at_ms      BIGINT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    done_at_ms      BIGINT,
    last_error      TEXT
);
CREATE INDEX sms_outbox_due ON sms_outbox (state, next_at_ms);
CREATE INDEX sms_outbox_number ON sms_outbox (number_key, done_at_ms);
CREATE INDEX sms_outbox_ticket ON sms_outbox (ticket_id);

-- Numbers an administrator blocked: their messages are counted and dropped, never answered.
CREATE TABLE sms_blocked (
    phone           TEXT PRIMARY KEY NOT NULL,
    note            TEXT,
    blocked_by      TEXT NOT NULL,
    blocked_at_ms   BIGINT NOT NULL
);

-- The node's SMS secrets (the key of `number_key`), created on first use.
CREATE TABLE sms_secrets (
    name            TEXT PRIMARY KEY NOT NULL,
    value           TEXT NOT NULL
);
