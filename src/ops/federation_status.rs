//! `lapor-node federation status`: the table `GET /api/v1/hub/federation` serves
//! (`hub::watch`) — at the hub every member node (contact, version, clock skew, head reported
//! vs held, quarantine, audit) and the outbox matrix, the alerts that hold, then every origin's
//! chain as held here and each peer's link (as `peers` prints it).

use crate::config::Settings;
use crate::db::Db;
use crate::domain::Timestamp;
use crate::hub::health::Audit;
use crate::hub::watch::{self, Health, Scope};

/// The lines to print (the alerts as they hold now; raising and logging them is the running
/// hub's part).
///
/// # Errors
///
/// The database could not be read.
pub fn run(settings: &Settings, db: &Db) -> anyhow::Result<Vec<String>> {
    let now = Timestamp::now();
    let health = watch::read(db, &Scope::of(settings, db), None, now)?;
    Ok(table(&health, now))
}

fn audit(a: &Audit) -> String {
    match a {
        Audit::Ok => "ok".to_owned(),
        Audit::Gap { missing } => format!("GAP: {missing} event(s) missing below the head"),
        Audit::Partial { missing } => {
            format!("partial ({missing} not held here: tickets this node does not take part in)")
        }
        Audit::Equivocation { events } => format!("EQUIVOCATION: refused {}", events.join(", ")),
    }
}

fn ago(now: Timestamp, ms: Option<i64>) -> String {
    ms.map_or_else(
        || "never".to_owned(),
        |t| format!("{} s ago", ((now.millis() - t) / 1000).max(0)),
    )
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The health as lines of text.
#[must_use]
pub fn table(h: &Health, now: Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    if !h.nodes.is_empty() {
        out.push(format!(
            "{:<28} {:<8} {:<12} {:<9} {:>9} {:>10} {:>5} {:>8} {:>10}  audit",
            "node",
            "role",
            "contact",
            "version",
            "skew ms",
            "head rep.",
            "held",
            "missing",
            "quarantine"
        ));
        for n in &h.nodes {
            out.push(format!(
                "{:<28} {:<8} {:<12} {:<9} {:>9} {:>10} {:>5} {:>8} {:>10}  {}",
                n.node,
                n.role,
                ago(now, n.last_contact_ms),
                n.version.as_deref().unwrap_or("-"),
                opt(n.clock_skew_ms),
                opt(n.head_reported),
                n.head_held,
                opt(n.missing_at_hub),
                opt(n.quarantined),
                audit(&n.audit),
            ));
        }
        out.push(String::new());
        out.push("outbox matrix (node → peer: events waiting, oldest age):".into());
        for n in &h.nodes {
            if n.outbox.is_empty() {
                out.push(format!("  {:<28} (no status yet)", n.node));
                continue;
            }
            let cells: Vec<String> = n
                .outbox
                .iter()
                .map(|o| match o.oldest_age_ms {
                    Some(a) => format!("{} {} ({} s)", o.peer, o.depth, a / 1000),
                    None => format!("{} {}", o.peer, o.depth),
                })
                .collect();
            out.push(format!("  {:<28} → {}", n.node, cells.join(", ")));
        }
        out.push(String::new());
        if h.alerts.is_empty() {
            out.push("alerts: none".into());
        } else {
            out.push("alerts:".into());
            for a in &h.alerts {
                out.push(format!(
                    "  ALERT {} {}: {} (since {})",
                    a.kind.to_uppercase(),
                    a.node,
                    a.detail,
                    Timestamp::from_millis(a.since_ms)
                ));
            }
        }
        out.push(String::new());
    }
    out.push(format!(
        "{:<28} {:>10} {:>10}  audit",
        "chain of", "head held", "held"
    ));
    for c in &h.chains {
        out.push(format!(
            "{:<28} {:>10} {:>10}  {}",
            c.origin,
            c.head_held,
            c.events_held,
            audit(&c.audit)
        ));
    }
    if h.chains.is_empty() {
        out.push("(no events held yet)".into());
    }
    if !h.peers.is_empty() {
        out.push(String::new());
        out.extend(super::federation::table(&h.peers));
    }
    out
}
