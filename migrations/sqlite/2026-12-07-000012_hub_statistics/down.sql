DROP TABLE stat_flows;
DROP TABLE stat_sla;
DROP TABLE stat_counts;
