//! Which cells answer a question: a period split into whole months (read from a month rollup)
//! and the days at its edges (read from a day rollup), each from the smallest rollup that keeps
//! the dimensions asked for. So a year's national figures read a few thousand month cells,
//! whatever the number of tickets.

use time::{Date, Month};

use super::cells::{Dim, Rollup};

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

/// The first (smallest: the lists are ordered so) rollup of `rollups` with grain `monthly`
/// that keeps `dims`.
fn smallest(rollups: &[Rollup], monthly: bool, dims: &[Dim]) -> Option<i32> {
    rollups
        .iter()
        .find(|r| r.monthly == monthly && r.has(dims))
        .map(|r| r.id)
}

/// The reads that cover `from..=to` with `dims` kept. With `by_day`, days only (the answer is
/// grouped by day). Rollup lists always hold a day rollup with every dimension, so a plan
/// always exists. A range that ends today (or later) takes today's month whole: nothing is
/// filed after today, so its month cell is exactly the days up to today.
#[must_use]
pub fn plan(
    rollups: &[Rollup],
    dims: &[Dim],
    (from, to): (Date, Date),
    today: Date,
    by_day: bool,
) -> Vec<Part> {
    let day_rollup = smallest(rollups, false, dims).unwrap_or(0);
    let days = |a: Date, b: Date| Part {
        rollup: day_rollup,
        from: day_text(a),
        to: day_text(b),
    };
    let month_rollup = smallest(rollups, true, dims);
    let Some(month_rollup) = month_rollup.filter(|_| !by_day) else {
        return vec![days(from, to)];
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
    parts.push(Part {
        rollup: month_rollup,
        from: month_text(first_whole),
        to: month_text(last_whole),
    });
    if last_whole < to {
        parts.push(days(last_whole.next_day().unwrap_or(to), to));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::cells::{COUNT_ROLLUPS, Dim};
    use time::macros::date;

    const TODAY: Date = date!(2026 - 12 - 07);

    #[test]
    fn a_range_to_today_reads_the_current_month_whole() {
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Province, Dim::Kind],
            (date!(2026 - 01 - 01), TODAY),
            TODAY,
            false,
        );
        assert_eq!(p, vec![part(2, "2026-01", "2026-12")]);
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
            false,
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
            false,
        );
        assert_eq!(p, vec![part(4, "2026-01", "2026-12")]);
        // Regency and kind together: no month rollup keeps both, so days of the fine one.
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Regency, Dim::Kind],
            (date!(2026 - 01 - 01), date!(2026 - 12 - 31)),
            TODAY,
            false,
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
            false,
        );
        assert_eq!(p, vec![part(5, "2026-02-02", "2026-02-27")]);
        let p = plan(
            COUNT_ROLLUPS,
            &[],
            (date!(2026 - 01 - 01), date!(2026 - 03 - 31)),
            TODAY,
            true,
        );
        assert_eq!(p, vec![part(5, "2026-01-01", "2026-03-31")]);
        let p = plan(
            COUNT_ROLLUPS,
            &[Dim::Agency],
            (date!(2025 - 12 - 01), date!(2026 - 02 - 28)),
            TODAY,
            false,
        );
        assert_eq!(p, vec![part(3, "2025-12", "2026-02")]);
    }
}
