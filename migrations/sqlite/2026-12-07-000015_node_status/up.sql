-- The federation's health at the hub (federation::status, hub::alerts): the latest signed
-- status each member node sent (its own chain head, outbox per peer, quarantine, pull
-- cursors, version, clock) — only a status newer than the stored one replaces it — and the
-- alerts raised on the federation's health, one row per (kind, node) while it holds.
CREATE TABLE node_status (
    node_id      TEXT PRIMARY KEY NOT NULL,
    sent_at_ms   BIGINT NOT NULL,
    received_ms  BIGINT NOT NULL,
    version      TEXT NOT NULL,
    head_seq     BIGINT NOT NULL,
    head_event   TEXT,
    quarantined  BIGINT NOT NULL,
    status       TEXT NOT NULL
);
CREATE TABLE federation_alerts (
    kind      TEXT NOT NULL,
    node_id   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    since_ms  BIGINT NOT NULL,
    PRIMARY KEY (kind, node_id)
);
