DROP INDEX events_kind_at;
DROP TABLE sla_escalations;
