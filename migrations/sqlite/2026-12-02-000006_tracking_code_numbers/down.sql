-- Back to one unique index over every tracking code (fails if two tickets share a code).
CREATE TABLE tickets_unique (
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
INSERT INTO tickets_unique (id, tracking_code, origin_node, handling_node, report_kind, category, title, body, region, agency, channel, anonymous, confidential, status, archive_reason, rating, created_at_ms, updated_at_ms, verify_due_ms, response_due_ms, auto_close_due_ms, reopen_until_ms, overall_due_ms, breaches, head, event_count, state)
    SELECT id, tracking_code, origin_node, handling_node, report_kind, category, title, body, region, agency, channel, anonymous, confidential, status, archive_reason, rating, created_at_ms, updated_at_ms, verify_due_ms, response_due_ms, auto_close_due_ms, reopen_until_ms, overall_due_ms, breaches, head, event_count, state FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_unique RENAME TO tickets;
CREATE INDEX tickets_status ON tickets (status);
CREATE INDEX tickets_agency ON tickets (agency, status);
DROP TABLE tracking_code_books;
