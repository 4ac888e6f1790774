//! What happened when in a ticket's life: the facts statistics need that the status forgets —
//! when the ticket was first verified, dispatched, answered and resolved, whether the first
//! answer came within its deadline, and each dispatch with its handler, the handler's first
//! action and whether the ticket came back as "not our authority".
//!
//! [`Milestones::note`] is called by `TicketState::apply` for every change it allows, so the
//! milestones are part of the folded state: the same set of events gives the same milestones
//! in whatever order they arrived (the fold's order is a function of the set), which is what
//! makes the national statistics (`hub`) order-independent by construction.

use serde::{Deserialize, Serialize};

use super::event::Change;
use super::ticket::TicketState;
use super::{AgencyCode, NodeId, Timestamp};

/// Dispatches remembered per ticket; later ones are not recorded (a ticket is re-routed a few
/// times at most; the bound keeps a hostile stream of re-dispatches from growing the state).
pub const MAX_DISPATCHES: usize = 16;

/// A ticket's milestones (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Milestones {
    /// First verification (an explicit `verified`, or a dispatch, which verifies implicitly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Timestamp>,
    /// First dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_at: Option<Timestamp>,
    /// The agency's first answer (`responded`, or `resolved` without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<Timestamp>,
    /// Whether that first answer came by the response deadline running then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_on_time: Option<bool>,
    /// First `resolved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Each dispatch, oldest first (at most [`MAX_DISPATCHES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dispatches: Vec<Dispatch>,
}

/// One dispatch of a ticket to a handling node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    /// The node that handles it from then on.
    pub handler: NodeId,
    /// The agency it went to.
    pub agency: AgencyCode,
    /// When.
    pub at: Timestamp,
    /// The handler's first action after it (start, answer, resolve or return).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_action: Option<Timestamp>,
    /// The handler sent it back as "not our authority".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub returned: bool,
}

impl Milestones {
    /// Notes `change`, which `apply` has just allowed on `before` at `at`.
    pub fn note(&mut self, before: &TicketState, change: &Change, at: Timestamp) {
        match change {
            Change::Verified {} => {
                self.verified_at.get_or_insert(at);
            }
            Change::Dispatched {
                agency, handler, ..
            } => {
                self.verified_at.get_or_insert(at);
                self.dispatched_at.get_or_insert(at);
                if self.dispatches.len() < MAX_DISPATCHES {
                    self.dispatches.push(Dispatch {
                        handler: handler.clone(),
                        agency: agency.clone(),
                        at,
                        first_action: None,
                        returned: false,
                    });
                }
            }
            Change::NotOurAuthority { .. } if before.status.awaits_agency() => {
                if let Some(d) = self.open_dispatch() {
                    d.first_action.get_or_insert(at);
                    d.returned = true;
                }
            }
            Change::Started {} => self.acted(at),
            Change::Responded { .. } | Change::Resolved { .. } => {
                self.acted(at);
                if self.responded_at.is_none() {
                    self.responded_at = Some(at);
                    self.responded_on_time = Some(before.response_due.is_none_or(|d| at <= d));
                }
                if matches!(change, Change::Resolved { .. }) {
                    self.resolved_at.get_or_insert(at);
                }
            }
            _ => {}
        }
    }

    fn acted(&mut self, at: Timestamp) {
        if let Some(d) = self.open_dispatch() {
            d.first_action.get_or_insert(at);
        }
    }

    /// The latest dispatch, unless the ticket came back from it.
    fn open_dispatch(&mut self) -> Option<&mut Dispatch> {
        self.dispatches.last_mut().filter(|d| !d.returned)
    }
}
