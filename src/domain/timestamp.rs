//! Instants as integer milliseconds since the Unix epoch (no floats anywhere in events),
//! written as RFC 3339 UTC text with millisecond precision: `2026-11-28T05:07:09.123Z`.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How far this process's clock runs ahead of the system's (ms): 0 but in tests and drills
/// that simulate weeks passing ([`shift_clock`]).
static CLOCK_SHIFT_MS: AtomicI64 = AtomicI64::new(0);

/// Makes [`Timestamp::now`] run `ms` ahead of the system clock for the rest of the process —
/// for tests and drills that simulate a long outage with real processes (`lapor-node serve`
/// reads `LAPOR_CLOCK_SHIFT_SECS`). Never needed in production.
pub fn shift_clock(ms: i64) {
    CLOCK_SHIFT_MS.store(ms, Ordering::Relaxed);
}

/// An instant, in whole milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Timestamp(i64);

/// A timestamp that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {0:?}: expected RFC 3339 UTC with milliseconds, e.g. 2026-11-28T05:07:09.123Z"
)]
pub struct TimestampError(String);

impl Timestamp {
    /// From milliseconds since the epoch.
    #[must_use]
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The current time, truncated to milliseconds (shifted by [`shift_clock`], if set).
    #[must_use]
    pub fn now() -> Self {
        let t = Self::from_datetime(OffsetDateTime::now_utc());
        Self(t.0.saturating_add(CLOCK_SHIFT_MS.load(Ordering::Relaxed)))
    }

    /// Truncates a date-time to milliseconds.
    #[must_use]
    pub fn from_datetime(dt: OffsetDateTime) -> Self {
        let ms = dt.unix_timestamp_nanos() / 1_000_000;
        Self(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// As a UTC date-time.
    #[must_use]
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Parses the canonical text form (exactly `YYYY-MM-DDTHH:MM:SS.mmmZ`).
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| TimestampError(s.to_owned()))?;
        let ts = Self::from_datetime(dt);
        if ts.to_string() == s {
            Ok(ts)
        } else {
            Err(TimestampError(s.to_owned()))
        }
    }

    /// The canonical text in a buffer (no allocation, no formatting machinery: timestamps are
    /// written several times for every event and ticket row). `None` outside the years
    /// 0000–9999, which [`fmt::Display`] writes through `time` instead.
    #[must_use]
    fn text(self) -> Option<[u8; 24]> {
        let secs = self.0.div_euclid(1000);
        let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000Z";
        for (range, value) in [
            (0..4, year),
            (5..7, month),
            (8..10, day),
            (11..13, of_day / 3600),
            (14..16, of_day / 60 % 60),
            (17..19, of_day % 60),
            (20..23, self.0.rem_euclid(1000)),
        ] {
            let mut v = value;
            for digit in b[range].iter_mut().rev() {
                *digit = b'0' + u8::try_from(v % 10).unwrap_or(0);
                v /= 10;
            }
        }
        Some(b)
    }

    /// This instant plus some milliseconds (saturating).
    #[must_use]
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01 (the days-to-civil
/// algorithm over 400-year eras of 146,097 days, with years starting on 1 March).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.text() {
            Some(b) => serializer
                .serialize_str(std::str::from_utf8(&b).map_err(serde::ser::Error::custom)?),
            None => serializer.collect_str(self),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => self.write_by_time(f),
        }
    }
}

impl Timestamp {
    /// The text through `time` (years outside [`Timestamp::text`]'s range; tests compare).
    fn write_by_time(self, out: &mut impl fmt::Write) -> fmt::Result {
        let dt = self.to_datetime();
        write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }
}

impl TryFrom<String> for Timestamp {
    type Error = TimestampError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Timestamp> for String {
    fn from(value: Timestamp) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_canonical_text() {
        let t = Timestamp::parse("2026-11-28T05:07:09.123Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T05:07:09.123Z");
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    /// The text as `time` writes it (what [`Timestamp::text`] replaced).
    fn written_by_time(t: Timestamp) -> String {
        let mut s = String::new();
        t.write_by_time(&mut s).unwrap();
        s
    }

    proptest::proptest! {
        #[test]
        fn fast_text_is_what_time_writes(ms in -62_167_219_200_000_i64..=253_402_300_799_999) {
            let t = Timestamp::from_millis(ms);
            proptest::prop_assert_eq!(t.to_string(), written_by_time(t));
            proptest::prop_assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", written_by_time(t)));
        }
    }

    #[test]
    fn fast_text_at_the_edges_of_days_months_leap_years_and_its_range() {
        for s in [
            "0000-01-01T00:00:00.000Z",
            "0000-02-29T23:59:59.999Z",
            "1969-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00.000Z",
            "1900-02-28T12:00:00.000Z",
            "2000-02-29T00:00:00.001Z",
            "2024-12-31T23:59:59.999Z",
            "2026-11-28T05:07:09.123Z",
            "2100-03-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            let t = Timestamp::parse(s).unwrap();
            assert_eq!(t.to_string(), s);
            assert_eq!(written_by_time(t), s);
        }
        // Outside the four-digit years the text comes from `time`, as before.
        let beyond = Timestamp::from_millis(253_402_300_800_000);
        assert_eq!(beyond.to_string(), written_by_time(beyond));
    }

    #[test]
    fn refuses_non_canonical_text() {
        for s in [
            "2026-11-28T05:07:09Z",
            "2026-11-28T12:07:09.123+07:00",
            "yesterday",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
    }
}
