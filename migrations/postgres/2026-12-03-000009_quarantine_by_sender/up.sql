-- The quarantine's usage per sending peer is read before each batch's first refusal
-- (bounds per peer: docs/PROTOCOL.md, Quarantine).
CREATE INDEX quarantine_sender ON quarantine (received_from);
