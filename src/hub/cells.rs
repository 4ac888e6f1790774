//! A ticket's contribution to the national statistics, as a pure function of its folded state
//! (`TicketState`, milestones included). No IO.
//!
//! Every statistics row is a *cell*: a key (rollup, period, dimensions) and figures. A ticket
//! adds its figures to one cell of each rollup; when it changes, the writer subtracts the old
//! state's cells and adds the new one's ([`Cells::ticket`] with sign −1 and +1). Since the
//! folded state does not depend on the order events arrived in, neither do the cells: the
//! incremental tables equal a recomputation from scratch, in any arrival order.
//!
//! Rollups are the same counts at coarser keys (a month instead of a day, fewer dimensions),
//! so a national query reads a few thousand cells whatever the number of tickets
//! ([`COUNT_ROLLUPS`]; the query picks the smallest rollup that has what it asks for).

use std::collections::BTreeMap;

use time::UtcOffset;

use crate::domain::ticket::{Status, TicketState};
use crate::domain::{Timestamp, event::SlaStep};

/// A dimension of the ticket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// Province (2 digits), of the report's region.
    Province,
    /// Regency or city (4 digits), empty when the report names only a province.
    Regency,
    /// Report kind.
    Kind,
    /// Category.
    Category,
    /// Channel.
    Channel,
    /// Agency the ticket is (or was last) dispatched to; empty before any dispatch.
    Agency,
    /// Current status.
    Status,
}

impl Dim {
    /// Every dimension, in key order.
    pub const ALL: [Self; 7] = [
        Self::Province,
        Self::Regency,
        Self::Kind,
        Self::Category,
        Self::Channel,
        Self::Agency,
        Self::Status,
    ];

    /// Its name in the API and the column's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Province => "province",
            Self::Regency => "regency",
            Self::Kind => "kind",
            Self::Category => "category",
            Self::Channel => "channel",
            Self::Agency => "agency",
            Self::Status => "status",
        }
    }

    /// Parses an API name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// A rollup's period length. A period is stored as text that sorts in time order within a
/// rollup: a day as `YYYY-MM-DD`, a month as `YYYY-MM`, a quarter as its first month
/// (`YYYY-01`, `-04`, `-07` or `-10`), so month ranges select quarters too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grain {
    /// `YYYY-MM-DD`.
    Day,
    /// `YYYY-MM`.
    Month,
    /// The quarter's first month, `YYYY-MM`.
    Quarter,
}

impl Grain {
    /// The period of `day` (`YYYY-MM-DD`) at this grain.
    #[must_use]
    pub fn period(self, day: &str) -> String {
        let month = day.get(..7).unwrap_or_default();
        match self {
            Self::Day => day.to_owned(),
            Self::Month => month.to_owned(),
            Self::Quarter => {
                let m: u8 = month.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
                format!(
                    "{}-{:02}",
                    month.get(..4).unwrap_or_default(),
                    (m - 1) / 3 * 3 + 1
                )
            }
        }
    }
}

/// One rollup: an id (stored in each cell), its time grain and the dimensions it keeps (the
/// others are stored empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollup {
    /// Stored id.
    pub id: i32,
    /// The length of its periods.
    pub grain: Grain,
    /// Dimensions kept.
    pub dims: &'static [Dim],
}

impl Rollup {
    /// Whether it keeps every one of `dims`.
    #[must_use]
    pub fn has(&self, dims: &[Dim]) -> bool {
        dims.iter().all(|d| self.dims.contains(d))
    }
}

use Dim::Status as S;
use Dim::{Agency as A, Category as C, Channel as H, Kind as K, Province as P, Regency as R};

/// The rollups of the ticket counts, smallest first within each grain (a query reads the
/// first that keeps what it asks for). Day grain: province × status (the backlog's recent
/// days, short periods), then everything. Month grain: province × kind (the national figures
/// by province and kind: 114 cells a month), province × status (the backlog's older months),
/// then more dimensions each.
pub const COUNT_ROLLUPS: &[Rollup] = &[
    Rollup {
        id: 5,
        grain: Grain::Day,
        dims: &[P, S],
    },
    Rollup {
        id: 0,
        grain: Grain::Day,
        dims: &Dim::ALL,
    },
    Rollup {
        id: 7,
        grain: Grain::Month,
        dims: &[P, K],
    },
    Rollup {
        id: 6,
        grain: Grain::Month,
        dims: &[P, S],
    },
    Rollup {
        id: 2,
        grain: Grain::Month,
        dims: &[P, K, H, S],
    },
    Rollup {
        id: 4,
        grain: Grain::Month,
        dims: &[P, R, S],
    },
    Rollup {
        id: 3,
        grain: Grain::Month,
        dims: &[P, A, S],
    },
    Rollup {
        id: 1,
        grain: Grain::Month,
        dims: &[P, K, C, H, A, S],
    },
];

