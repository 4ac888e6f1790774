//! Which cells answer a question: a period split into whole months (read from a month rollup)
//! and the days at its edges (read from a day rollup), each from the smallest rollup that keeps
//! the dimensions asked for. So a year's national figures read a few thousand month cells,
//! whatever the number of tickets.

use time::{Date, Month};

use super::cells::{Dim, Grain, Rollup};

/// One read: a rollup and a range of its periods (inclusive, as stored text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Rollup id.
    pub rollup: i32,
    /// First period.
    pub from: String,
    /// Last period.
    pub to: String,
}

/// `YYYY-MM-DD`.
#[must_use]
pub fn day_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn month_text(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

fn first_of_month(d: Date) -> Date {
    d.replace_day(1).unwrap_or(d)
}

fn last_of_month(d: Date) -> Date {
    let next = if d.month() == Month::December {
        Date::from_calendar_date(d.year() + 1, Month::January, 1)
    } else {
        Date::from_calendar_date(d.year(), d.month().next(), 1)
    };
    next.ok().and_then(Date::previous_day).unwrap_or(d)
}

/// The first (smallest: the lists are ordered so) rollup of `rollups` with `grain` that keeps
/// `dims`.
fn smallest(rollups: &[Rollup], grain: Grain, dims: &[Dim]) -> Option<i32> {
    rollups
        .iter()
        .find(|r| r.grain == grain && r.has(dims))
        .map(|r| r.id)
}

/// The first of the month `k` months after the first of the month `d`.
fn months_after(d: Date, k: i32) -> Date {
    let index = d.year() * 12 + i32::from(u8::from(d.month())) - 1 + k;
    let month = u8::try_from(index.rem_euclid(12) + 1).unwrap_or(1);
    Month::try_from(month)
        .ok()
        .and_then(|m| Date::from_calendar_date(index.div_euclid(12), m, 1).ok())
        .unwrap_or(d)
}

/// The first day of the quarter of `d`.
fn quarter_of(d: Date) -> Date {
    let first = first_of_month(d);
    months_after(first, -i32::from((u8::from(d.month()) - 1) % 3))
}

/// The first days of the first and the last quarter lying whole in the whole months
/// `first..=last` (firsts of months); with `open_end`, the months after `last` are in the
/// future (empty), so `last`'s quarter counts as whole.
fn whole_quarters(first: Date, last: Date, open_end: bool) -> Option<(Date, Date)> {
    let qa = if quarter_of(first) == first {
        first
    } else {
        months_after(quarter_of(first), 3)
    };
    let q_last = quarter_of(last);
    let qb = if open_end || months_after(q_last, 2) == last {
        q_last
    } else {
        months_after(q_last, -3)
    };
    (qa <= qb).then_some((qa, qb))
}

/// The reads that cover `from..=to` with `dims` kept, using no grain coarser than `coarsest`
/// (days when the answer is grouped by day, months when by month). Rollup lists always hold a
/// day rollup with every dimension, so a plan always exists. A range that ends today (or
/// later) takes today's month (and quarter) whole: nothing is filed after today, so its cell
/// is exactly the days up to today.
#[must_use]
pub fn plan(
    rollups: &[Rollup],
    dims: &[Dim],
    (from, to): (Date, Date),
    today: Date,
    coarsest: Grain,
) -> Vec<Part> {
    let day_rollup = smallest(rollups, Grain::Day, dims).unwrap_or(0);
    let days = |a: Date, b: Date| Part {
        rollup: day_rollup,
        from: day_text(a),
        to: day_text(b),
    };
    let month_rollup = smallest(rollups, Grain::Month, dims);
    let Some(month_rollup) = month_rollup.filter(|_| coarsest >= Grain::Month) else {
        return vec![days(from, to)];
    };
    let months = |a: Date, b: Date| Part {
        rollup: month_rollup,
        from: month_text(a),
        to: month_text(b),
    };
    // Whole months inside the range.
    let first_whole = if from == first_of_month(from) {
        from
    } else {
        last_of_month(from).next_day().unwrap_or(from)
    };
    let last_whole = if to == last_of_month(to) || to >= today {
        to
    } else {
        first_of_month(to).previous_day().unwrap_or(to)
    };
    if first_whole > last_whole {
        return vec![days(from, to)];
    }
    let mut parts = Vec::new();
    if from < first_whole {
        parts.push(days(from, first_whole.previous_day().unwrap_or(from)));
    }
    let last_month = first_of_month(last_whole);
    let quarters = smallest(rollups, Grain::Quarter, dims)
        .filter(|_| coarsest >= Grain::Quarter)
        .and_then(|q| Some((q, whole_quarters(first_whole, last_month, to >= today)?)));
    match quarters {
        Some((q, (qa, qb))) => {
            if first_whole < qa {
                parts.push(months(first_whole, months_after(qa, -1)));
            }
            parts.push(Part {
                rollup: q,
                from: month_text(qa),
                to: month_text(qb),
            });
            let after = months_after(qb, 3);
            if after <= last_month {
                parts.push(months(after, last_whole));
            }
        }
        None => parts.push(months(first_whole, last_whole)),
    }
    if last_whole < to {
        parts.push(days(last_whole.next_day().unwrap_or(to), to));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::cells::{COUNT_ROLLUPS, Dim, FLOW_ROLLUPS};
    use time::macros::date;

    const TODAY: Date = date!(2026 - 12 - 07);

    #[test]
    fn a_range_to_today_reads_the_current_month_whole() {
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Province, Dim::Kind],
            (date!(2026 - 01 - 01), TODAY),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(p, vec![part(7, "2026-01", "2026-12")]);
    }

    fn part(rollup: i32, from: &str, to: &str) -> Part {
        Part {
            rollup,
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn whole_months_come_from_the_smallest_month_rollup_and_edges_from_days() {
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Province, Dim::Status],
            (date!(2026 - 01 - 15), date!(2026 - 04 - 03)),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(
            p,
            vec![
                part(5, "2026-01-15", "2026-01-31"),
                part(6, "2026-02", "2026-03"),
                part(5, "2026-04-01", "2026-04-03"),
            ]
        );
        // The regency is kept by the fine day rollup and by the month rollup 4 only.
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Regency],
            (date!(2026 - 01 - 01), date!(2026 - 12 - 31)),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(p, vec![part(4, "2026-01", "2026-12")]);
        // Regency and kind together: no month rollup keeps both, so days of the fine one.
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Regency, Dim::Kind],
            (date!(2026 - 01 - 01), date!(2026 - 12 - 31)),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(p, vec![part(0, "2026-01-01", "2026-12-31")]);
    }

    #[test]
    fn a_range_inside_one_month_or_grouped_by_day_reads_days() {
        let p = plan(
            COUNT_ROLLUPS,
            &[],
            (date!(2026 - 02 - 02), date!(2026 - 02 - 27)),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(p, vec![part(5, "2026-02-02", "2026-02-27")]);
        let p = plan(
            COUNT_ROLLUPS,
            &[],
            (date!(2026 - 01 - 01), date!(2026 - 03 - 31)),
            TODAY,
            Grain::Day,
        );
        assert_eq!(p, vec![part(5, "2026-01-01", "2026-03-31")]);
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Agency],
            (date!(2025 - 12 - 01), date!(2026 - 02 - 28)),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(p, vec![part(3, "2025-12", "2026-02")]);
    }

    #[test]
    fn whole_quarters_come_from_a_quarter_rollup_and_the_months_around_them_from_months() {
        // Twelve months up to today: four quarters (the current one has no later days).
        let p = plan(
            FLOW_ROLLUPS,
            &[],
            (date!(2026 - 01 - 01), TODAY),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(p, vec![part(2, "2026-01", "2026-10")]);
        // February to today: March as a month, then three quarters.
        let p = plan(
            FLOW_ROLLUPS,
            &[],
            (date!(2026 - 02 - 01), TODAY),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(
            p,
            vec![part(1, "2026-02", "2026-03"), part(2, "2026-04", "2026-10")]
        );
        // A closed range ending mid-quarter: the quarter's first months as months, the last
        // days as days.
        let p = plan(
            FLOW_ROLLUPS,
            &[],
            (date!(2025 - 12 - 10), date!(2026 - 08 - 15)),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(
            p,
            vec![
                part(0, "2025-12-10", "2025-12-31"),
                part(2, "2026-01", "2026-04"),
                part(1, "2026-07", "2026-07"),
                part(0, "2026-08-01", "2026-08-15"),
            ]
        );
        // No whole quarter inside: months only; grouped by month: never quarters.
        let p = plan(
            FLOW_ROLLUPS,
            &[],
            (date!(2026 - 02 - 01), date!(2026 - 04 - 30)),
            TODAY,
            Grain::Quarter,
        );
        assert_eq!(p, vec![part(1, "2026-02", "2026-04")]);
        let p = plan(
            FLOW_ROLLUPS,
            &[],
            (date!(2026 - 01 - 01), TODAY),
            TODAY,
            Grain::Month,
        );
        assert_eq!(p, vec![part(1, "2026-01", "2026-12")]);
    }

    #[test]
    fn periods_of_each_grain() {
        assert_eq!(Grain::Day.period("2026-08-15"), "2026-08-15");
        assert_eq!(Grain::Month.period("2026-08-15"), "2026-08");
        for (day, quarter) in [
            ("2026-01-01", "2026-01"),
            ("2026-03-31", "2026-01"),
            ("2026-04-01", "2026-04"),
            ("2026-08-15", "2026-07"),
            ("2026-12-31", "2026-10"),
        ] {
            assert_eq!(Grain::Quarter.period(day), quarter, "{day}");
        }
    }
}
