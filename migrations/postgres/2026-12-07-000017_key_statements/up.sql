-- Signed key rotation statements (issue 25, item 2): "key `retiring` of `node` hands over to
-- key `key_id` from `valid_from_ms`", signed by both keys. This node's own statements (written
-- by `keys rotate`) and the statements of peers it accepted; offered in node information so a
-- peer pins the new key from the statement alone, and passes it on.
CREATE TABLE key_statements (
    key_id          TEXT PRIMARY KEY NOT NULL,
    node            TEXT NOT NULL,
    retiring        TEXT NOT NULL,
    valid_from_ms   BIGINT NOT NULL,
    statement       TEXT NOT NULL,
    recorded_at_ms  BIGINT NOT NULL
);
CREATE INDEX key_statements_node ON key_statements (node, valid_from_ms);
