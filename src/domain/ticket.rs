//! The ticket lifecycle as a pure state machine. [`TicketState::apply`] is the one place that
//! decides whether a change is legal for the ticket's current status and for the actor's role
//! (and agency), and what the ticket looks like afterwards. A ticket's state is the fold of its
//! events through `apply`; the projection in the database is that fold, stored.
//!
//! ```text
//!  submitted ─verify─► verified ─dispatch─► dispatched ─start─► in_progress
//!     │  ▲ postpone/       │                   │   respond│  ▲ citizen reply
//!     │  └─ postponed ◄────┘                   └────┬─────▼  │
//!     │        (archive, not_our_authority,        responded ─resolve─► resolved
//!     │         dispatch from any pre-dispatch        │ auto-close        │ rating / auto-close
//!     ▼         status)                               ▼                   ▼
//!  archived      not_our_authority ─dispatch─►     closed ◄──────────── closed
//!                                     reopened ◄─citizen reopen (within window)─┘
//! ```

use serde::{Deserialize, Serialize};

use super::event::{Actor, ArchiveReason, Change, Created, Role, SlaStep};
use super::milestones::Milestones;
use super::{AgencyCode, NodeId, Timestamp};

/// Where a ticket is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Filed, not yet verified (*belum diverifikasi*).
    Submitted,
    /// Checked by a verifier.
    Verified,
    /// Sent to an agency.
    Dispatched,
    /// The agency is working on it.
    InProgress,
    /// The agency answered.
    Responded,
    /// The agency marked it resolved.
    Resolved,
    /// Closed (rated, or no reply in time).
    Closed,
    /// On hold (*tunda*).
    Postponed,
    /// Archived with a reason.
    Archived,
    /// Not our authority (*bukan wewenang*): waiting to be re-routed.
    NotOurAuthority,
    /// Reopened by the citizen.
    Reopened,
}

impl Status {
    /// Every status, for statistics and exhaustive tests.
    pub const ALL: [Self; 11] = [
        Self::Submitted,
        Self::Verified,
        Self::Dispatched,
        Self::InProgress,
        Self::Responded,
        Self::Resolved,
        Self::Closed,
        Self::Postponed,
        Self::Archived,
        Self::NotOurAuthority,
        Self::Reopened,
    ];

