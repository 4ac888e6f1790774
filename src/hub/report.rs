//! Answering a checked [`Request`]: the plan's reads, merged by the requested keys, into a
//! [`Table`] — the one read model of every statistics answer (JSON, CSV export, the web
//! console's charts). For the public and the open-data export, counts from 1 to k−1 become
//! `<k` and rates over fewer than k tickets are withheld ([`Audience`]).

use std::collections::BTreeMap;

use time::{Date, Duration};

use super::cells::{COUNT_ROLLUPS, Dim, FLOW_ROLLUPS, LATENCY_HOURS, SLA_ROLLUPS, is_open};
use super::plan::plan;
use super::query::{Dataset, EPOCH, Request};
use super::read::{Aggregate, PeriodGroup, Select, Table as Stored, aggregate};
use crate::db::DbConn;
use crate::domain::ticket::Status;

/// Who reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Analysts and admins: exact figures.
    Officials,
    /// The public and the open-data export: small cells suppressed below `k`.
    Public {
        /// The threshold.
        k: i64,
    },
}

/// One figure of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count.
    Count(i64),
    /// A count from 1 to k−1, withheld: shown as `<k`.
    Below(i64),
    /// A rate, an average or a median; `None` when there is nothing to compute it over or it
    /// is withheld.
    Decimal(Option<f64>),
}

/// One row: its key values (in the order of `group_by`) and its figures (in the order of
/// [`Table::columns`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Key values.
    pub keys: Vec<String>,
    /// Figures.
    pub values: Vec<Value>,
}

/// An answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The question.
    pub dataset: Dataset,
    /// The period (filing dates, WIB); for the backlog, the day its ages are counted from.
    pub from: Date,
    /// Its last day.
    pub to: Date,
    /// Group-by keys.
    pub group_by: Vec<&'static str>,
    /// Figure names.
    pub columns: Vec<&'static str>,
    /// Rows, sorted by their keys.
    pub rows: Vec<Row>,
    /// More rows matched than `limit`.
    pub truncated: bool,
    /// The suppression threshold applied, if any.
    pub suppressed_below: Option<i64>,
}

const SLA_COLUMNS: [&str; 18] = [
    "tickets",
    "verified_on_time",
    "verified_late",
    "dispatched_on_time",
    "dispatched_late",
    "responded_on_time",
    "responded_late",
    "resolved_on_time",
    "resolved_late",
    "breach_verify",
    "breach_response",
    "breach_overall",
    "rated",
    "average_rating",
    "verified_on_time_pct",
    "dispatched_on_time_pct",
    "responded_on_time_pct",
    "resolved_on_time_pct",
];
const FLOW_COLUMNS: [&str; 16] = [
    "dispatches",
    "acted",
    "returns",
    "median_hours_to_first_action",
    "first_action_under_1h",
    "first_action_under_4h",
    "first_action_under_12h",
    "first_action_under_24h",
    "first_action_under_48h",
    "first_action_under_72h",
    "first_action_under_120h",
    "first_action_under_168h",
    "first_action_under_336h",
    "first_action_under_720h",
    "first_action_720h_or_more",
    "returns_pct",
];
/// Backlog age buckets: (name, oldest age in days it holds).
const AGES: [(&str, i64); 7] = [
    ("age_0_3_days", 3),
    ("age_4_7_days", 7),
    ("age_8_14_days", 14),
    ("age_15_30_days", 30),
    ("age_31_60_days", 60),
    ("age_61_90_days", 90),
    ("age_over_90_days", i64::MAX),
];

