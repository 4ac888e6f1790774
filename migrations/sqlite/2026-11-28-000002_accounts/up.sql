-- Officer accounts, their sessions, and citizens' follow-up tokens (hashes only).
CREATE TABLE officers (
    username        TEXT PRIMARY KEY NOT NULL,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('verifier', 'liaison', 'admin', 'analyst')),
    agency          TEXT REFERENCES agencies (code),
    disabled        BOOLEAN NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    CHECK ((role = 'liaison') = (agency IS NOT NULL))
);

CREATE TABLE sessions (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL REFERENCES officers (username),
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    revoked         BOOLEAN NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);

-- A citizen's secret for following up a report: SHA-256 of the token, shown once at intake.
CREATE TABLE follow_up_tokens (
    ticket_id       TEXT PRIMARY KEY NOT NULL,
    token_hash      TEXT NOT NULL
);
