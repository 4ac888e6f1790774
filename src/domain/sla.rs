//! Working-day arithmetic for SLA clocks (pure, no IO).
//!
//! A *working day* is a local date, in the province's fixed time zone (WIB `+07`, WITA `+08`,
//! WIT `+09`), that is Monday–Friday and not a configured holiday. A deadline `n` days after a
//! submission is the *end* of the `n`-th counted day: the submission's own local day never
//! counts, counting starts on the next local date, and the result is the instant of local
//! midnight starting the following calendar day, with offset UTC (`n == 0`: end of the
//! submission's own day). Results beyond the range of [`time`] saturate at its largest instant;
//! every loop is bounded by the number of holidays.

use std::collections::BTreeSet;
use std::ops::Bound;

use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset, Weekday};

/// The latest instant `time` can represent; saturated deadlines end up here.
const MAX_INSTANT: OffsetDateTime = PrimitiveDateTime::MAX.assume_utc();

/// A province's working calendar: its fixed UTC offset and its holiday dates (local dates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCalendar {
    offset: UtcOffset,
    holidays: BTreeSet<Date>,
}

impl WorkCalendar {
    /// A calendar in the time zone `offset` with the given holiday dates (duplicates are fine).
    #[must_use]
    pub fn new(offset: UtcOffset, holidays: impl IntoIterator<Item = Date>) -> Self {
        let holidays = holidays.into_iter().collect();
        Self { offset, holidays }
    }

    /// The calendar's fixed UTC offset.
    #[must_use]
    pub fn offset(&self) -> UtcOffset {
        self.offset
    }

    /// Mon–Fri and not a holiday.
    #[must_use]
    pub fn is_working_day(&self, date: Date) -> bool {
        is_weekday(date) && !self.holidays.contains(&date)
    }

    /// The local calendar date of an instant in this calendar's time zone (saturating at
    /// [`Date::MIN`] / [`Date::MAX`] at the edges of the representable range).
    #[must_use]
    pub fn local_date(&self, at: OffsetDateTime) -> Date {
        match at.checked_to_offset(self.offset) {
            Some(local) => local.date(),
            None if self.offset.whole_seconds() > at.offset().whole_seconds() => Date::MAX,
            None => Date::MIN,
        }
    }

    /// Deadline `n` working days after `start`: the day of `start` itself never counts; counting
    /// starts on the next local date; the deadline is the END of the n-th working day, returned as
    /// the instant of local midnight at the start of the following calendar day, in UTC
    /// (offset UTC). n == 0 means end of the local day of `start`.
    #[must_use]
    pub fn add_working_days(&self, start: OffsetDateTime, n: u32) -> OffsetDateTime {
        self.nth_working_day_after(self.local_date(start), n)
            .map_or(MAX_INSTANT, |day| self.end_of_day(day))
    }

    /// Deadline `n` calendar days after `start`, same end-of-day convention (for the 60-day cap).
    #[must_use]
    pub fn add_calendar_days(&self, start: OffsetDateTime, n: u32) -> OffsetDateTime {
        self.local_date(start)
            .checked_add(Duration::days(i64::from(n)))
            .map_or(MAX_INSTANT, |day| self.end_of_day(day))
    }

    /// How many working days lie strictly between the local dates of `from` and `to` (neither
    /// endpoint's day counts; 0 if `to`'s date is not after the day after `from`'s). These are the
    /// working days fully elapsed, so `working_days_between(s, add_working_days(s, n)) == n`.
    #[must_use]
    pub fn working_days_between(&self, from: OffsetDateTime, to: OffsetDateTime) -> u32 {
        let first = self.local_date(from);
        let Some(last) = self.local_date(to).previous_day() else {
            return 0;
        };
        weekdays_after(first, last).saturating_sub(self.weekday_holidays(first, last))
    }