    /// What people may do next to a ticket in this status: `(action, who)` with the API's
    /// action names (the officers' `actions` and the citizens' follow-ups). The lifecycle
    /// table in the tests checks it against [`TicketState::apply`]. A closed ticket may be
    /// rated only if it closed without a rating, and reopened only within its window.
    #[must_use]
    pub const fn next_actions(self) -> &'static [(&'static str, Role)] {
        use Role::{Citizen as C, Liaison as L, Verifier as V};
        match self {
            Self::Submitted => &[
                ("verify", V),
                ("dispatch", V),
                ("postpone", V),
                ("archive", V),
                ("not_our_authority", V),
                ("reply", C),
            ],
            Self::Verified => &[
                ("dispatch", V),
                ("postpone", V),
                ("archive", V),
                ("not_our_authority", V),
                ("reply", C),
            ],
            Self::Postponed => &[
                ("verify", V),
                ("dispatch", V),
                ("archive", V),
                ("not_our_authority", V),
                ("reply", C),
            ],
            Self::NotOurAuthority => &[("dispatch", V), ("archive", V), ("reply", C)],
            Self::Dispatched => &[
                ("not_our_authority", V),
                ("start", L),
                ("respond", L),
                ("not_our_authority", L),
                ("reply", C),
            ],
            Self::InProgress => &[
                ("not_our_authority", V),
                ("respond", L),
                ("resolve", L),
                ("not_our_authority", L),
                ("reply", C),
            ],
            Self::Reopened => &[
                ("dispatch", V),
                ("not_our_authority", V),
                ("start", L),
                ("respond", L),
                ("resolve", L),
                ("not_our_authority", L),
                ("reply", C),
            ],
            Self::Responded => &[("resolve", L), ("reply", C)],
            Self::Resolved | Self::Closed => &[("rate", C), ("reopen", C)],
            Self::Archived => &[],
        }
    }

    /// [`Status::next_actions`] as text: `verify, dispatch (verifier); reply (citizen)`.
    #[must_use]
    pub fn next_actions_text(self) -> String {
        let mut by_role: Vec<(Role, Vec<&str>)> = Vec::new();
        for (action, role) in self.next_actions() {
            match by_role.iter_mut().find(|(r, _)| r == role) {
                Some((_, list)) => list.push(action),
                None => by_role.push((*role, vec![action])),
            }
        }
        if by_role.is_empty() {
            return "nothing (the ticket is final)".into();
        }
        by_role
            .iter()
            .map(|(role, list)| format!("{} ({})", list.join(", "), role.as_str()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The status's wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Verified => "verified",
            Self::Dispatched => "dispatched",
            Self::InProgress => "in_progress",
            Self::Responded => "responded",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Postponed => "postponed",
            Self::Archived => "archived",
            Self::NotOurAuthority => "not_our_authority",
            Self::Reopened => "reopened",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Before dispatch: the verifier's triage statuses.
    #[must_use]
    pub const fn is_triage(self) -> bool {
        matches!(
            self,
            Self::Submitted | Self::Verified | Self::Postponed | Self::NotOurAuthority
        )
    }

    /// Waiting for the agency.
    #[must_use]
    pub const fn awaits_agency(self) -> bool {
        matches!(self, Self::Dispatched | Self::InProgress | Self::Reopened)
    }

    /// Nothing more happens (apart from a reopen of a closed ticket).
    #[must_use]
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Closed | Self::Archived)
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The ticket does not exist yet (only `created` may start it) or already exists.
    #[error("{0}")]
    Existence(&'static str),
    /// The status does not allow this change.
    #[error("cannot {change} a ticket that is {status}")]
    IllegalStatus {
        /// The attempted change.
        change: &'static str,
        /// The ticket's status.
        status: &'static str,
    },
    /// The actor's role may not make this change.
    #[error("role {role:?} may not {change}")]
    Forbidden {
        /// The attempted change.
        change: &'static str,
        /// The actor's role.
        role: Role,
    },
    /// A liaison acted on a ticket of another agency.
    #[error("liaison of {actor} may not act on a ticket dispatched to {ticket}")]
    WrongAgency {
        /// The liaison's agency.
        actor: String,
        /// The ticket's agency.
        ticket: String,
    },
    /// A rule about values or time was broken.
    #[error("{0}")]
    Invalid(&'static str),
    /// The event's node has no authority for this change (invariant 4: status changes come
    /// from the ticket's current handling node, citizen events from its origin node).
    #[error("node {node} may not {change} this ticket: only {required} may")]
    Authority {
        /// The attempted change.
        change: &'static str,
        /// The node that wrote the event.
        node: String,
        /// The node that holds the authority.
        required: String,
    },
}

/// A ticket as the fold of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketState {
    /// The report as filed.
    pub report: Created,
    /// The node where the report was filed (owns citizen interaction).
    pub origin: NodeId,
    /// The node currently handling the ticket.
    pub handler: NodeId,
    /// Current status.
    pub status: Status,
    /// The agency it is dispatched to.
    pub agency: Option<AgencyCode>,
    /// Why it was archived.
    pub archive_reason: Option<ArchiveReason>,
    /// The citizen's rating.
    pub rating: Option<u8>,
    /// When it was filed.
    pub created_at: Timestamp,
    /// Time of the latest event.
    pub updated_at: Timestamp,
    /// Deadline for the agency's response, while one is awaited.
    pub response_due: Option<Timestamp>,
    /// When the ticket auto-closes, while it waits for the citizen.
    pub auto_close_due: Option<Timestamp>,
    /// Until when the citizen may reopen it.
    pub reopen_until: Option<Timestamp>,
    /// SLA breaches recorded, as [`SlaStep::bit`]s.
    pub breaches: u8,
    /// Number of events folded.
    pub events: u32,
    /// The reporter's personal data has been erased.
    #[serde(default)]
    pub erased: bool,
    /// When it was verified, dispatched, answered, resolved (statistics).
    #[serde(default)]
    pub milestones: Milestones,
}

fn illegal(change: &Change, status: Status) -> TransitionError {
    TransitionError::IllegalStatus {
        change: change.kind(),
        status: status.as_str(),
    }
}

fn require_role(change: &Change, actor: &Actor, roles: &[Role]) -> Result<(), TransitionError> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(TransitionError::Forbidden {
            change: change.kind(),
            role: actor.role,
        })
    }
}

impl TicketState {
    /// Starts a ticket from its `created` change.
    pub fn create(
        origin: &NodeId,
        actor: &Actor,
        change: &Change,
        at: Timestamp,
    ) -> Result<Self, TransitionError> {
        let Change::Created(report) = change else {
            return Err(TransitionError::Existence(
                "the first event of a ticket must be `created`",
            ));
        };
        require_role(change, actor, &[Role::Citizen, Role::Verifier])?;
        Ok(Self {
            report: (**report).clone(),
            origin: origin.clone(),
            handler: origin.clone(),
            status: Status::Submitted,
            agency: None,
            archive_reason: None,
            rating: None,
            created_at: at,
            updated_at: at,
            response_due: None,
            auto_close_due: None,
            reopen_until: None,
            breaches: 0,
            events: 1,
            erased: false,
            milestones: Milestones::default(),
        })
    }

