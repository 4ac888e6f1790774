DELETE FROM stat_counts WHERE rollup IN (8, 9);
DELETE FROM stat_flows WHERE rollup = 2;
