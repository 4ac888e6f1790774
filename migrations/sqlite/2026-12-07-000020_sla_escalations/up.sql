-- SLA escalations (docs/ARCHITECTURE.md, decision 103): one row per breach, recorded by the
-- node that handles the ticket, of a step the agency owns (its response; the completion cap
-- while the agency holds the ticket). Derived from the `sla_breached` event named by
-- `event_id` (`lapor-node rebuild` re-derives missing rows); the acknowledgement is local.
-- No personal data: ticket id, agency code, step and times only.
CREATE TABLE sla_escalations (
    event_id TEXT PRIMARY KEY NOT NULL,
    ticket TEXT NOT NULL,
    agency TEXT NOT NULL,
    step TEXT NOT NULL,
    due_ms BIGINT NOT NULL,
    breached_at_ms BIGINT NOT NULL,
    acked_by TEXT,
    acked_at_ms BIGINT
);
CREATE INDEX sla_escalations_open ON sla_escalations (acked_at_ms, breached_at_ms);
-- The hub counts each node's recent breaches (decision 105) through this index; partial, so
-- only breach events pay for it (not every report and action).
CREATE INDEX events_breaches_at ON events (at_ms) WHERE kind = 'sla_breached';
