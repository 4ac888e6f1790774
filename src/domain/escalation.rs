//! SLA escalation: which breach tells which supervising level (decisions 103–105). One rule,
//! used where a breach is recorded (the SLA sweep) and where the rows are derived again from
//! the log (`rebuild`).
//!
//! - A breach of a step the agency owns — its response, or the completion cap while the
//!   agency holds the ticket — escalates to the verifiers of the node that handles the ticket
//!   (the node that owns the agency and records the breach). A breach of verification and
//!   dispatch is the verifiers' own and escalates to nobody here.
//! - A node's repeated breaches escalate to the hub ([`repeated`]).

use super::event::{Change, Event, SlaStep};
use super::fold;
use super::{AgencyCode, EventId, NodeId, TicketState, Timestamp};

/// An escalation to the handling node's verifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The agency that missed the deadline.
    pub agency: AgencyCode,
    /// The step.
    pub step: SlaStep,
    /// The deadline it missed.
    pub due: Timestamp,
}

/// The escalation a breach of `step` raises when it is recorded on a ticket in state `before`:
/// `Some` for a step the agency owns while the agency holds the ticket, `None` otherwise.
#[must_use]
pub fn to_verifiers(before: &TicketState, step: SlaStep) -> Option<Escalation> {
    if step == SlaStep::VerifyDispatch || !before.status.awaits_agency() {
        return None;
    }
    Some(Escalation {
        agency: before.agency.clone()?,
        step,
        due: before.breach_due(step)?,
    })
}

/// Every escalation the breaches that node `me` recorded on one ticket raise (`events` are
/// the ticket's events, folded in the usual order): the breach event's id, when it was
/// recorded, and the escalation. Breaches recorded by another node (a forwarded ticket's
/// handler) escalate there, not here.
#[must_use]
pub fn of_events(events: &[Event], me: &NodeId) -> Vec<(EventId, Timestamp, Escalation)> {
    let mut out = Vec::new();
    fold::fold_visit(events, |before, e| {
        if let (Some(before), Change::SlaBreached { step }) = (before, &e.change) {
            if &e.origin == me {
                if let Some(x) = to_verifiers(before, *step) {
                    out.push((e.id.clone(), e.at, x));
                }
            }
        }
    });
    out
}

/// The hub's rule for a node's repeated breaches: `breaches` recorded by a node within the
/// window reach `threshold`.
#[must_use]
pub const fn repeated(breaches: u64, threshold: u32) -> bool {
    threshold > 0 && breaches >= threshold as u64
}
