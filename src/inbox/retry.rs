//! `lapor-node quarantine retry`: quarantined events judged again once their cause is fixed
//! (a peer's new signing key pinned, a missing agency added, the database repaired).
//!
//! Only events kept whole can be retried (a sender over the quarantine's bounds leaves a
//! digest only). A retried `created` event comes without its personal-data part, which is
//! never quarantined: the sender's `peers resend` delivers the event with it instead.

use std::collections::HashMap;

use serde_json::Value;

use super::{Inbox, InboxError, Outcome, store};
use crate::domain::{NodeId, Timestamp};

/// Quarantined events read per round.
const PAGE: i64 = 200;

/// What a retry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retried {
    /// Quarantined events judged again.
    pub tried: usize,
    /// Now stored (or found already held): gone from the quarantine.
    pub stored: usize,
    /// Still not judged (e.g. their parents are missing): kept as they were.
    pub deferred: usize,
    /// Refused again, by reason (the quarantine keeps them, with that reason).
    pub refused: Vec<(String, usize)>,
}

impl Inbox {
    /// Judges again every quarantined event kept whole — from `sender`, or from every sender
    /// — that was quarantined before this call, as if `sender` had just sent it.
    pub fn retry_quarantine(
        &self,
        sender: Option<&NodeId>,
        now: Timestamp,
    ) -> Result<Retried, InboxError> {
        let last: Option<i64> = {
            let mut conn = self.db.read()?;
            store::kept_raw(&mut conn, sender.map(NodeId::as_str), 0, i64::MAX)?
                .last()
                .map(|r| r.id)
        };
        let Some(last) = last else {
            return Ok(Retried::default());
        };
        let mut done = Retried::default();
        let mut refused: HashMap<String, usize> = HashMap::new();
        let mut after = 0;
        loop {
            let rows: Vec<store::KeptRaw> = {
                let mut conn = self.db.read()?;
                store::kept_raw(&mut conn, sender.map(NodeId::as_str), after, PAGE)?
            };
            let rows: Vec<store::KeptRaw> = rows.into_iter().filter(|r| r.id <= last).collect();
            let Some(end) = rows.last().map(|r| r.id) else {
                break;
            };
            after = end;
            let mut by_sender: Vec<(String, Vec<store::KeptRaw>)> = Vec::new();
            for r in rows {
                match by_sender.iter_mut().find(|(s, _)| *s == r.received_from) {
                    Some((_, group)) => group.push(r),
                    None => by_sender.push((r.received_from.clone(), vec![r])),
                }
            }
            for (from, group) in by_sender {
                let Ok(from) = NodeId::parse(&from) else {
                    continue;
                };
                self.retry_group(&from, group, now, &mut done, &mut refused)?;
            }
        }
        let mut refused: Vec<(String, usize)> = refused.into_iter().collect();
        refused.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        done.refused = refused;
        Ok(done)
    }

    fn retry_group(
        &self,
        from: &NodeId,
        group: Vec<store::KeptRaw>,
        now: Timestamp,
        done: &mut Retried,
        refused: &mut HashMap<String, usize>,
    ) -> Result<(), InboxError> {
        let (rows, values): (Vec<store::KeptRaw>, Vec<Value>) = group
            .into_iter()
            .filter_map(|r| {
                let v = serde_json::from_str::<Value>(&r.raw).ok()?;
                Some((r, v))
            })
            .unzip();
        if rows.is_empty() {
            return Ok(());
        }
        done.tried += rows.len();
        let outcomes = self.receive(from, values, Vec::new(), now)?;
        let by_id: HashMap<&str, &Outcome> = outcomes.iter().map(|o| (o.id(), o)).collect();
        let mut forget = Vec::new();
        for r in &rows {
            match by_id.get(r.event_id.as_deref().unwrap_or_default()) {
                Some(o) if o.acknowledged() => {
                    done.stored += 1;
                    forget.push(r.id);
                }
                Some(Outcome::Rejected { reason, .. }) => {
                    *refused.entry(reason.clone()).or_default() += 1;
                    // Refused for another reason: that refusal is quarantined now; the old
                    // one no longer holds.
                    if *reason != r.reason {
                        forget.push(r.id);
                    }
                }
                _ => done.deferred += 1,
            }
        }
        if !forget.is_empty() {
            self.db
                .write(move |c| Ok::<_, InboxError>(store::delete(c, &forget)?))?;
        }
        Ok(())
    }
}
