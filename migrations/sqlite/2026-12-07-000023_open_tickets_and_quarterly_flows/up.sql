-- Rollups 8 and 9 of the ticket counts (hub::cells::OPEN_ROLLUPS): open tickets only, by day
-- and by month × province, status stored empty. The national backlog by age reads these.
-- Open is every status but resolved, closed and archived (hub::cells::is_open). Derived from
-- rollups 5 (day × province × status) and 6 (month × province × status): no rebuild is needed.
INSERT INTO stat_counts (rollup, period, province, regency, kind, category, channel, agency, status, n)
SELECT 8, period, province, '', '', '', '', '', '', SUM(n)
FROM stat_counts
WHERE rollup = 5 AND status NOT IN ('resolved', 'closed', 'archived')
GROUP BY period, province;
INSERT INTO stat_counts (rollup, period, province, regency, kind, category, channel, agency, status, n)
SELECT 9, period, province, '', '', '', '', '', '', SUM(n)
FROM stat_counts
WHERE rollup = 6 AND status NOT IN ('resolved', 'closed', 'archived')
GROUP BY period, province;
-- Rollup 2 of the flows (hub::cells::FLOW_ROLLUPS): by quarter, its period stored as the
-- quarter's first month (YYYY-01, -04, -07, -10), derived from rollup 1 (by month).
INSERT INTO stat_flows (rollup, period, origin, handler, dispatches, acted, returns,
    lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10)
SELECT 2, substr(period, 1, 5) || printf('%02d', ((CAST(substr(period, 6, 2) AS INTEGER) - 1) / 3) * 3 + 1), origin, handler,
    SUM(dispatches), SUM(acted), SUM(returns), SUM(lat_0), SUM(lat_1), SUM(lat_2), SUM(lat_3),
    SUM(lat_4), SUM(lat_5), SUM(lat_6), SUM(lat_7), SUM(lat_8), SUM(lat_9), SUM(lat_10)
FROM stat_flows
WHERE rollup = 1
GROUP BY substr(period, 1, 5) || printf('%02d', ((CAST(substr(period, 6, 2) AS INTEGER) - 1) / 3) * 3 + 1), origin, handler;
