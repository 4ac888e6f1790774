//! Alerts on the federation's health, raised at the hub from the per-node view
//! (`hub::health::nodes`): an equivocation or a gap in a node's chain, a node silent for
//! longer than `federation.alert_silent_secs`, a clock off by more than
//! `federation.alert_skew_secs`; and, from `hub::escalation`, a node's repeated SLA breaches.
//!
//! ```text
//!  health::nodes ──► current (pure) ──► sync (table federation_alerts, one transaction)
//!                                          │ new ones: a warning each, once, and
//!                                          ▼ lapor_federation_alerts_raised_total{kind}
//!  GET /api/v1/hub/federation, `federation status`, /nasional, lapor_federation_alerts{kind}
//! ```
//!
//! The table holds one row per (kind, node) while the condition holds, so an alert is logged
//! once however often the view is read and by however many hub processes; a condition that
//! clears and comes back is a new alert.

use diesel::prelude::*;

use super::health::{Audit, NodeHealth};
use crate::db::schema::federation_alerts;
use crate::db::{Db, DbConn, DbError};
use crate::domain::Timestamp;

/// Every kind of alert, as the metric's `kind` label.
pub const KINDS: [&str; 5] = ["equivocation", "gap", "silent", "skew", "sla_breaches"];

/// The thresholds of the time-based alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A node not heard from for longer than this (ms) is silent.
    pub silent_ms: i64,
    /// A clock off by more than this (ms) is skewed.
    pub skew_ms: i64,
}

/// An alert on one node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// `equivocation`, `gap`, `silent`, `skew` or `sla_breaches` (`hub::escalation`).
    pub kind: &'static str,
    /// The node it is about.
    pub node: String,
    /// What holds (event ids, counts, times).
    pub detail: String,
    /// Since when it holds (ms; the first time it was seen).
    pub since_ms: i64,
}

/// The alerts the view shows now (pure; `since_ms` = `now`). `me` (the hub) is never silent or
/// skewed.
#[must_use]
pub fn current(nodes: &[NodeHealth], me: &str, t: Thresholds, now: Timestamp) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut add = |kind, node: &str, detail: String| {
        out.push(Alert {
            kind,
            node: node.to_owned(),
            detail,
            since_ms: now.millis(),
        });
    };
    for n in nodes {
        match &n.audit {
            Audit::Equivocation { events } => add(
                "equivocation",
                &n.node,
                format!("refused events: {}", events.join(", ")),
            ),
            Audit::Gap { missing } => add(
                "gap",
                &n.node,
                format!("{missing} event(s) missing below seq {}", n.head_held),
            ),
            Audit::Ok | Audit::Partial { .. } => {}
        }
        if n.node == me || n.role == "unknown" {
            continue;
        }
        match n.last_contact_ms {
            None => add("silent", &n.node, "never heard from".into()),
            Some(at) if now.millis() - at > t.silent_ms => add(
                "silent",
                &n.node,
                format!("not heard from for {} s", (now.millis() - at) / 1000),
            ),
            Some(_) => {}
        }
        if let Some(skew) = n.clock_skew_ms.filter(|s| s.abs() > t.skew_ms) {
            add("skew", &n.node, format!("clock off by {} ms", skew));
        }
    }
    out
}

/// Makes the table hold exactly `now` (their first-seen time kept): returns every alert that
/// holds, and those new since the last sync.
///
/// # Errors
///
/// The database could not be written.
pub fn sync(db: &Db, now: Vec<Alert>) -> Result<(Vec<Alert>, Vec<Alert>), DbError> {
    db.write(move |c| {
        let held: Vec<(String, String, i64)> = federation_alerts::table
            .select((
                federation_alerts::kind,
                federation_alerts::node_id,
                federation_alerts::since_ms,
            ))
            .load(c)?;
        for (kind, node, _) in &held {
            if !now.iter().any(|a| a.kind == kind && &a.node == node) {
                diesel::delete(federation_alerts::table.find((kind, node))).execute(c)?;
            }
        }
        let (mut all, mut new) = (Vec::new(), Vec::new());
        for mut a in now {
            let found = held.iter().find(|(k, n, _)| k == a.kind && n == &a.node);
            if let Some((_, _, since)) = found {
                a.since_ms = *since;
                diesel::update(federation_alerts::table.find((a.kind, &a.node)))
                    .set(federation_alerts::detail.eq(&a.detail))
                    .execute(c)?;
            } else {
                diesel::insert_into(federation_alerts::table)
                    .values((
                        federation_alerts::kind.eq(a.kind),
                        federation_alerts::node_id.eq(&a.node),
                        federation_alerts::detail.eq(&a.detail),
                        federation_alerts::since_ms.eq(a.since_ms),
                    ))
                    .execute(c)?;
                new.push(a.clone());
            }
            all.push(a);
        }
        Ok::<_, DbError>((all, new))
    })
}

