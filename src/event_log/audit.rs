//! `lapor-node audit verify`: re-verifies every stored event — strict JSON, id, signature with
//! the key valid at the event's time, the stored columns against the signed content, each
//! origin's chain (`seq` without gaps, `prev` = the previous id, no two events at one place) —
//! and folds every ticket, reporting events the lifecycle rules refuse. Faults name the event.

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::keys::{self, KeysError};
use super::model::EventRow;
use super::store::{self as log, LogError};
use crate::crypto::signing;
use crate::db::DbConn;
use crate::db::schema::events;
use crate::domain::{TicketId, fold};

/// One fault found by the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The event (id, or `origin#seq` when the id itself is in doubt).
    pub event: String,
    /// What is wrong.
    pub reason: String,
}

/// What the audit saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events checked.
    pub events: u64,
    /// Events whose signature verified.
    pub verified: u64,
    /// Origins (chains) seen.
    pub origins: u64,
    /// Tickets folded.
    pub tickets: u64,
    /// Every fault.
    pub faults: Vec<Fault>,
}

/// Audit failure (not a finding: the audit could not run).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Keys could not be read.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Query failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

const PAGE: i64 = 1000;

/// Runs the audit over the whole log.
#[tracing::instrument(name = "event_log.audit", skip_all)]
pub fn run(conn: &mut DbConn) -> Result<Report, AuditError> {
    let keyring = keys::keyring(conn)?;
    let mut report = Report::default();
    let mut cursor: Option<(String, i64)> = None;
    let mut last: Option<(String, i64, String)> = None;
    let mut tickets = BTreeSet::new();
    loop {
        let mut q = events::table.select(EventRow::as_select()).into_boxed();
        if let Some((o, s)) = &cursor {
            q = q.filter(
                events::origin
                    .gt(o.clone())
                    .or(events::origin.eq(o.clone()).and(events::seq.gt(*s))),
            );
        }
        let rows: Vec<EventRow> = q
            .order((events::origin.asc(), events::seq.asc()))
            .limit(PAGE)
            .load(conn)?;
        let Some(tail) = rows.last() else { break };
        cursor = Some((tail.origin.clone(), tail.seq));
        for row in rows {
            report.events += 1;
            tickets.insert(row.ticket.clone());
            let mut fault = |reason: String| {
                report.faults.push(Fault {
                    event: row.id.clone(),
                    reason,
                });
            };
            match signing::verify(row.raw.as_bytes(), &keyring) {
                Ok(e) => {
                    report.verified += 1;
                    let columns_match = e.id.as_str() == row.id
                        && e.origin.as_str() == row.origin
                        && i64::try_from(e.seq).ok() == Some(row.seq)
                        && e.ticket.to_string() == row.ticket
                        && e.change.kind() == row.kind;
                    if !columns_match {
                        fault("stored columns do not match the signed event".into());
                    }
                }
                Err(e) => fault(e.to_string()),
            }
            // Chain continuity within the origin.
            match &last {
                Some((origin, seq, id)) if *origin == row.origin => {
                    if row.seq != seq.saturating_add(1) {
                        fault(format!(
                            "seq gap in {}'s chain: {} follows {}",
                            row.origin, row.seq, seq
                        ));
                    } else if row.prev.as_deref() != Some(id.as_str()) {
                        fault(format!(
                            "broken chain: prev does not name event {id} ({}#{seq})",
                            row.origin
                        ));
                    }
                }
                _ => {
                    report.origins += 1;
                    if row.seq != 1 {
                        fault(format!(
                            "{}'s chain starts at seq {} (events before it are missing)",
                            row.origin, row.seq
                        ));
                    } else if row.prev.is_some() {
                        fault("the first event of a chain has a prev".into());
                    }
                }
            }
            last = Some((row.origin.clone(), row.seq, row.id.clone()));
        }
    }
    for t in tickets {
        report.tickets += 1;
        let Ok(id) = TicketId::parse(&t) else {
            report.faults.push(Fault {
                event: t.clone(),
                reason: "ticket id is not a UUIDv7".into(),
            });
            continue;
        };
        let decoded: Vec<_> = log::for_ticket(conn, &id)?
            .iter()
            .filter_map(|r| log::decode(r).ok())
            .collect();
        for (event, why) in fold::fold(&decoded).rejected {
            report.faults.push(Fault {
                event: event.to_string(),
                reason: format!("refused by the lifecycle: {why}"),
            });
        }
    }
    Ok(report)
}
