//! Chain rules between two events of one origin (invariant 3): consecutive events link by
//! `seq` and `prev`; two different events at one `(origin, seq)` are an equivocation — proof
//! that the origin forked its history, once both signatures verify. The inbox (judging what
//! arrives) and the audit (re-checking what is stored) both apply these, on [`Place`]s.

use super::Event;

/// A chain fault between two events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    /// Two different events claim the same place in one origin's chain.
    #[error("equivocation by {origin}: events {first} and {second} both claim seq {seq}")]
    Equivocation {
        /// The origin.
        origin: String,
        /// The position.
        seq: u64,
        /// One event id.
        first: String,
        /// The other.
        second: String,
    },
    /// `next` does not directly follow `prev` in the chain.
    #[error("seq gap in {origin}'s chain: {next} does not follow {prev}")]
    Gap {
        /// The origin.
        origin: String,
        /// The earlier seq.
        prev: u64,
        /// The later seq.
        next: u64,
    },
    /// A chain's first held event is not its first event.
    #[error("{origin}'s chain starts at seq {seq} (events before it are missing)")]
    Missing {
        /// The origin.
        origin: String,
        /// The first seq held.
        seq: u64,
    },
    /// The first event of a chain names a predecessor.
    #[error("the first event of {origin}'s chain ({event}) names a prev")]
    FirstHasPrev {
        /// The origin.
        origin: String,
        /// The event.
        event: String,
    },
    /// `next` follows by number but names another predecessor.
    #[error("broken chain of {origin}: event {event} (seq {seq}) does not name {expected} as prev")]
    Broken {
        /// The origin.
        origin: String,
        /// The event with the wrong `prev`.
        event: String,
        /// Its seq.
        seq: u64,
        /// The id it should name.
        expected: String,
    },
}

/// One event's place in its origin's chain, as the rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// The origin.
    pub origin: &'a str,
    /// Its seq.
    pub seq: u64,
    /// Its id.
    pub id: &'a str,
    /// The id it names as its predecessor.
    pub prev: Option<&'a str>,
}

impl ChainFault {
    /// Whether the fault is only that events are missing (a gap, or a chain held from the
    /// middle): a fault for a chain that must be held whole, expected for one held in part.
    #[must_use]
    pub const fn is_missing_events(&self) -> bool {
        matches!(self, Self::Gap { .. } | Self::Missing { .. })
    }
}

/// Checks `next` against `before` — the nearest earlier event of its origin that is held, as
/// `(seq, id)`, or `None` when none is: the first event names no predecessor; an event right
/// after a held one names it; anything else is a gap ([`ChainFault::is_missing_events`]).
pub fn check_place(before: Option<(u64, &str)>, next: Place<'_>) -> Result<(), ChainFault> {
    if next.seq == 1 && next.prev.is_some() {
        return Err(ChainFault::FirstHasPrev {
            origin: next.origin.to_owned(),
            event: next.id.to_owned(),
        });
    }
    match before {
        None if next.seq > 1 => Err(ChainFault::Missing {
            origin: next.origin.to_owned(),
            seq: next.seq,
        }),
        Some((seq, _)) if next.seq != seq.saturating_add(1) => Err(ChainFault::Gap {
            origin: next.origin.to_owned(),
            prev: seq,
            next: next.seq,
        }),
        Some((_, id)) if next.prev != Some(id) => Err(ChainFault::Broken {
            origin: next.origin.to_owned(),
            event: next.id.to_owned(),
            seq: next.seq,
            expected: id.to_owned(),
        }),
        None | Some(_) => Ok(()),
    }
}

/// An equivocation when `held` — the id of the event held at `next`'s place — is another
/// event.
#[must_use]
pub fn equivocation_at(held: &str, next: Place<'_>) -> Option<ChainFault> {
    (held != next.id).then(|| ChainFault::Equivocation {
        origin: next.origin.to_owned(),
        seq: next.seq,
        first: held.to_owned(),
        second: next.id.to_owned(),
    })
}

