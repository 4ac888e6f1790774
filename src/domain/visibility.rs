//! What each audience sees of a ticket's events: the one rule every channel's timeline uses
//! (API, web console, SMS). The reporter's identity has its own rule,
//! [`super::report::may_see_reporter`]; no timeline ever carries it.

use super::{AgencyCode, Change, Event};

/// Who reads a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone, by tracking code.
    Public,
    /// The reporter (follow-up token presented).
    Citizen,
    /// An officer of this node.
    Officer,
}

/// What of one event an audience sees besides its kind, its time and the actor's role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shown<'a> {
    /// The step's text: responses and resolutions for everyone, the citizen's replies and
    /// reopen reasons for the citizen and officers, officers' notes (postpone, not our
    /// authority) for officers only.
    pub message: Option<&'a str>,
    /// The agency a dispatch named (everyone).
    pub agency: Option<&'a AgencyCode>,
    /// The officer's account name (officers only).
    pub officer: Option<&'a str>,
}

/// What `audience` sees of `event`.
#[must_use]
pub fn shown(event: &Event, audience: Audience) -> Shown<'_> {
    let (message, agency) = match &event.change {
        Change::Responded { message, .. } | Change::Resolved { message, .. } => {
            (Some(message.as_str()), None)
        }
        Change::CitizenReplied { message, .. } | Change::Reopened { message, .. }
            if audience != Audience::Public =>
        {
            (Some(message.as_str()), None)
        }
        Change::Postponed { note } | Change::NotOurAuthority { note }
            if audience == Audience::Officer =>
        {
            (Some(note.as_str()), None)
        }
        Change::Dispatched { agency, .. } => (None, Some(agency)),
        _ => (None, None),
    };
    Shown {
        message,
        agency,
        officer: event
            .actor
            .officer
            .as_deref()
            .filter(|_| audience == Audience::Officer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, EventId, NodeId, Role, TicketId, Timestamp};

    fn event(change: Change, actor: Actor) -> Event {
        Event {
            id: EventId::parse(&"a".repeat(64)).unwrap(),
            origin: NodeId::parse("prov-31.lapor.test").unwrap(),
            seq: 1,
            prev: None,
            ticket: TicketId::new(),
            parents: vec![],
            at: Timestamp::from_millis(0),
            actor,
            change,
            pii: None,
        }
    }

    fn officer() -> Actor {
        Actor {
            role: Role::Verifier,
            officer: Some("verif1".into()),
            agency: None,
        }
    }

    const ALL: [Audience; 3] = [Audience::Public, Audience::Citizen, Audience::Officer];

    #[test]
    fn notes_and_names_for_officers_replies_for_the_citizen_too_responses_for_all() {
        let note = event(Change::Postponed { note: "cek".into() }, officer());
        let reply = event(
            Change::CitizenReplied {
                message: "foto".into(),
                response_due: None,
            },
            Actor::citizen(),
        );
        let response = event(
            Change::Responded {
                message: "sudah".into(),
                auto_close_due: Timestamp::from_millis(0),
            },
            officer(),
        );
        let seen = |e: &Event| ALL.map(|a| shown(e, a).message.is_some());
        assert_eq!(seen(&note), [false, false, true]);
        assert_eq!(seen(&reply), [false, true, true]);
        assert_eq!(seen(&response), [true, true, true]);
        assert_eq!(
            ALL.map(|a| shown(&response, a).officer),
            [None, None, Some("verif1")]
        );
    }
}