    /// The `n`-th working day strictly after `date` (`date` itself when `n == 0`), or `None`
    /// when it lies beyond [`Date::MAX`].
    fn nth_working_day_after(&self, date: Date, n: u32) -> Option<Date> {
        // Invariant: weekdays in (date, candidate] == n + weekday holidays in (date, counted_to].
        // When (counted_to, candidate] holds no weekday holiday, `candidate` is the answer;
        // otherwise each pass consumes at least one distinct holiday, bounding the passes.
        let mut counted_to = date;
        let mut candidate = add_weekdays(date, n)?;
        for _ in 0..=self.holidays.len() {
            let skipped = self.weekday_holidays(counted_to, candidate);
            if skipped == 0 {
                return Some(candidate);
            }
            counted_to = candidate;
            candidate = add_weekdays(candidate, skipped)?;
        }
        None
    }

    /// Number of holidays falling Mon–Fri in the local-date range `(after, up_to]`.
    fn weekday_holidays(&self, after: Date, up_to: Date) -> u32 {
        if after >= up_to {
            return 0;
        }
        let range = (Bound::Excluded(after), Bound::Included(up_to));
        let in_range = self.holidays.range(range);
        let count = in_range.filter(|day| is_weekday(**day)).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Local midnight starting the day after `date`, as an instant with offset UTC. The result is
    /// later than the caller's start instant, so (for offsets under 24 h) it can only overflow.
    fn end_of_day(&self, date: Date) -> OffsetDateTime {
        let next = date
            .next_day()
            .map(|day| day.midnight().assume_offset(self.offset));
        next.and_then(|at| at.checked_to_offset(UtcOffset::UTC))
            .unwrap_or(MAX_INSTANT)
    }
}

/// Monday to Friday.
fn is_weekday(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The `k`-th Mon–Fri date strictly after `date` (`date` itself when `k == 0`), or `None` past
/// [`Date::MAX`]. Constant time.
fn add_weekdays(date: Date, k: u32) -> Option<Date> {
    if k == 0 {
        return Some(date);
    }
    // Counting from a Saturday or Sunday is counting from the Friday before it, minus the
    // one or two days already walked past that Friday.
    let weekday = u64::from(date.weekday().number_days_from_monday());
    let position = weekday.min(4);
    let past_friday = weekday - position;
    let (weeks, rest) = (u64::from(k / 5), u64::from(k % 5));
    let weekend = if position + rest >= 5 { 2 } else { 0 };
    // At least 3 when counting from a Friday, so the subtraction cannot underflow.
    let days = (weeks * 7 + rest + weekend).checked_sub(past_friday)?;
    date.checked_add(Duration::days(i64::try_from(days).ok()?))
}

/// Number of Mon–Fri dates in `(after, up_to]`; 0 when the range is empty.
fn weekdays_after(after: Date, up_to: Date) -> u32 {
    let days = u32::try_from((up_to - after).whole_days()).unwrap_or(0);
    let start = u32::from(after.weekday().number_days_from_monday());
    let partial: u32 = (1..=days % 7).map(|i| u32::from((start + i) % 7 < 5)).sum();
    days / 7 * 5 + partial
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime, offset};

    type Case<'a> = (&'a WorkCalendar, OffsetDateTime, u32, OffsetDateTime);
    const FRI: OffsetDateTime = datetime!(2026-03-06 10:00 +7);

    fn wib(holidays: &[Date]) -> WorkCalendar {
        WorkCalendar::new(offset!(+7), holidays.iter().copied())
    }

    fn days_from(first: Date, count: usize) -> Vec<Date> {
        let days = std::iter::successors(Some(first), |day| day.next_day());
        days.take(count).collect()
    }

    /// Same instant and offset UTC for each `(calendar, start, n, deadline)` (`==` ignores offsets).
    fn check(deadline: fn(&WorkCalendar, OffsetDateTime, u32) -> OffsetDateTime, cases: &[Case]) {
        for &(cal, start, n, expected) in cases {
            let got = deadline(cal, start, n);
            let message = format!("{start} + {n} in {}", cal.offset());
            assert_eq!((got, got.offset()), (expected, UtcOffset::UTC), "{message}");
        }
    }

    fn working(cases: &[Case]) {
        check(WorkCalendar::add_working_days, cases);
    }

