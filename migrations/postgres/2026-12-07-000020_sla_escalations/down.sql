DROP INDEX events_breaches_at;
DROP TABLE sla_escalations;
