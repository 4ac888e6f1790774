CREATE TABLE reporter_contacts_rowid (
    ticket_id   TEXT PRIMARY KEY NOT NULL,
    name        TEXT,
    phone       TEXT,
    email       TEXT,
    salt        TEXT,
    stored_at_ms BIGINT NOT NULL
);
INSERT INTO reporter_contacts_rowid (ticket_id, name, phone, email, salt, stored_at_ms)
    SELECT ticket_id, name, phone, email, salt, stored_at_ms FROM reporter_contacts;
DROP TABLE reporter_contacts;
ALTER TABLE reporter_contacts_rowid RENAME TO reporter_contacts;

CREATE TABLE follow_up_tokens_rowid (
    ticket_id       TEXT PRIMARY KEY NOT NULL,
    token_hash      TEXT NOT NULL
);
INSERT INTO follow_up_tokens_rowid (ticket_id, token_hash)
    SELECT ticket_id, token_hash FROM follow_up_tokens;
DROP TABLE follow_up_tokens;
ALTER TABLE follow_up_tokens_rowid RENAME TO follow_up_tokens;
