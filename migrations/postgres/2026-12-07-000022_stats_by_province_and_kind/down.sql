DELETE FROM stat_counts WHERE rollup = 7;
