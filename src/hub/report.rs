//! Answering a checked [`Request`]: the plan's reads, merged by the requested keys, into a
//! [`Table`] — the one read model of every statistics answer (JSON, CSV export, the web
//! console's charts). For the public and the open-data export, counts from 1 to k−1 become
//! `<k` and rates over fewer than k tickets are withheld ([`Audience`]); then enough other
//! counts are withheld that no hidden count can be worked out by subtraction from a total
//! (`complement`).

use std::collections::BTreeMap;

use time::{Date, Duration};

use super::cells::{
    COUNT_ROLLUPS, Dim, FLOW_ROLLUPS, Grain, LATENCY_HOURS, OPEN_ROLLUPS, SLA_ROLLUPS,
};
use super::plan::plan;
use super::query::{Dataset, EPOCH, Request};
use super::read::{Aggregate, PeriodGroup, Select, Table as Stored, aggregate};
use crate::db::DbConn;

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
    /// A count of k or more withheld so that a `<k` beside it cannot be worked out from a
    /// total (complementary suppression).
    Withheld,
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
                false,
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
                false,
            )?,
        ),
        Dataset::Flows => (
            FLOW_COLUMNS.to_vec(),
            sums(
                conn,
                req,
                Stored::Flows,
                FLOW_ROLLUPS,
                (&[], today),
                None,
                false,
            )?,
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
    let mut rows: Vec<Row> = merged
        .into_iter()
        .map(|(keys, s)| Row {
            keys,
            values: figures(req.dataset, &s, k),
        })
        .collect();
    if k.is_some() {
        // On every row that matched, not only those shown: the result must not depend on
        // `limit`.
        complement(req.dataset, &mut rows);
    }
    rows.truncate(req.limit);
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
    open_only: bool,
) -> diesel::QueryResult<BTreeMap<Vec<String>, Vec<i64>>> {
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
    let coarsest = match req.period_group() {
        Some("day") => Grain::Day,
        Some(_) => Grain::Month,
        None => Grain::Quarter,
    };
    for part in plan(rollups, dims, (req.from, req.to), today, coarsest) {
        let sel = Select {
            table,
            rollup: part.rollup,
            from: part.from,
            to: part.to,
            filters: &req.filters,
            group: &keyed,
            period: period.clone(),
            open_only,
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
    // By province alone (or nationally): the open-ticket rollups hold the answer. Otherwise
    // the count rollups with status, read for open statuses only (`open_only`): either way,
    // every cell read is of open tickets.
    let by_province = req.dims().iter().all(|d| *d == Dim::Province);
    let (rollups, dims) = if by_province {
        (OPEN_ROLLUPS, vec![Dim::Province])
    } else {
        let mut dims = req.dims();
        if !dims.contains(&Dim::Status) {
            dims.push(Dim::Status);
        }
        (COUNT_ROLLUPS, dims)
    };
    let group: Vec<&'static str> = req.group_by.clone();
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
            rollups,
            (&dims, today),
            ages,
            !by_province,
        )? {
            let n = s.first().copied().unwrap_or_default();
            if n == 0 {
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

/// The count columns of a dataset's figures (the rates and averages are decimals).
fn count_columns(dataset: Dataset) -> Vec<usize> {
    match dataset {
        Dataset::Stats => vec![0],
        Dataset::Backlog => (0..=AGES.len()).collect(),
        Dataset::Sla => (0..13).collect(),
        // dispatches, acted, returns; the median; the first-action histogram.
        Dataset::Flows => (0..3).chain(4..15).collect(),
    }
}

/// Rates computed from two counts of their row: (rate, part, other) — the rate gives one
/// count from the other, so it goes when either is hidden.
fn rates(dataset: Dataset) -> &'static [(usize, usize, usize)] {
    match dataset {
        Dataset::Sla => &[(14, 1, 2), (15, 3, 4), (16, 5, 6), (17, 7, 8)],
        Dataset::Flows => &[(15, 2, 0)],
        Dataset::Stats | Dataset::Backlog => &[],
    }
}

/// Within a row: a total and the parts that sum to it (indices into the figures).
fn row_sums(dataset: Dataset) -> Option<(usize, std::ops::Range<usize>)> {
    match dataset {
        Dataset::Backlog => Some((0, 1..1 + AGES.len())),
        Dataset::Flows => Some((1, 4..15)),
        Dataset::Stats | Dataset::Sla => None,
    }
}

const fn hidden(v: Value) -> bool {
    matches!(v, Value::Below(_) | Value::Withheld)
}

/// Withholds the smallest shown positive count among `cells` (indices into `rows` and a
/// figure) when exactly one of them is hidden: otherwise that one is the total minus the
/// others. Whether it changed anything.
fn complete_line(rows: &mut [Row], cells: &[(usize, usize)]) -> bool {
    let mut hidden_n = 0;
    let mut smallest: Option<(i64, usize, usize)> = None;
    for &(r, c) in cells {
        match rows[r].values.get(c) {
            Some(v) if hidden(*v) => hidden_n += 1,
            Some(Value::Count(n)) if *n > 0 && smallest.is_none_or(|(m, ..)| *n < m) => {
                smallest = Some((*n, r, c));
            }
            _ => {}
        }
    }
    match smallest {
        Some((_, r, c)) if hidden_n == 1 => {
            rows[r].values[c] = Value::Withheld;
            true
        }
        _ => false,
    }
}

/// Complementary suppression. Every total of a public table can be had from another public
/// request (the same one grouped by one key fewer) or from the row itself (a backlog's open
/// count is the sum of its age buckets): wherever exactly one count of such a line is hidden,
/// it could be worked out by subtraction, so the smallest other count of the line is withheld
/// too — along each group-by key, for each count column, and within rows, until no line has
/// a single hidden count. What it does not prevent: differences between two periods or two
/// filters asked separately (documented in the README).
fn complement(dataset: Dataset, rows: &mut [Row]) {
    let width = rows.first().map_or(0, |r| r.keys.len());
    // Lines along key i: the rows that agree on every other key.
    let mut lines: Vec<Vec<usize>> = Vec::new();
    for i in 0..width {
        let mut by_rest: BTreeMap<Vec<&str>, Vec<usize>> = BTreeMap::new();
        for (n, r) in rows.iter().enumerate() {
            let rest: Vec<&str> = r
                .keys
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, k)| k.as_str())
                .collect();
            by_rest.entry(rest).or_default().push(n);
        }
        lines.extend(by_rest.into_values().filter(|l| l.len() > 1));
    }
    // Without a group-by key the single row is its own total: nothing to complete.
    for _ in 0..32 {
        let mut changed = false;
        for line in &lines {
            for c in count_columns(dataset) {
                let cells: Vec<(usize, usize)> = line.iter().map(|r| (*r, c)).collect();
                changed |= complete_line(rows, &cells);
            }
        }
        if let Some((total, parts)) = row_sums(dataset) {
            for r in 0..rows.len() {
                let cells: Vec<(usize, usize)> = std::iter::once(total)
                    .chain(parts.clone())
                    .map(|c| (r, c))
                    .collect();
                // The total is one of the line's cells: a hidden part beside a shown total
                // and shown parts is the case to close.
                changed |= complete_line(rows, &cells);
            }
        }
        if !changed {
            break;
        }
    }
    for row in rows.iter_mut() {
        for &(rate, a, b) in rates(dataset) {
            let either = [a, b]
                .iter()
                .any(|i| row.values.get(*i).copied().is_some_and(hidden));
            if either && let Some(v) = row.values.get_mut(rate) {
                *v = Value::Decimal(None);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(cells: &[(&str, &str, i64)], k: i64) -> Vec<Row> {
        cells
            .iter()
            .map(|(a, b, n)| Row {
                keys: vec![(*a).to_owned(), (*b).to_owned()],
                values: vec![count(*n, Some(k))],
            })
            .collect()
    }

    fn shown(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| match r.values[0] {
                Value::Count(n) => n.to_string(),
                Value::Below(k) => format!("<{k}"),
                Value::Withheld => "x".into(),
                Value::Decimal(_) => "?".into(),
            })
            .collect()
    }

    /// Lines along each key with exactly one hidden count beside a shown positive one: the
    /// line's total minus the shown counts would reveal it. (Beside zeros only, the total is
    /// the hidden count itself, and is hidden in its own table.)
    fn lone_hidden(rows: &[Row]) -> usize {
        let mut lone = 0;
        for i in 0..2 {
            let mut by: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
            for r in rows {
                let e = by.entry(r.keys[1 - i].as_str()).or_default();
                e.0 += usize::from(hidden(r.values[0]));
                e.1 |= matches!(r.values[0], Value::Count(n) if n > 0);
            }
            lone += by.values().filter(|(h, shown)| *h == 1 && *shown).count();
        }
        lone
    }

    #[test]
    fn a_lone_small_count_takes_the_smallest_other_of_its_line_with_it() {
        // kind × channel: web has a 1 beside a 40 and a 12; sms has 30 and 20 only.
        let mut rows = table(
            &[
                ("aspirasi", "sms", 30),
                ("aspirasi", "web", 1),
                ("pengaduan", "sms", 20),
                ("pengaduan", "web", 12),
                ("permintaan", "web", 40),
            ],
            5,
        );
        complement(Dataset::Stats, &mut rows);
        // Along channel (fixed kind aspirasi): <5 beside 30 → 30 goes; then along kind
        // (fixed channel sms): 30 hidden beside 20 → 20 goes; then pengaduan: 20 hidden
        // beside 12 → 12 goes. No line is left with a single hidden count.
        assert_eq!(shown(&rows), ["x", "<5", "x", "x", "40"]);
        assert_eq!(lone_hidden(&rows), 0);
    }

    #[test]
    fn two_small_counts_in_a_line_need_nothing_more() {
        let mut rows = table(&[("a", "web", 2), ("b", "web", 3), ("c", "web", 50)], 5);
        complement(Dataset::Stats, &mut rows);
        assert_eq!(shown(&rows), ["<5", "<5", "50"]);
    }

    #[test]
    fn a_backlog_row_hides_a_second_age_bucket_or_its_total() {
        // open 12 = 10 in the first bucket + 2 in the third: the 2 would be 12 − 10.
        let s = [12, 10, 0, 2, 0, 0, 0, 0];
        let mut rows = vec![Row {
            keys: vec!["submitted".into()],
            values: figures(Dataset::Backlog, &s, Some(5)),
        }];
        complement(Dataset::Backlog, &mut rows);
        assert_eq!(rows[0].values[1], Value::Withheld);
        assert_eq!(rows[0].values[3], Value::Below(5));
        assert_eq!(rows[0].values[0], Value::Count(12));
        // open 3, all in the third bucket: both small, both hidden, nothing else to do.
        let s = [3, 0, 0, 3, 0, 0, 0, 0];
        let mut rows = vec![Row {
            keys: vec!["submitted".into()],
            values: figures(Dataset::Backlog, &s, Some(5)),
        }];
        complement(Dataset::Backlog, &mut rows);
        assert!(
            rows[0]
                .values
                .iter()
                .all(|v| hidden(*v) || *v == Value::Count(0))
        );
    }

    #[test]
    fn a_rate_goes_when_one_of_its_counts_is_hidden() {
        // verified on time 20, late 2: 90.9 % would give the 2 back from the 20.
        let mut s = vec![0; 19];
        s[0] = 22;
        s[1] = 20;
        s[2] = 2;
        let mut rows = vec![Row {
            keys: vec!["DKI-DISHUB".into()],
            values: figures(Dataset::Sla, &s, Some(5)),
        }];
        assert_eq!(rows[0].values[14], Value::Decimal(Some(90.9)));
        complement(Dataset::Sla, &mut rows);
        assert_eq!(rows[0].values[14], Value::Decimal(None));
    }

    proptest! {
        /// Whatever the table: afterwards no line has a single hidden count, nothing shown
        /// changed its value, and nothing hidden came back.
        #[test]
        fn no_line_is_left_with_a_single_hidden_count(
            cells in proptest::collection::btree_map((0u8..5, 0u8..5), 0i64..40, 1..25)
        ) {
            let cells: Vec<(String, String, i64)> = cells
                .into_iter()
                .map(|((a, b), n)| (format!("k{a}"), format!("c{b}"), n))
                .collect();
            let refs: Vec<(&str, &str, i64)> =
                cells.iter().map(|(a, b, n)| (a.as_str(), b.as_str(), *n)).collect();
            let before = table(&refs, 5);
            let mut rows = before.clone();
            complement(Dataset::Stats, &mut rows);
            prop_assert_eq!(lone_hidden(&rows), 0);
            for (b, a) in before.iter().zip(&rows) {
                match (b.values[0], a.values[0]) {
                    (x, y) if x == y => {}
                    (Value::Count(n), Value::Withheld) => prop_assert!(n >= 5),
                    (x, y) => prop_assert!(false, "{x:?} became {y:?}"),
                }
            }
        }
    }
}
