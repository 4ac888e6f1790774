-- The hub-signed rosters this node has accepted (only ever newer versions; the highest is the
-- membership). `body` is the signed roster exactly as received: it is served to peers as is.
CREATE TABLE rosters (
    version         BIGINT PRIMARY KEY NOT NULL,
    body            TEXT NOT NULL,
    received_from   TEXT NOT NULL,
    received_at_ms  BIGINT NOT NULL
);