    /// Applies one change, or says why it is not allowed. `self` is never modified on error.
    pub fn apply(
        &self,
        actor: &Actor,
        change: &Change,
        at: Timestamp,
    ) -> Result<Self, TransitionError> {
        use Status as S;
        let mut next = self.clone();
        next.updated_at = at.max(self.updated_at);
        next.events = self.events.saturating_add(1);
        let st = self.status;
        match change {
            Change::Created(_) => {
                return Err(TransitionError::Existence("the ticket already exists"));
            }
            Change::Verified {} => {
                require_role(change, actor, &[Role::Verifier])?;
                if !matches!(st, S::Submitted | S::Postponed) {
                    return Err(illegal(change, st));
                }
                next.status = S::Verified;
            }
            Change::Dispatched {
                agency,
                handler,
                response_due,
            } => {
                require_role(change, actor, &[Role::Verifier])?;
                if !(st.is_triage() || st == S::Reopened) {
                    return Err(illegal(change, st));
                }
                next.status = S::Dispatched;
                next.agency = Some(agency.clone());
                next.handler = handler.clone();
                next.response_due = Some(*response_due);
                next.auto_close_due = None;
            }
            Change::Postponed { .. } => {
                require_role(change, actor, &[Role::Verifier])?;
                if !matches!(st, S::Submitted | S::Verified) {
                    return Err(illegal(change, st));
                }
                next.status = S::Postponed;
            }
            Change::Archived { reason } => {
                require_role(change, actor, &[Role::Verifier])?;
                if !st.is_triage() {
                    return Err(illegal(change, st));
                }
                next.status = S::Archived;
                next.archive_reason = Some(*reason);
            }
            Change::NotOurAuthority { .. } => {
                // A verifier may say so during triage or after dispatch; the agency's liaison
                // may return a ticket dispatched to it. Either way it goes back to the origin's
                // verifiers for re-routing.
                require_role(change, actor, &[Role::Verifier, Role::Liaison])?;
                if actor.role == Role::Liaison {
                    self.require_liaison(change, actor)?;
                }
                let allowed = if actor.role == Role::Liaison {
                    st.awaits_agency()
                } else {
                    st.is_triage() && st != S::NotOurAuthority || st.awaits_agency()
                };
                if !allowed {
                    return Err(illegal(change, st));
                }
                next.status = S::NotOurAuthority;
                next.agency = None;
                next.handler = self.origin.clone();
                next.response_due = None;
            }
            Change::Started {} => {
                self.require_liaison(change, actor)?;
                if !matches!(st, S::Dispatched | S::Reopened) {
                    return Err(illegal(change, st));
                }
                next.status = S::InProgress;
            }
            Change::Responded { auto_close_due, .. } => {
                self.require_liaison(change, actor)?;
                if !st.awaits_agency() {
                    return Err(illegal(change, st));
                }
                next.status = S::Responded;
                next.response_due = None;
                next.auto_close_due = Some(*auto_close_due);
            }
            Change::Resolved {
                auto_close_due,
                reopen_until,
                ..
            } => {
                self.require_liaison(change, actor)?;
                if !matches!(st, S::InProgress | S::Responded | S::Reopened) {
                    return Err(illegal(change, st));
                }
                next.status = S::Resolved;
                next.response_due = None;
                next.auto_close_due = Some(*auto_close_due);
                next.reopen_until = Some(*reopen_until);
            }
            Change::CitizenReplied { response_due, .. } => {
                require_role(change, actor, &[Role::Citizen])?;
                if matches!(st, S::Archived | S::Closed | S::Resolved) {
                    return Err(illegal(change, st));
                }
                if st == S::Responded {
                    let Some(due) = response_due else {
                        return Err(TransitionError::Invalid(
                            "a reply to a response must carry the agency's new deadline",
                        ));
                    };
                    next.status = S::InProgress;
                    next.response_due = Some(*due);
                    next.auto_close_due = None;
                }
            }
            Change::Rated { rating } => {
                require_role(change, actor, &[Role::Citizen])?;
                if !(1..=5).contains(rating) {
                    return Err(TransitionError::Invalid("rating must be between 1 and 5"));
                }
                if !matches!(st, S::Resolved | S::Closed) {
                    return Err(illegal(change, st));
                }
                if self.rating.is_some() {
                    return Err(TransitionError::Invalid("the report is already rated"));
                }
                next.rating = Some(*rating);
                next.status = S::Closed;
                next.auto_close_due = None;
            }
            Change::Reopened { response_due, .. } => {
                require_role(change, actor, &[Role::Citizen])?;
                if !matches!(st, S::Resolved | S::Closed) || self.agency.is_none() {
                    return Err(illegal(change, st));
                }
                if self.reopen_until.is_none_or(|until| at > until) {
                    return Err(TransitionError::Invalid("the reopen window has passed"));
                }
                next.status = S::Reopened;
                // The earlier rating judged the earlier outcome; the next one rates the new one.
                next.rating = None;
                next.response_due = Some(*response_due);
                next.auto_close_due = None;
                next.reopen_until = None;
            }
            Change::Closed { .. } => {
                require_role(change, actor, &[Role::System])?;
                if !matches!(st, S::Responded | S::Resolved) {
                    return Err(illegal(change, st));
                }
                if self.auto_close_due.is_none_or(|due| at < due) {
                    return Err(TransitionError::Invalid("the auto-close time has not come"));
                }
                next.status = S::Closed;
                next.auto_close_due = None;
            }
            Change::Erased {} => {
                require_role(change, actor, &[Role::Admin, Role::System])?;
                if self.erased {
                    return Err(TransitionError::Invalid(
                        "the personal data is already erased",
                    ));
                }
                next.erased = true;
            }
            Change::SlaBreached { step } => {
                require_role(change, actor, &[Role::System])?;
                if self.breaches & step.bit() != 0 {
                    return Err(TransitionError::Invalid("this breach is already recorded"));
                }
                if self.breach_due(*step).is_none_or(|due| at < due) {
                    return Err(TransitionError::Invalid("the deadline has not passed"));
                }
                next.breaches |= step.bit();
            }
        }
        next.milestones.note(self, change, at);
        Ok(next)
    }

