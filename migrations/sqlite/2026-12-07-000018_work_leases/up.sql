-- Federation work (delivery to one peer, catch-up) done by one process at a time when several
-- processes of a node share a PostgreSQL database: a lease, renewed while held, taken over once
-- it has lapsed (docs/ARCHITECTURE.md, decision 99).
CREATE TABLE work_leases (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