/// Whether two events of one origin equivocate (same place, different content).
#[must_use]
pub fn equivocation(a: &Event, b: &Event) -> Option<ChainFault> {
    (a.origin == b.origin && a.seq == b.seq && a.id != b.id).then(|| ChainFault::Equivocation {
        origin: a.origin.to_string(),
        seq: a.seq,
        first: a.id.to_string(),
        second: b.id.to_string(),
    })
}

/// Checks that `next` is the event right after `prev` in their origin's chain.
pub fn check_link(prev: &Event, next: &Event) -> Result<(), ChainFault> {
    let (p, n) = (prev.id.to_string(), next.id.to_string());
    let named = next.prev.as_ref().map(ToString::to_string);
    check_place(
        Some((prev.seq, p.as_str())),
        Place {
            origin: next.origin.as_str(),
            seq: next.seq,
            id: &n,
            prev: named.as_deref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'a>(seq: u64, id: &'a str, prev: Option<&'a str>) -> Place<'a> {
        Place {
            origin: "prov-31",
            seq,
            id,
            prev,
        }
    }

    #[test]
    fn places_are_judged_by_the_same_rules_for_the_inbox_and_the_audit() {
        assert_eq!(check_place(None, place(1, "a", None)), Ok(()));
        assert!(matches!(
            check_place(None, place(1, "a", Some("x"))),
            Err(ChainFault::FirstHasPrev { .. })
        ));
        let missing = check_place(None, place(3, "c", Some("b"))).unwrap_err();
        assert!(missing.is_missing_events(), "{missing}");
        let gap = check_place(Some((1, "a")), place(3, "c", Some("b"))).unwrap_err();
        assert!(
            gap.is_missing_events() && gap.to_string().contains("seq gap"),
            "{gap}"
        );
        let broken = check_place(Some((1, "a")), place(2, "b", Some("z"))).unwrap_err();
        assert!(matches!(broken, ChainFault::Broken { .. }) && !broken.is_missing_events());
        assert_eq!(
            check_place(Some((1, "a")), place(2, "b", Some("a"))),
            Ok(())
        );
        assert!(equivocation_at("a", place(1, "a2", None)).is_some());
        assert!(equivocation_at("a", place(1, "a", None)).is_none());
    }
    use crate::domain::event::{Actor, Change};
    use crate::domain::{EventId, NodeId, TicketId, Timestamp};

    fn event(seq: u64, id: &str, prev: Option<&str>) -> Event {
        Event {
            id: EventId::of_bytes(id.as_bytes()),
            origin: NodeId::parse("prov-53.lapor.test").unwrap(),
            seq,
            prev: prev.map(|p| EventId::of_bytes(p.as_bytes())),
            ticket: TicketId::new(),
            parents: vec![],
            at: Timestamp::from_millis(1),
            actor: Actor::citizen(),
            change: Change::Verified {},
            pii: None,
        }
    }

    #[test]
    fn equivocation_needs_one_place_and_two_contents() {
        let a = event(5, "a", Some("p"));
        let b = event(5, "b", Some("p"));
        assert!(matches!(
            equivocation(&a, &b),
            Some(ChainFault::Equivocation { seq: 5, .. })
        ));
        assert_eq!(
            equivocation(&a, &a.clone()),
            None,
            "a duplicate is not an equivocation"
        );
        assert_eq!(equivocation(&a, &event(6, "b", Some("a"))), None);
        let mut other_origin = b;
        other_origin.origin = NodeId::parse("prov-31.lapor.test").unwrap();
        assert_eq!(equivocation(&a, &other_origin), None);
    }

    #[test]
    fn links_need_the_next_seq_and_the_previous_id() {
        let one = event(1, "one", None);
        assert_eq!(check_link(&one, &event(2, "two", Some("one"))), Ok(()));
        assert!(matches!(
            check_link(&one, &event(3, "three", Some("one"))),
            Err(ChainFault::Gap {
                prev: 1,
                next: 3,
                ..
            })
        ));
        assert!(matches!(
            check_link(&one, &event(2, "two", Some("zzz"))),
            Err(ChainFault::Broken { seq: 2, .. })
        ));
        assert!(matches!(
            check_link(&one, &event(2, "two", None)),
            Err(ChainFault::Broken { .. })
        ));
    }
}
