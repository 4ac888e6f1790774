//! Instants as integer milliseconds since the Unix epoch (no floats anywhere in events),
//! written as RFC 3339 UTC text with millisecond precision: `2026-11-28T05:07:09.123Z`.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant, in whole milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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

    /// The current time, truncated to milliseconds.
    #[must_use]
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
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

    /// This instant plus some milliseconds (saturating).
    #[must_use]
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = self.to_datetime();
        write!(
            f,
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
