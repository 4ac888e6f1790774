//! Chain rules between two events of one origin (invariant 3): consecutive events link by
//! `seq` and `prev`; two different events at one `(origin, seq)` are an equivocation — proof
//! that the origin forked its history, once both signatures verify.

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
    if next.seq != prev.seq.saturating_add(1) {
        return Err(ChainFault::Gap {
            origin: next.origin.to_string(),
            prev: prev.seq,
            next: next.seq,
        });
    }
    if next.prev.as_ref() != Some(&prev.id) {
        return Err(ChainFault::Broken {
            origin: next.origin.to_string(),
            event: next.id.to_string(),
            seq: next.seq,
            expected: prev.id.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
