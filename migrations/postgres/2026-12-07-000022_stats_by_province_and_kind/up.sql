-- Rollup 7 of the ticket counts (hub::cells::COUNT_ROLLUPS): month × province × kind, the
-- national figures' usual question, in 114 cells a month instead of rollup 2's thousands.
-- Cells are sums, so the new rollup is rollup 2 (month × province × kind × channel × status)
-- summed over channel and status: no rebuild is needed.
INSERT INTO stat_counts (rollup, period, province, regency, kind, category, channel, agency, status, n)
SELECT 7, period, province, '', kind, '', '', '', '', SUM(n)
FROM stat_counts
WHERE rollup = 2
GROUP BY period, province, kind;