/// Open tickets only, by province (rollup 8 by day, 9 by month; status stored empty): the
/// national backlog by age reads 38 cells a day here instead of a cell per province × status.
/// Not in [`COUNT_ROLLUPS`]: a count query must never pick them.
pub const OPEN_ROLLUPS: &[Rollup] = &[
    Rollup {
        id: 8,
        grain: Grain::Day,
        dims: &[P],
    },
    Rollup {
        id: 9,
        grain: Grain::Month,
        dims: &[P],
    },
];

/// SLA rollups: 0 day × province × agency, 2 month × province, 1 month × province × agency.
pub const SLA_ROLLUPS: &[Rollup] = &[
    Rollup {
        id: 0,
        grain: Grain::Day,
        dims: &[P, A],
    },
    Rollup {
        id: 2,
        grain: Grain::Month,
        dims: &[P],
    },
    Rollup {
        id: 1,
        grain: Grain::Month,
        dims: &[P, A],
    },
];
/// Flow rollups (origin province × handling node, both always kept): 0 by day, 1 by month,
/// 2 by quarter (a year's flows read four quarters of up to 38 × 39 cells, not twelve months).
pub const FLOW_ROLLUPS: &[Rollup] = &[
    Rollup {
        id: 0,
        grain: Grain::Day,
        dims: &[],
    },
    Rollup {
        id: 1,
        grain: Grain::Month,
        dims: &[],
    },
    Rollup {
        id: 2,
        grain: Grain::Quarter,
        dims: &[],
    },
];

/// The SLA figures of a cell, in column order (see `hub::model`).
pub const SLA_FIGURES: [&str; 14] = [
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
    "rating_sum",
];

/// Upper bounds (hours, exclusive) of the dispatch-to-first-action buckets; the last bucket
/// is everything from 720 h on.
pub const LATENCY_HOURS: [i64; 10] = [1, 4, 12, 24, 48, 72, 120, 168, 336, 720];

/// The flow figures of a cell: dispatches, acted on, returned, then one count per latency
/// bucket.
pub const FLOW_FIGURES: usize = 3 + LATENCY_HOURS.len() + 1;

/// Statuses that count as open (the backlog): everything but resolved (waiting for the
/// citizen), closed and archived.
#[must_use]
pub fn is_open(status: Status) -> bool {
    !(status.is_final() || status == Status::Resolved)
}

/// The key of a count cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountKey {
    /// Rollup id.
    pub rollup: i32,
    /// `YYYY-MM-DD` or `YYYY-MM` (filing date, WIB).
    pub period: String,
    /// Dimension values in [`Dim::ALL`] order; empty where the rollup does not keep one.
    pub dims: [String; 7],
}

/// The key of an SLA cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlaKey {
    /// Rollup id.
    pub rollup: i32,
    /// Filing period.
    pub period: String,
    /// Province.
    pub province: String,
    /// Agency (current, else last dispatched; empty if never dispatched).
    pub agency: String,
}

/// The key of a flow cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// Rollup id.
    pub rollup: i32,
    /// Filing period.
    pub period: String,
    /// The report's province.
    pub origin: String,
    /// The node it was dispatched to.
    pub handler: String,
}

/// Cells with figures to add (or, negative, to subtract).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cells {
    /// Ticket counts.
    pub counts: BTreeMap<CountKey, i64>,
    /// SLA figures ([`SLA_FIGURES`]).
    pub sla: BTreeMap<SlaKey, [i64; 14]>,
    /// Flow figures ([`FLOW_FIGURES`]).
    pub flows: BTreeMap<FlowKey, [i64; FLOW_FIGURES]>,
}

/// The national day boundary: statistics periods are WIB (UTC+7) dates.
const WIB_SECONDS: i32 = 7 * 3600;

/// The WIB date of `t`.
#[must_use]
pub fn wib_date(t: Timestamp) -> time::Date {
    let offset = UtcOffset::from_whole_seconds(WIB_SECONDS).unwrap_or(UtcOffset::UTC);
    t.to_datetime().to_offset(offset).date()
}

/// The WIB date of `t`, `YYYY-MM-DD`.
#[must_use]
pub fn day_of(t: Timestamp) -> String {
    super::plan::day_text(wib_date(t))
}

fn bump<K: Ord, const N: usize>(map: &mut BTreeMap<K, [i64; N]>, key: K, add: [i64; N]) {
    let cell = map.entry(key).or_insert([0; N]);
    for (c, a) in cell.iter_mut().zip(add) {
        *c += a;
    }
}

