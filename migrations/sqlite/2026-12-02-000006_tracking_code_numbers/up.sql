-- Tracking codes issued here are a keyed permutation of a per-node counter (see
-- `tickets::codes`): the counter's number is stored with the ticket and indexed, so filing a
-- report appends to that index instead of inserting into a unique index of random codes.
-- Codes this node did not draw from its counter (other nodes' tickets, and codes drawn at
-- random before this migration) keep a unique index of their own, holding only them.
CREATE TABLE tracking_code_books (
    province     TEXT PRIMARY KEY NOT NULL,
    secret       TEXT NOT NULL,
    reserved_end BIGINT NOT NULL
);

-- SQLite cannot drop a column's UNIQUE constraint in place: the table is copied.
CREATE TABLE tickets_numbered (
    id              TEXT PRIMARY KEY NOT NULL,
    tracking_code   TEXT NOT NULL,
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
    state           TEXT NOT NULL,
    code_number     BIGINT
);
INSERT INTO tickets_numbered (id, tracking_code, origin_node, handling_node, report_kind, category, title, body, region, agency, channel, anonymous, confidential, status, archive_reason, rating, created_at_ms, updated_at_ms, verify_due_ms, response_due_ms, auto_close_due_ms, reopen_until_ms, overall_due_ms, breaches, head, event_count, state, code_number)
    SELECT id, tracking_code, origin_node, handling_node, report_kind, category, title, body, region, agency, channel, anonymous, confidential, status, archive_reason, rating, created_at_ms, updated_at_ms, verify_due_ms, response_due_ms, auto_close_due_ms, reopen_until_ms, overall_due_ms, breaches, head, event_count, state, NULL FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_numbered RENAME TO tickets;
CREATE INDEX tickets_status ON tickets (status);
CREATE INDEX tickets_agency ON tickets (agency, status);
CREATE UNIQUE INDEX tickets_code_number ON tickets (code_number) WHERE code_number IS NOT NULL;
CREATE UNIQUE INDEX tickets_unnumbered_code ON tickets (tracking_code) WHERE code_number IS NULL;
