-- National statistics (hub::cells): cells of ticket counts, SLA outcomes and flows between
-- provinces, each a sum of the tickets' contributions, kept in the transaction that changes
-- a ticket's projection (subtract its old cells, add its new ones). A rollup id names the
-- cell's grain: a period of a day (YYYY-MM-DD, WIB) or a month (YYYY-MM), and which
-- dimensions it keeps (the others are stored empty). `lapor-node rebuild` recomputes them.
CREATE TABLE stat_counts (
    rollup      INTEGER NOT NULL,
    period      TEXT NOT NULL,
    province    TEXT NOT NULL,
    regency     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    category    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    agency      TEXT NOT NULL,
    status      TEXT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (rollup, period, province, regency, kind, category, channel, agency, status)
) WITHOUT ROWID;
CREATE TABLE stat_sla (
    rollup              INTEGER NOT NULL,
    period              TEXT NOT NULL,
    province            TEXT NOT NULL,
    agency              TEXT NOT NULL,
    tickets             BIGINT NOT NULL,
    verified_on_time    BIGINT NOT NULL,
    verified_late       BIGINT NOT NULL,
    dispatched_on_time  BIGINT NOT NULL,
    dispatched_late     BIGINT NOT NULL,
    responded_on_time   BIGINT NOT NULL,
    responded_late      BIGINT NOT NULL,
    resolved_on_time    BIGINT NOT NULL,
    resolved_late       BIGINT NOT NULL,
    breach_verify       BIGINT NOT NULL,
    breach_response     BIGINT NOT NULL,
    breach_overall      BIGINT NOT NULL,
    rated               BIGINT NOT NULL,
    rating_sum          BIGINT NOT NULL,
    PRIMARY KEY (rollup, period, province, agency)
) WITHOUT ROWID;
-- Dispatches from a report's province to a handling node; lat_0..lat_10 count the first
-- actions by how long after the dispatch they came (hub::cells::LATENCY_HOURS).
CREATE TABLE stat_flows (
    rollup      INTEGER NOT NULL,
    period      TEXT NOT NULL,
    origin      TEXT NOT NULL,
    handler     TEXT NOT NULL,
    dispatches  BIGINT NOT NULL,
    acted       BIGINT NOT NULL,
    returns     BIGINT NOT NULL,
    lat_0             BIGINT NOT NULL,
    lat_1             BIGINT NOT NULL,
    lat_2             BIGINT NOT NULL,
    lat_3             BIGINT NOT NULL,
    lat_4             BIGINT NOT NULL,
    lat_5             BIGINT NOT NULL,
    lat_6             BIGINT NOT NULL,
    lat_7             BIGINT NOT NULL,
    lat_8             BIGINT NOT NULL,
    lat_9             BIGINT NOT NULL,
    lat_10             BIGINT NOT NULL,
    PRIMARY KEY (rollup, period, origin, handler)
) WITHOUT ROWID;