/// `now` with the first-seen times the table holds (read only: for a command run beside the
/// node, which leaves raising to it).
///
/// # Errors
///
/// The database could not be read.
pub fn with_since(conn: &mut DbConn, mut now: Vec<Alert>) -> QueryResult<Vec<Alert>> {
    let held: Vec<(String, String, i64)> = federation_alerts::table
        .select((
            federation_alerts::kind,
            federation_alerts::node_id,
            federation_alerts::since_ms,
        ))
        .load(conn)?;
    for a in &mut now {
        if let Some((_, _, since)) = held.iter().find(|(k, n, _)| k == a.kind && n == &a.node) {
            a.since_ms = *since;
        }
    }
    Ok(now)
}

/// Logs each new alert once (a warning) and counts it
/// (`lapor_federation_alerts_raised_total{kind}`; gaps and equivocations also in
/// `lapor_federation_chain_alerts_total{kind}`).
pub fn announce(metrics: &crate::metrics::Metrics, new: &[Alert]) {
    for a in new {
        tracing::warn!(kind = a.kind, node = %a.node, detail = %a.detail, "federation alert");
        metrics.inc(
            "lapor_federation_alerts_raised_total",
            &[("kind", a.kind)],
            1,
        );
        if a.kind == super::escalation::KIND {
            metrics.inc(
                "lapor_sla_escalations_total",
                &[("level", "hub"), ("step", "any")],
                1,
            );
        }
        if matches!(a.kind, "gap" | "equivocation") {
            metrics.inc(
                "lapor_federation_chain_alerts_total",
                &[("kind", a.kind)],
                1,
            );
        }
    }
}

/// Alerts holding now, by kind (for the `lapor_federation_alerts{kind}` gauge).
///
/// # Errors
///
/// The database could not be read.
pub fn counts(conn: &mut DbConn) -> QueryResult<Vec<(&'static str, i64)>> {
    let rows: Vec<(String, i64)> = federation_alerts::table
        .group_by(federation_alerts::kind)
        .select((federation_alerts::kind, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(KINDS
        .iter()
        .map(|k| (*k, rows.iter().find(|(r, _)| r == k).map_or(0, |(_, n)| *n)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, contact: Option<i64>, skew: Option<i64>, audit: Audit) -> NodeHealth {
        NodeHealth {
            node: name.into(),
            role: "province",
            last_contact_ms: contact,
            status_received_ms: contact,
            version: None,
            clock_skew_ms: skew,
            head_reported: None,
            head_event_reported: None,
            head_held: 4,
            events_held: 3,
            missing_at_hub: None,
            quarantined: None,
            outbox: Vec::new(),
            cursors: Vec::new(),
            audit,
        }
    }

    #[test]
    fn silence_skew_gaps_and_equivocations_raise_alerts_and_the_hub_itself_is_never_silent() {
        let now = Timestamp::from_millis(10_000_000);
        let t = Thresholds {
            silent_ms: 60_000,
            skew_ms: 5_000,
        };
        let nodes = [
            node("fresh", Some(9_990_000), Some(4_999), Audit::Ok),
            node(
                "quiet",
                Some(9_000_000),
                Some(-5_001),
                Audit::Gap { missing: 1 },
            ),
            node("never", None, None, Audit::Ok),
            node(
                "hub",
                None,
                None,
                Audit::Equivocation {
                    events: vec!["e1".into(), "e2".into()],
                },
            ),
        ];
        let got: Vec<(&str, String, String)> = current(&nodes, "hub", t, now)
            .into_iter()
            .map(|a| (a.kind, a.node, a.detail))
            .collect();
        let want = [
            ("gap", "quiet", "1 event(s) missing below seq 4"),
            ("silent", "quiet", "not heard from for 1000 s"),
            ("skew", "quiet", "clock off by -5001 ms"),
            ("silent", "never", "never heard from"),
            ("equivocation", "hub", "refused events: e1, e2"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(k, n, d)| (*k, (*n).to_owned(), (*d).to_owned()))
                .collect::<Vec<_>>()
        );
    }
}
