//! A node's repeated SLA breaches, escalated to the hub (decision 105): a node that recorded at
//! least `hub.escalate_breaches` breaches (`sla_breached` events it signed, any step) within
//! the last `hub.escalate_window_days` days gets an `sla_breaches` alert, kept in
//! `federation_alerts` beside the health alerts and cleared when the count drops below.
//!
//! ```text
//!  events (at_ms) WHERE kind = 'sla_breached' ──► breach_alerts (count per origin in the window)
//!        ──► watch::read ──► alerts::sync (raised once: a warning,
//!            lapor_federation_alerts_raised_total{kind="sla_breaches"},
//!            lapor_sla_escalations_total{level="hub",step="any"})
//! ```
//!
//! The hub holds every event's public part, so it counts every node's breaches by their
//! signer: a breach is the handling node's (only the handler records one), whichever province
//! filed the report. The hub's own breaches (national agencies) are not escalated to itself.

use diesel::prelude::*;

use super::alerts::Alert;
use crate::config::HubSettings;
use crate::db::DbConn;
use crate::db::schema::events;
use crate::domain::Timestamp;
use crate::domain::escalation::repeated;

/// The alert kind.
pub const KIND: &str = "sla_breaches";

const DAY_MS: i64 = 86_400_000;

/// The `sla_breaches` alerts that hold at `now` (`since_ms` = `now`; `alerts::sync` keeps the
/// first-seen time).
///
/// # Errors
///
/// The database could not be read.
pub fn breach_alerts(
    conn: &mut DbConn,
    me: &str,
    rule: &HubSettings,
    now: Timestamp,
) -> QueryResult<Vec<Alert>> {
    let from = now.millis() - i64::from(rule.escalate_window_days) * DAY_MS;
    // The kind as a literal, so the planner matches the partial index's predicate.
    let counts: Vec<(String, i64)> = events::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "kind = 'sla_breached'",
        ))
        .filter(events::at_ms.ge(from))
        .filter(events::origin.ne(me))
        .group_by(events::origin)
        .select((events::origin, diesel::dsl::count_star()))
        .order(events::origin.asc())
        .load(conn)?;
    Ok(counts
        .into_iter()
        .filter(|(_, n)| repeated(u64::try_from(*n).unwrap_or(0), rule.escalate_breaches))
        .map(|(node, n)| Alert {
            kind: KIND,
            node,
            detail: format!(
                "{n} SLA breaches in the last {} day(s) (threshold {})",
                rule.escalate_window_days, rule.escalate_breaches
            ),
            since_ms: now.millis(),
        })
        .collect())
}
