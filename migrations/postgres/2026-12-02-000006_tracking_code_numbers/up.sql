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
ALTER TABLE tickets ADD COLUMN code_number BIGINT;
ALTER TABLE tickets DROP CONSTRAINT tickets_tracking_code_key;
CREATE UNIQUE INDEX tickets_code_number ON tickets (code_number) WHERE code_number IS NOT NULL;
CREATE UNIQUE INDEX tickets_unnumbered_code ON tickets (tracking_code) WHERE code_number IS NULL;
