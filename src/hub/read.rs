//! Reading the statistics cells: one aggregate statement per (rollup, period range), grouped
//! in the database by the requested keys. Column names come from fixed lists (never from the
//! caller); filter values are bound.

use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::cells::FLOW_FIGURES;
use crate::db::DbConn;
use crate::domain::ticket::Status;

/// What to read: a table, one rollup, a period range (inclusive, compared as text), equality
/// filters and the grouping.
#[derive(Debug, Clone)]
pub struct Select<'a> {
    /// `stat_counts`, `stat_sla` or `stat_flows`.
    pub table: Table,
    /// Rollup id.
    pub rollup: i32,
    /// First period (`YYYY-MM-DD` or `YYYY-MM`, matching the rollup's grain).
    pub from: String,
    /// Last period.
    pub to: String,
    /// `column = value` filters (columns from [`Table::keys`]).
    pub filters: &'a [(&'static str, String)],
    /// Key columns to group by (from [`Table::keys`]); the others read as empty.
    pub group: &'a [&'static str],
    /// Group the period by month (`substr(period, 1, 7)`) or by day (the period as stored).
    pub period: Option<PeriodGroup>,
    /// Only cells of open tickets with a count (`stat_counts`: the backlog reads no closed
    /// or empty cells).
    pub open_only: bool,
}

/// How the period is grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodGroup {
    /// Into age buckets: the label is the index of the first of these dates (`YYYY-MM-DD`,
    /// newest first) the period is on or after, or their count if none.
    Ages(Vec<time::Date>),
    /// As stored: by day in day rollups, by month in month rollups.
    Day,
    /// By month.
    Month,
}

/// A statistics table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Ticket counts.
    Counts,
    /// SLA figures.
    Sla,
    /// Flows.
    Flows,
}

const COUNT_KEYS: [&str; 7] = [
    "province", "regency", "kind", "category", "channel", "agency", "status",
];
const SLA_KEYS: [&str; 2] = ["province", "agency"];
const FLOW_KEYS: [&str; 2] = ["origin", "handler"];
const SLA_SUMS: [&str; 14] = super::cells::SLA_FIGURES;
const FLOW_SUMS: [&str; FLOW_FIGURES] = [
    "dispatches",
    "acted",
    "returns",
    "lat_0",
    "lat_1",
    "lat_2",
    "lat_3",
    "lat_4",
    "lat_5",
    "lat_6",
    "lat_7",
    "lat_8",
    "lat_9",
    "lat_10",
];

impl Table {
    /// The table's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Counts => "stat_counts",
            Self::Sla => "stat_sla",
            Self::Flows => "stat_flows",
        }
    }

    /// Its key columns besides the period (always 7 in the row read: padded with empties).
    #[must_use]
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Counts => &COUNT_KEYS,
            Self::Sla => &SLA_KEYS,
            Self::Flows => &FLOW_KEYS,
        }
    }

    /// How many sums a row of it carries.
    #[must_use]
    pub fn width(self) -> usize {
        self.sums().len()
    }

    /// Its figures' columns.
    #[must_use]
    pub fn sums(self) -> &'static [&'static str] {
        match self {
            Self::Counts => &["n"],
            Self::Sla => &SLA_SUMS,
            Self::Flows => &FLOW_SUMS,
        }
    }
}

/// One aggregated row: the period (empty unless grouped), seven key slots (in the table's key
/// order, then empty) and up to 14 sums (then zero).
#[derive(Debug, Clone, Default, PartialEq, Eq, QueryableByName)]
pub struct Aggregate {
    /// Period (`YYYY-MM-DD` or `YYYY-MM`), or empty.
    #[diesel(sql_type = Text)]
    pub period: String,
    /// Key values.
    #[diesel(sql_type = Text)]
    pub k0: String,
    #[diesel(sql_type = Text)]
    #[expect(missing_docs, reason = "key slots, documented on k0")]
    pub k1: String,
    #[diesel(sql_type = Text)]
    #[expect(missing_docs, reason = "key slots, documented on k0")]
    pub k2: String,
    #[diesel(sql_type = Text)]
    #[expect(missing_docs, reason = "key slots, documented on k0")]
    pub k3: String,
    #[diesel(sql_type = Text)]
    #[expect(missing_docs, reason = "key slots, documented on k0")]
    pub k4: String,
    #[diesel(sql_type = Text)]
    #[expect(missing_docs, reason = "key slots, documented on k0")]
    pub k5: String,
    #[diesel(sql_type = Text)]
    #[expect(missing_docs, reason = "key slots, documented on k0")]
    pub k6: String,
    /// The sums (14 slots: the table's sums in column order, then zeros).
    #[diesel(embed)]
    pub sums: Sums,
}

/// The sums of an aggregate row, read by position (`s0` … `s13`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums(pub Vec<i64>);