impl Cells {
    /// Adds `sign` (±1) times the cells of a ticket in state `s`.
    pub fn ticket(&mut self, s: &TicketState, sign: i64) {
        let r = &s.report;
        let day = day_of(s.created_at);
        let region = r.region.as_str();
        let province = region.get(..2).unwrap_or_default().to_owned();
        let last_agency = s.milestones.dispatches.last().map(|d| d.agency.to_string());
        let agency = s
            .agency
            .as_ref()
            .map(ToString::to_string)
            .or(last_agency)
            .unwrap_or_default();
        let values: [String; 7] = [
            province.clone(),
            if region.len() == 4 {
                region.to_owned()
            } else {
                String::new()
            },
            wire(&r.report_kind),
            r.category.as_str().to_owned(),
            wire(&r.channel),
            agency.clone(),
            s.status.as_str().to_owned(),
        ];
        let open = if is_open(s.status) { OPEN_ROLLUPS } else { &[] };
        for rollup in COUNT_ROLLUPS.iter().chain(open) {
            let mut dims = values.clone();
            for (value, dim) in dims.iter_mut().zip(Dim::ALL) {
                if !rollup.dims.contains(&dim) {
                    value.clear();
                }
            }
            let period = rollup.grain.period(&day);
            *self
                .counts
                .entry(CountKey {
                    rollup: rollup.id,
                    period,
                    dims,
                })
                .or_insert(0) += sign;
        }
        let sla = sla_figures(s).map(|f| f * sign);
        for rollup in SLA_ROLLUPS {
            let key = SlaKey {
                rollup: rollup.id,
                period: rollup.grain.period(&day),
                province: province.clone(),
                agency: if rollup.has(&[A]) {
                    agency.clone()
                } else {
                    String::new()
                },
            };
            bump(&mut self.sla, key, sla);
        }
        for d in &s.milestones.dispatches {
            let mut f = [0; FLOW_FIGURES];
            f[0] = 1;
            if let Some(first) = d.first_action {
                f[1] = 1;
                let hours = (first.millis() - d.at.millis()).max(0) / 3_600_000;
                let bucket = LATENCY_HOURS.iter().take_while(|b| hours >= **b).count();
                f[3 + bucket] = 1;
            }
            f[2] = i64::from(d.returned);
            for rollup in FLOW_ROLLUPS {
                let key = FlowKey {
                    rollup: rollup.id,
                    period: rollup.grain.period(&day),
                    origin: province.clone(),
                    handler: d.handler.to_string(),
                };
                bump(&mut self.flows, key, f.map(|x| x * sign));
            }
        }
    }

    /// Drops cells whose figures are all zero (a change that left a cell as it was).
    pub fn prune(&mut self) {
        self.counts.retain(|_, n| *n != 0);
        self.sla.retain(|_, f| f.iter().any(|x| *x != 0));
        self.flows.retain(|_, f| f.iter().any(|x| *x != 0));
    }

    /// No cell to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.sla.is_empty() && self.flows.is_empty()
    }

    /// The cells of the change from `old` (none for a new ticket) to `new`, pruned.
    #[must_use]
    pub fn change(old: Option<&TicketState>, new: &TicketState) -> Self {
        let mut cells = Self::default();
        if let Some(o) = old {
            cells.ticket(o, -1);
        }
        cells.ticket(new, 1);
        cells.prune();
        cells
    }
}

/// One ticket's SLA figures ([`SLA_FIGURES`]): each 0 or 1, but the rating sum.
fn sla_figures(s: &TicketState) -> [i64; 14] {
    let m = &s.milestones;
    let r = &s.report;
    let judged = |at: Option<Timestamp>, due: Timestamp| match at {
        Some(t) if t <= due => (1, 0),
        Some(_) => (0, 1),
        None => (0, 0),
    };
    let (v_on, v_late) = judged(m.verified_at, r.verify_due);
    let (d_on, d_late) = judged(m.dispatched_at, r.verify_due);
    let (r_on, r_late) = match m.responded_on_time {
        Some(true) => (1, 0),
        Some(false) => (0, 1),
        None => (0, 0),
    };
    let (x_on, x_late) = judged(m.resolved_at, r.overall_due);
    let bit = |step: SlaStep| i64::from(s.breaches & step.bit() != 0);
    [
        1,
        v_on,
        v_late,
        d_on,
        d_late,
        r_on,
        r_late,
        x_on,
        x_late,
        bit(SlaStep::VerifyDispatch),
        bit(SlaStep::Response),
        bit(SlaStep::Overall),
        i64::from(s.rating.is_some()),
        s.rating.map_or(0, i64::from),
    ]
}

/// The serde string form of a report enum (its wire name).
fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
