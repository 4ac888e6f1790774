-- Agencies become managed data: an operator may disable one (no new dispatches to it; its
-- tickets stay). Agencies added by an operator live in the database beside the reference list.
ALTER TABLE agencies ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