    #[test]
    fn friday_and_weekend_submissions() {
        let cal = &wib(&[]);
        let sat = datetime!(2026-03-07 00:00 +7);
        let sun = datetime!(2026-03-08 23:59 +7);
        // Friday + 3 = end of Wednesday = Thursday 00:00 +07 = Wednesday 17:00 UTC.
        assert_eq!(cal.add_working_days(FRI, 3), datetime!(2026-03-12 00:00 +7));
        working(&[
            (cal, FRI, 3, datetime!(2026-03-11 17:00 UTC)),
            (cal, sat, 3, datetime!(2026-03-11 17:00 UTC)),
            (cal, sun, 3, datetime!(2026-03-11 17:00 UTC)),
            (cal, sat, 0, datetime!(2026-03-07 17:00 UTC)),
        ]);
    }

    #[test]
    fn same_instant_in_wib_wita_wit() {
        let thu = datetime!(2026-03-05 16:00 UTC); // Thu 23:00 WIB, Fri 00:00 WITA, Fri 01:00 WIT
        let fri = datetime!(2026-03-06 16:00 UTC); // Fri 23:00 WIB, Sat 00:00 WITA, Sat 01:00 WIT
        let edge = fri - Duration::SECOND; // Fri 23:59:59 WITA
        let (wib, wita) = (&wib(&[]), &WorkCalendar::new(offset!(+8), []));
        let wit = &WorkCalendar::new(offset!(+9), []);
        assert_eq!(wib.local_date(fri), date!(2026 - 03 - 06));
        assert_eq!(wita.local_date(fri), date!(2026 - 03 - 07));
        assert_eq!(wit.local_date(fri), date!(2026 - 03 - 07));
        working(&[
            (wib, fri, 0, datetime!(2026-03-06 17:00 UTC)),
            (wita, fri, 0, datetime!(2026-03-07 16:00 UTC)),
            (wit, fri, 0, datetime!(2026-03-07 15:00 UTC)),
            (wib, fri, 1, datetime!(2026-03-09 17:00 UTC)),
            (wita, fri, 1, datetime!(2026-03-09 16:00 UTC)),
            (wit, fri, 1, datetime!(2026-03-09 15:00 UTC)),
            (wib, thu, 1, datetime!(2026-03-06 17:00 UTC)),
            (wita, thu, 1, datetime!(2026-03-09 16:00 UTC)),
            (wit, thu, 1, datetime!(2026-03-09 15:00 UTC)),
            (wita, edge, 0, datetime!(2026-03-06 16:00 UTC)),
            (wita, edge, 5, datetime!(2026-03-13 16:00 UTC)),
        ]);
    }

    #[test]
    fn holidays() {
        assert!(!wib(&[]).is_working_day(date!(2026 - 03 - 07)));
        let tue = &wib(&[date!(2026 - 03 - 10)]);
        let wed = &wib(&[date!(2026 - 03 - 11)]);
        let weekend = &wib(&days_from(date!(2026 - 03 - 06), 3)); // Fri 6 to Sun 8 March
        let lebaran = &wib(&days_from(date!(2026 - 03 - 18), 7)); // Wed 18 to Tue 24 March
        let mon = datetime!(2026-03-16 10:00 +7);
        let thu = datetime!(2026-03-19 08:00 +7);
        assert!(!tue.is_working_day(date!(2026 - 03 - 10)));
        assert!(tue.is_working_day(date!(2026 - 03 - 09)));
        working(&[
            (tue, FRI, 3, datetime!(2026-03-12 17:00 UTC)),
            (wed, FRI, 3, datetime!(2026-03-12 17:00 UTC)),
            (weekend, FRI, 3, datetime!(2026-03-11 17:00 UTC)),
            (lebaran, mon, 1, datetime!(2026-03-17 17:00 UTC)),
            (lebaran, mon, 2, datetime!(2026-03-25 17:00 UTC)),
            (lebaran, mon, 5, datetime!(2026-03-30 17:00 UTC)),
            (lebaran, thu, 1, datetime!(2026-03-25 17:00 UTC)),
        ]);
    }

