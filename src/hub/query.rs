//! What the statistics API (and the web console's `/nasional`) may ask, checked: the dataset,
//! its group-by keys and filters, the period and the row limit, from `name=value` pairs as a
//! query string gives them. Refusals are typed ([`RequestError`]): a parameter this dataset
//! does not know or one given twice (400), a value that breaks its rule — unknown group-by key,
//! bad date, reversed or absurd range, limit out of bounds, malformed code — (422), always
//! naming the parameter.

use time::{Date, Duration};

use super::cells::Dim;
use crate::domain::ticket::Status;
use crate::domain::{AgencyCode, Category, NodeId, ProvinceCode, RegionCode};

/// The four questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// Ticket counts (`/hub/stats`).
    Stats,
    /// SLA outcomes (`/hub/sla`).
    Sla,
    /// Flows between provinces and handling nodes (`/hub/flows`).
    Flows,
    /// Open tickets by age (`/hub/backlog`).
    Backlog,
}

impl Dataset {
    /// Its name (`dataset=` of the export).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Stats => "stats",
            Self::Sla => "sla",
            Self::Flows => "flows",
            Self::Backlog => "backlog",
        }
    }

    /// Parses a name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Stats, Self::Sla, Self::Flows, Self::Backlog]
            .into_iter()
            .find(|d| d.name() == s)
    }

    /// The keys it groups by and filters on (besides `day` and `month`, which group only).
    #[must_use]
    pub const fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Stats => &[
                "province", "regency", "kind", "category", "channel", "agency", "status",
            ],
            Self::Sla => &["province", "agency"],
            Self::Flows => &["origin", "handler"],
            Self::Backlog => &["province", "agency", "status"],
        }
    }

    const fn periods(self) -> bool {
        !matches!(self, Self::Backlog)
    }
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which question.
    pub dataset: Dataset,
    /// Group-by keys, in the order asked (`day`, `month` or one of [`Dataset::keys`]).
    pub group_by: Vec<&'static str>,
    /// `key = value` filters.
    pub filters: Vec<(&'static str, String)>,
    /// First filing day (WIB), inclusive.
    pub from: Date,
    /// Last filing day, inclusive.
    pub to: Date,
    /// At most this many rows.
    pub limit: usize,
}

impl Request {
    /// The count dimensions it needs kept (group-by and filter keys).
    #[must_use]
    pub fn dims(&self) -> Vec<Dim> {
        let mut dims: Vec<Dim> = self
            .group_by
            .iter()
            .copied()
            .chain(self.filters.iter().map(|(k, _)| *k))
            .filter_map(Dim::parse)
            .collect();
        dims.sort();
        dims.dedup();
        dims
    }

    /// The period grouping asked for, if any.
    #[must_use]
    pub fn period_group(&self) -> Option<&'static str> {
        self.group_by
            .iter()
            .copied()
            .find(|k| matches!(*k, "day" | "month"))
    }
}