    /// Applies a change written by node `origin`, first checking that node's authority:
    /// citizen events and erasure only from the ticket's origin node, every other change only
    /// from its current handling node. The fold uses this for every event, whoever relayed it.
    pub fn apply_from(
        &self,
        origin: &NodeId,
        actor: &Actor,
        change: &Change,
        at: Timestamp,
    ) -> Result<Self, TransitionError> {
        // Citizen events and erasure belong to the origin node (it holds the personal data);
        // everything else to the handling node.
        let at_origin = actor.role == Role::Citizen || matches!(change, Change::Erased {});
        let required = if at_origin {
            &self.origin
        } else {
            &self.handler
        };
        if origin != required {
            return Err(TransitionError::Authority {
                change: change.kind(),
                node: origin.to_string(),
                required: required.to_string(),
            });
        }
        self.apply(actor, change, at)
    }

    /// The deadline of an SLA step while that step is running, `None` when it is not.
    #[must_use]
    pub fn breach_due(&self, step: SlaStep) -> Option<Timestamp> {
        match step {
            SlaStep::VerifyDispatch => self.status.is_triage().then_some(self.report.verify_due),
            SlaStep::Response => self.response_due.filter(|_| self.status.awaits_agency()),
            SlaStep::Overall => (!self.status.is_final() && self.status != Status::Resolved)
                .then_some(self.report.overall_due),
        }
    }

    /// The earliest time the SLA sweep has something to do for this ticket: the deadline of a
    /// running step whose breach is not recorded yet, or the auto-close time; `None` when
    /// nothing is pending (the ticket is closed or archived, or every running step's breach is
    /// recorded and no auto-close is set).
    #[must_use]
    pub fn next_due(&self) -> Option<Timestamp> {
        if self.status.is_final() {
            return None;
        }
        [SlaStep::VerifyDispatch, SlaStep::Response, SlaStep::Overall]
            .into_iter()
            .filter(|step| self.breaches & step.bit() == 0)
            .filter_map(|step| self.breach_due(step))
            .chain(self.auto_close_due)
            .min()
    }

    fn require_liaison(&self, change: &Change, actor: &Actor) -> Result<(), TransitionError> {
        require_role(change, actor, &[Role::Liaison])?;
        match (&actor.agency, &self.agency) {
            (Some(a), Some(t)) if a == t => Ok(()),
            (a, t) => Err(TransitionError::WrongAgency {
                actor: a
                    .as_ref()
                    .map_or_else(|| "no agency".to_owned(), ToString::to_string),
                ticket: t
                    .as_ref()
                    .map_or_else(|| "no agency".to_owned(), ToString::to_string),
            }),
        }
    }
}