    #[test]
    fn counts_year_boundary_and_leap_day() {
        let (cal, new_year) = (&wib(&[]), &wib(&[date!(2026 - 01 - 01)]));
        let wed = datetime!(2026-03-04 10:00 +7);
        let dec31 = datetime!(2025-12-31 10:00 +7);
        let late = datetime!(2025-12-31 17:30 UTC); // already 1 January in WIB
        let feb28 = datetime!(2028-02-28 09:00 +7);
        let feb29 = datetime!(2028-02-29 23:00 +7);
        working(&[
            (cal, FRI, 0, datetime!(2026-03-06 17:00 UTC)),
            (cal, FRI, 5, datetime!(2026-03-13 17:00 UTC)),
            (cal, FRI, 10, datetime!(2026-03-20 17:00 UTC)),
            (cal, wed, 10, datetime!(2026-03-18 17:00 UTC)),
            (cal, dec31, 3, datetime!(2026-01-05 17:00 UTC)),
            (new_year, dec31, 0, datetime!(2025-12-31 17:00 UTC)),
            (new_year, dec31, 3, datetime!(2026-01-06 17:00 UTC)),
            (new_year, late, 1, datetime!(2026-01-02 17:00 UTC)),
            (cal, feb28, 1, datetime!(2028-02-29 17:00 UTC)),
            (cal, feb28, 2, datetime!(2028-03-01 17:00 UTC)),
            (cal, feb29, 0, datetime!(2028-02-29 17:00 UTC)),
        ]);
    }

    #[test]
    fn calendar_days() {
        let cal = &wib(&[date!(2026 - 03 - 10)]);
        let jan = datetime!(2028-01-15 12:00 +7);
        check(
            WorkCalendar::add_calendar_days,
            &[
                (cal, FRI, 60, datetime!(2026-05-05 17:00 UTC)),
                (cal, FRI, 0, datetime!(2026-03-06 17:00 UTC)),
                (cal, jan, 60, datetime!(2028-03-15 17:00 UTC)),
            ],
        );
    }

    #[test]
    fn working_days_between() {
        let (cal, thu) = (wib(&[]), datetime!(2026-03-12 10:00 +7));
        let mon_night = datetime!(2026-03-09 23:00 +7);
        let tue = datetime!(2026-03-10 00:00 +7);
        let april = datetime!(2026-04-06 10:00 +7);
        assert_eq!(cal.working_days_between(FRI, thu), 3);
        assert_eq!(cal.working_days_between(FRI, FRI), 0);
        assert_eq!(cal.working_days_between(thu, FRI), 0);
        assert_eq!(cal.working_days_between(FRI, mon_night), 0);
        assert_eq!(cal.working_days_between(FRI, tue), 1);
        assert_eq!(cal.working_days_between(FRI, april), 20);
        let tue_off = wib(&[date!(2026 - 03 - 10)]);
        assert_eq!(tue_off.working_days_between(FRI, thu), 2);
        // It inverts add_working_days, also across the Lebaran week.
        let cal = wib(&days_from(date!(2026 - 03 - 18), 7));
        let sat = datetime!(2026-03-14 10:00 +7);
        for start in [FRI, sat, datetime!(2026-03-19 23:59 +7)] {
            for n in 0..40 {
                let deadline = cal.add_working_days(start, n);
                assert_eq!(cal.working_days_between(start, deadline), n);
            }
        }
    }

    #[test]
    fn long_holiday_list_and_saturation() {
        // Every day of 2026-2035 is a holiday; 1 January 2036 is a Tuesday.
        let cal = &wib(&days_from(date!(2026 - 01 - 01), 3652));
        let start = datetime!(2025-12-31 10:00 +7);
        let edge = datetime!(9999-12-31 20:00 UTC);
        let late = datetime!(9999-12-20 12:00 UTC);
        working(&[
            (cal, start, 1, datetime!(2036-01-01 17:00 UTC)),
            (cal, start, u32::MAX, MAX_INSTANT),
            (cal, edge, 0, MAX_INSTANT),
            (cal, late, 30, MAX_INSTANT),
        ]);
        let jan2 = datetime!(2036-01-02 00:00 +7);
        assert_eq!(cal.working_days_between(start, jan2), 1);
        assert_eq!(cal.add_calendar_days(start, u32::MAX), MAX_INSTANT);
        assert_eq!(cal.local_date(edge), Date::MAX);
    }
}