/// Rows answered when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;
/// The longest period (days): ten years.
pub const MAX_DAYS: i64 = 3660;
/// The earliest date asked about.
pub const EPOCH: Date = time::macros::date!(2000 - 01 - 01);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A parameter this dataset does not take (400).
    #[error("unknown parameter `{0}` (this endpoint takes: {1})")]
    UnknownParameter(String, String),
    /// A parameter given twice (400).
    #[error("parameter `{0}` is given more than once")]
    Repeated(String),
    /// A value that breaks its rule (422).
    #[error("{field}: {message}")]
    Field {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn field(field: &'static str, message: impl Into<String>) -> RequestError {
    RequestError::Field {
        field,
        message: message.into(),
    }
}

fn parse_date(name: &'static str, s: &str) -> Result<Date, RequestError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).map_err(|_| field(name, format!("`{s}` is not a date; use YYYY-MM-DD")))
}

/// Checks a filter value by its key's rule; returns it as stored.
fn check_value(key: &'static str, v: &str) -> Result<String, RequestError> {
    let ok = match key {
        "province" | "origin" => ProvinceCode::parse(v).is_ok(),
        "regency" => RegionCode::parse(v).is_ok_and(|r| r.as_str().len() == 4),
        "kind" => serde_json::from_value::<crate::domain::ReportKind>(v.into()).is_ok(),
        "channel" => serde_json::from_value::<crate::domain::Channel>(v.into()).is_ok(),
        "category" => Category::parse(v).is_ok(),
        "agency" => AgencyCode::parse(v).is_ok(),
        "status" => Status::parse(v).is_some(),
        "handler" => NodeId::parse(v).is_ok(),
        _ => false,
    };
    if ok {
        Ok(v.to_owned())
    } else {
        Err(field(key, format!("`{v}` is not a valid {key}")))
    }
}

/// Checks `pairs` (a query string's `name=value` pairs) for `dataset`; `today` is the WIB
/// date the default period ends on (a year back from it).
///
/// # Errors
///
/// [`RequestError`], naming the parameter.
pub fn parse(
    dataset: Dataset,
    pairs: &[(String, String)],
    today: Date,
) -> Result<Request, RequestError> {
    let keys = dataset.keys();
    let mut seen: Vec<&str> = Vec::new();
    let mut req = Request {
        dataset,
        group_by: Vec::new(),
        filters: Vec::new(),
        from: year_before(today),
        to: today,
        limit: DEFAULT_LIMIT,
    };
    let (mut from, mut to) = (None, None);
    for (name, value) in pairs {
        if seen.contains(&name.as_str()) {
            return Err(RequestError::Repeated(name.clone()));
        }
        seen.push(name);
        match name.as_str() {
            "group_by" => {
                for k in value.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    let key = keys
                        .iter()
                        .chain(if dataset.periods() {
                            &["day", "month"][..]
                        } else {
                            &[]
                        })
                        .find(|x| **x == k)
                        .ok_or_else(|| {
                            field(
                                "group_by",
                                format!("unknown key `{k}`; one of: {}", group_keys(dataset)),
                            )
                        })?;
                    if req.group_by.contains(key) {
                        return Err(field("group_by", format!("key `{k}` is named twice")));
                    }
                    req.group_by.push(key);
                }
                if req.group_by.contains(&"day") && req.group_by.contains(&"month") {
                    return Err(field("group_by", "group by `day` or by `month`, not both"));
                }
            }
            "from" if dataset.periods() => from = Some(parse_date("from", value)?),
            "to" if dataset.periods() => to = Some(parse_date("to", value)?),
            "limit" => {
                req.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        field(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            other => match keys.iter().find(|k| **k == other) {
                Some(k) => req.filters.push((k, check_value(k, value)?)),
                None => {
                    let mut known: Vec<&str> = vec!["group_by", "limit"];
                    if dataset.periods() {
                        known.extend(["from", "to"]);
                    }
                    known.extend(keys);
                    return Err(RequestError::UnknownParameter(
                        other.to_owned(),
                        known.join(", "),
                    ));
                }
            },
        }
    }
    let latest = today + Duration::days(1);
    for (name, given) in [("from", from), ("to", to)] {
        if given.is_some_and(|d| d < EPOCH || d > latest) {
            return Err(field(name, format!("must be between {EPOCH} and {latest}")));
        }
    }
    match (from, to) {
        (Some(f), None) => {
            req.from = f;
            req.to = (f + Duration::days(364)).min(today);
        }
        (f, t) => {
            req.to = t.unwrap_or(today);
            req.from = f.unwrap_or_else(|| year_before(req.to)).max(EPOCH);
        }
    }
    if req.from > req.to {
        return Err(field(
            "from",
            format!("{} is after `to` ({})", req.from, req.to),
        ));
    }
    if (req.to - req.from).whole_days() >= MAX_DAYS {
        return Err(field(
            "to",
            format!("the period may span at most {MAX_DAYS} days"),
        ));
    }
    Ok(req)
}

/// The first day of the month eleven months before `to`'s: with `to`'s month, twelve whole
/// months (read from month cells).
fn year_before(to: Date) -> Date {
    let months = i32::from(u8::from(to.month())) - 1 + to.year() * 12 - 11;
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .and_then(|m| Date::from_calendar_date(year, m, 1).ok())
        .unwrap_or(to - Duration::days(364))
}

fn group_keys(dataset: Dataset) -> String {
    let mut k: Vec<&str> = dataset.keys().to_vec();
    if dataset.periods() {
        k.extend(["day", "month"]);
    }
    k.join(", ")
}
