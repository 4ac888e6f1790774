-- Node core: agencies, the event log, chain heads, the ticket projection, reporter contacts.
CREATE TABLE agencies (
    code        TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('national', 'province', 'regency')),
    region      TEXT NOT NULL,
    owner_node  TEXT NOT NULL
);

-- The event log. `raw` is the event's JSON as written or received (the signed-log layer adds
-- `sig` there and in `key_id`/`sig`); the other columns are indexes over it.
CREATE TABLE events (
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
CREATE INDEX events_ticket ON events (ticket);

-- Head of each origin's chain as known here (the node's own head allocates its next seq).
CREATE TABLE chain_heads (
    origin      TEXT PRIMARY KEY NOT NULL,
    seq         BIGINT NOT NULL,
    last_id     TEXT NOT NULL
);

-- Projection of the event log: rebuilt by folding `events` (lapor-node rebuild).
CREATE TABLE tickets (
    id              TEXT PRIMARY KEY NOT NULL,
    tracking_code   TEXT NOT NULL UNIQUE,
    origin_node     TEXT NOT NULL,
    handling_node   TEXT NOT NULL,
    report_kind     TEXT NOT NULL,
    category        TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    region          TEXT NOT NULL,
    agency          TEXT REFERENCES agencies (code),
    channel         TEXT NOT NULL,
    anonymous       BOOLEAN NOT NULL,
    confidential    BOOLEAN NOT NULL,
    status          TEXT NOT NULL,
    archive_reason  TEXT,
    rating          INTEGER,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    verify_due_ms   BIGINT NOT NULL,
    response_due_ms BIGINT,
    auto_close_due_ms BIGINT,
    reopen_until_ms BIGINT,
    overall_due_ms  BIGINT NOT NULL,
    breaches        INTEGER NOT NULL,
    head            TEXT NOT NULL,
    event_count     INTEGER NOT NULL,
    state           TEXT NOT NULL
);
CREATE INDEX tickets_status ON tickets (status);
CREATE INDEX tickets_agency ON tickets (agency, status);

-- Reporter contact (personal data): never in an event; erasable.
CREATE TABLE reporter_contacts (
    ticket_id   TEXT PRIMARY KEY NOT NULL,
    name        TEXT,
    phone       TEXT,
    email       TEXT,
    salt        TEXT,
    stored_at_ms BIGINT NOT NULL
);