/// Answers `req` as of `today` (WIB), for `who`.
///
/// # Errors
///
/// The database could not be read.
pub fn answer(
    conn: &mut DbConn,
    req: &Request,
    today: Date,
    who: Audience,
) -> diesel::QueryResult<Table> {
    let (columns, merged): (Vec<&'static str>, BTreeMap<Vec<String>, Vec<i64>>) = match req.dataset
    {
        Dataset::Stats => (
            vec!["count"],
            sums(
                conn,
                req,
                Stored::Counts,
                COUNT_ROLLUPS,
                (&req.dims(), today),
                None,
            )?,
        ),
        Dataset::Sla => (
            SLA_COLUMNS.to_vec(),
            sums(
                conn,
                req,
                Stored::Sla,
                SLA_ROLLUPS,
                (&req.dims(), today),
                None,
            )?,
        ),
        Dataset::Flows => (
            FLOW_COLUMNS.to_vec(),
            sums(conn, req, Stored::Flows, FLOW_ROLLUPS, (&[], today), None)?,
        ),
        Dataset::Backlog => (
            std::iter::once("open")
                .chain(AGES.iter().map(|(n, _)| *n))
                .collect(),
            backlog(conn, req, today)?,
        ),
    };
    let k = match who {
        Audience::Officials => None,
        Audience::Public { k } => Some(k),
    };
    // Cells a change left at zero are no group.
    let merged: Vec<(Vec<String>, Vec<i64>)> = merged
        .into_iter()
        .filter(|(_, s)| s.iter().any(|n| *n != 0))
        .collect();
    let truncated = merged.len() > req.limit;
    let rows = merged
        .into_iter()
        .take(req.limit)
        .map(|(keys, s)| Row {
            keys,
            values: figures(req.dataset, &s, k),
        })
        .collect();
    Ok(Table {
        dataset: req.dataset,
        from: if req.dataset == Dataset::Backlog {
            today
        } else {
            req.from
        },
        to: if req.dataset == Dataset::Backlog {
            today
        } else {
            req.to
        },
        group_by: req.group_by.clone(),
        columns,
        rows,
        truncated,
        suppressed_below: k,
    })
}

/// Reads the plan's parts of `table` and sums them by the requested keys.
fn sums(
    conn: &mut DbConn,
    req: &Request,
    table: Stored,
    rollups: &[super::cells::Rollup],
    (dims, today): (&[Dim], Date),
    ages: Option<PeriodGroup>,
) -> diesel::QueryResult<BTreeMap<Vec<String>, Vec<i64>>> {
    let by_day = req.period_group() == Some("day");
    let period = ages.or_else(|| {
        req.period_group().map(|p| {
            if p == "day" {
                PeriodGroup::Day
            } else {
                PeriodGroup::Month
            }
        })
    });
    let keyed: Vec<&'static str> = req
        .group_by
        .iter()
        .copied()
        .filter(|k| table.keys().contains(k))
        .collect();
    let mut out: BTreeMap<Vec<String>, Vec<i64>> = BTreeMap::new();
    for part in plan(rollups, dims, (req.from, req.to), today, by_day) {
        let sel = Select {
            table,
            rollup: part.rollup,
            from: part.from,
            to: part.to,
            filters: &req.filters,
            group: &keyed,
            period: period.clone(),
        };
        for a in aggregate(conn, &sel)? {
            let width = table.width().min(a.sums.0.len());
            add(
                &mut out,
                keys_of(&a, table, &req.group_by),
                a.sums.0.get(..width).unwrap_or_default(),
            );
        }
    }
    Ok(out)
}

fn keys_of(a: &Aggregate, table: Stored, group_by: &[&str]) -> Vec<String> {
    let slots = a.keys();
    group_by
        .iter()
        .map(|k| match *k {
            "day" | "month" => a.period.clone(),
            k => table
                .keys()
                .iter()
                .position(|x| *x == k)
                .and_then(|i| slots.get(i))
                .map_or_else(String::new, |v| (*v).to_owned()),
        })
        .collect()
}

fn add(out: &mut BTreeMap<Vec<String>, Vec<i64>>, key: Vec<String>, s: &[i64]) {
    let cell = out.entry(key).or_insert_with(|| vec![0; s.len()]);
    for (c, v) in cell.iter_mut().zip(s) {
        *c += v;
    }
}

/// Open tickets by age: the last 91 days by day, everything older from the coarsest rollup.
fn backlog(
    conn: &mut DbConn,
    req: &Request,
    today: Date,
) -> diesel::QueryResult<BTreeMap<Vec<String>, Vec<i64>>> {
    let mut dims = req.dims();
    if !dims.contains(&Dim::Status) {
        dims.push(Dim::Status);
    }
    let mut group: Vec<&'static str> = req.group_by.clone();
    if !group.contains(&"status") {
        group.push("status");
    }
    let status_at = group.iter().position(|k| *k == "status").unwrap_or(0);
    let recent_from = today - Duration::days(90);
    let mut out: BTreeMap<Vec<String>, Vec<i64>> = BTreeMap::new();
    let windows = [
        (recent_from, today, true),
        (EPOCH, recent_from - Duration::days(1), false),
    ];
    for (from, to, by_day) in windows {
        let mut g = group.clone();
        if by_day {
            g.push("day");
        }
        let sub = Request {
            group_by: g.clone(),
            from,
            to,
            ..req.clone()
        };
        // The recent window comes back by age bucket (the label is the bucket's index), grouped
        // in the database; the older one is all "over 90 days".
        let ages = by_day.then(|| {
            PeriodGroup::Ages(
                AGES.iter()
                    .take(AGES.len() - 1)
                    .map(|(_, max)| today - Duration::days(*max))
                    .collect(),
            )
        });
        for (keys, s) in sums(
            conn,
            &sub,
            Stored::Counts,
            COUNT_ROLLUPS,
            (&dims, today),
            ages,
        )? {
            let open = keys
                .get(status_at)
                .and_then(|s| Status::parse(s))
                .is_some_and(is_open);
            let n = s.first().copied().unwrap_or_default();
            if !open || n == 0 {
                continue;
            }
            let bucket = if by_day {
                keys.last()
                    .and_then(|b| b.parse::<usize>().ok())
                    .unwrap_or(AGES.len() - 1)
            } else {
                AGES.len() - 1
            };
            let mut row = vec![0; 1 + AGES.len()];
            row[0] = n;
            row[1 + bucket] = n;
            let key: Vec<String> = req
                .group_by
                .iter()
                .map(|k| keys[g.iter().position(|x| x == k).unwrap_or(0)].clone())
                .collect();
            add(&mut out, key, &row);
        }
    }
    Ok(out)
}

fn count(n: i64, k: Option<i64>) -> Value {
    match k {
        Some(k) if n > 0 && n < k => Value::Below(k),
        _ => Value::Count(n),
    }
}

fn pct(part: i64, whole: i64, k: Option<i64>) -> Value {
    let shown = whole > 0 && k.is_none_or(|k| whole >= k);
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    Value::Decimal(shown.then(|| (1000.0 * part as f64 / whole as f64).round() / 10.0))
}

/// The figures of a row from its sums.
fn figures(dataset: Dataset, s: &[i64], k: Option<i64>) -> Vec<Value> {
    let at = |i: usize| s.get(i).copied().unwrap_or_default();
    match dataset {
        Dataset::Stats | Dataset::Backlog => s.iter().map(|n| count(*n, k)).collect(),
        Dataset::Sla => {
            let mut v: Vec<Value> = (0..13).map(|i| count(at(i), k)).collect();
            let rated = at(12);
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let avg = (rated > 0 && k.is_none_or(|k| rated >= k))
                .then(|| (100.0 * at(13) as f64 / rated as f64).round() / 100.0);
            v.push(Value::Decimal(avg));
            for (on, late) in [(1, 2), (3, 4), (5, 6), (7, 8)] {
                v.push(pct(at(on), at(on) + at(late), k));
            }
            v
        }
        Dataset::Flows => {
            let mut v: Vec<Value> = (0..3).map(|i| count(at(i), k)).collect();
            let buckets: Vec<i64> = (3..14).map(at).collect();
            let shown = k.is_none_or(|k| at(1) >= k);
            v.push(Value::Decimal(median_hours(&buckets).filter(|_| shown)));
            v.extend(buckets.iter().map(|n| count(*n, k)));
            v.push(pct(at(2), at(0), k));
            v
        }
    }
}

/// The median of a latency histogram, interpolated inside its bucket (hours).
#[expect(
    clippy::cast_precision_loss,
    reason = "counts and hours far below 2^52"
)]
fn median_hours(buckets: &[i64]) -> Option<f64> {
    let total: i64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let half = total as f64 / 2.0;
    let mut below = 0.0;
    for (i, n) in buckets.iter().enumerate() {
        let n = *n as f64;
        if below + n >= half && n > 0.0 {
            let lo = if i == 0 { 0 } else { LATENCY_HOURS[i - 1] } as f64;
            let hi = LATENCY_HOURS.get(i).map_or(lo * 2.0, |h| *h as f64);
            return Some(((lo + (hi - lo) * (half - below) / n) * 10.0).round() / 10.0);
        }
        below += n;
    }
    None
}
