-- Public signing keys of this node and of its peers, with validity windows (ms since the
-- epoch; valid_until NULL = still current). An event verifies with the key of its origin that
-- was valid at the event's time.
CREATE TABLE node_keys (
    key_id          TEXT PRIMARY KEY NOT NULL,
    origin          TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    valid_from_ms   BIGINT NOT NULL,
    valid_until_ms  BIGINT
);
CREATE INDEX node_keys_origin ON node_keys (origin);