impl<DB: diesel::backend::Backend> QueryableByName<DB> for Sums
where
    i64: diesel::deserialize::FromSql<BigInt, DB>,
{
    fn build<'a>(row: &impl diesel::row::NamedRow<'a, DB>) -> diesel::deserialize::Result<Self> {
        let mut out = Vec::with_capacity(14);
        for name in SUM_NAMES {
            out.push(diesel::row::NamedRow::get::<BigInt, i64>(row, name)?);
        }
        Ok(Self(out))
    }
}

const SUM_NAMES: [&str; 14] = [
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
];

impl Aggregate {
    /// The key slots as a slice-like array.
    #[must_use]
    pub fn keys(&self) -> [&str; 7] {
        [
            &self.k0, &self.k1, &self.k2, &self.k3, &self.k4, &self.k5, &self.k6,
        ]
    }
}

/// Runs `sel`: the aggregate rows, one per group.
#[tracing::instrument(name = "hub.read", skip_all, fields(table = sel.table.name(), rollup = sel.rollup))]
pub fn aggregate(conn: &mut DbConn, sel: &Select<'_>) -> QueryResult<Vec<Aggregate>> {
    let pg = matches!(conn, DbConn::Pg(_));
    let mut binds: Vec<String> = vec![sel.from.clone(), sel.to.clone()];
    let mut n = 0;
    let mut ph = || {
        n += 1;
        if pg { format!("${n}") } else { "?".to_owned() }
    };
    let period = match &sel.period {
        None => "''".to_owned(),
        Some(PeriodGroup::Day) => "period".to_owned(),
        Some(PeriodGroup::Month) => "substr(period, 1, 7)".to_owned(),
        Some(PeriodGroup::Ages(since)) => {
            // Dates we computed (digits and dashes), not the caller's text.
            let mut case = String::from("CASE");
            for (i, d) in since.iter().enumerate() {
                case.push_str(&format!(
                    " WHEN period >= '{}' THEN '{i}'",
                    super::plan::day_text(*d)
                ));
            }
            case.push_str(&format!(" ELSE '{}' END", since.len()));
            case
        }
    };
    let mut select = vec![format!("{period} AS period")];
    let mut group: Vec<String> = Vec::new();
    if sel.period.is_some() {
        // By position: the period is the first column (its expression may be long).
        group.push("1".to_owned());
    }
    let keys = sel.table.keys();
    for slot in 0..7 {
        match keys.get(slot) {
            Some(k) if sel.group.contains(k) => {
                select.push(format!("{k} AS k{slot}"));
                group.push((*k).to_owned());
            }
            _ => select.push(format!("'' AS k{slot}")),
        }
    }
    for (i, name) in SUM_NAMES.iter().enumerate() {
        match sel.table.sums().get(i) {
            Some(col) => select.push(format!("CAST(COALESCE(SUM({col}), 0) AS BIGINT) AS {name}")),
            None => select.push(format!("CAST(0 AS BIGINT) AS {name}")),
        }
    }
    let mut sql = format!(
        "SELECT {} FROM {} WHERE rollup = {} AND period >= {} AND period <= {}",
        select.join(", "),
        sel.table.name(),
        sel.rollup,
        ph(),
        ph()
    );
    for (col, value) in sel.filters {
        if keys.contains(col) {
            sql.push_str(&format!(" AND {col} = {}", ph()));
            binds.push(value.clone());
        }
    }
    if sel.open_only && sel.table == Table::Counts {
        // Status names are ours (`Status::as_str`), not the caller's text.
        let open: Vec<String> = Status::ALL
            .into_iter()
            .filter(|s| super::cells::is_open(*s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        sql.push_str(&format!(" AND status IN ({}) AND n <> 0", open.join(", ")));
    }
    if !group.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", group.join(", ")));
    }
    crate::db::on_backend!(conn, c => {
        let mut q = diesel::sql_query(sql.clone()).into_boxed();
        for b in binds.clone() {
            q = q.bind::<Text, _>(b);
        }
        q.load::<Aggregate>(c)
    })
}

/// Every cell of `table` in `rollups`, unaggregated: `(rollup, row)`.
pub fn cells_of(
    conn: &mut DbConn,
    table: Table,
    rollups: &[super::cells::Rollup],
) -> QueryResult<Vec<(i32, Aggregate)>> {
    let mut out = Vec::new();
    for r in rollups {
        let sel = Select {
            table,
            rollup: r.id,
            from: String::new(),
            to: "~".to_owned(),
            filters: &[],
            group: table.keys(),
            period: Some(PeriodGroup::Day),
            open_only: false,
        };
        out.extend(aggregate(conn, &sel)?.into_iter().map(|a| (r.id, a)));
    }
    Ok(out)
}
