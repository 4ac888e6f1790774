-- The two small tables written with every report are keyed by the ticket and are only ever
-- read by it: stored WITHOUT ROWID, each is one B-tree instead of a table and its key index,
-- so intake writes (and commits) fewer pages.
CREATE TABLE reporter_contacts_clustered (
    ticket_id   TEXT PRIMARY KEY NOT NULL,
    name        TEXT,
    phone       TEXT,
    email       TEXT,
    salt        TEXT,
    stored_at_ms BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO reporter_contacts_clustered (ticket_id, name, phone, email, salt, stored_at_ms)
    SELECT ticket_id, name, phone, email, salt, stored_at_ms FROM reporter_contacts;
DROP TABLE reporter_contacts;
ALTER TABLE reporter_contacts_clustered RENAME TO reporter_contacts;

CREATE TABLE follow_up_tokens_clustered (
    ticket_id       TEXT PRIMARY KEY NOT NULL,
    token_hash      TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO follow_up_tokens_clustered (ticket_id, token_hash)
    SELECT ticket_id, token_hash FROM follow_up_tokens;
DROP TABLE follow_up_tokens;
ALTER TABLE follow_up_tokens_clustered RENAME TO follow_up_tokens;
