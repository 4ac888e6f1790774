//! Folding a ticket's events into its state, in a deterministic order: parents before
//! children, ties broken by (`at`, `id`). Events that are not allowed where they fall — by the
//! lifecycle, or because their node lacks the authority — are rejected with their reason and do
//! not change the state.

use std::collections::{BTreeSet, HashMap};

use super::{Event, EventId, TicketState, Timestamp, TransitionError};

/// The result of a fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    /// The state, if a valid `created` event was found.
    pub state: Option<TicketState>,
    /// The id of the last applied event.
    pub head: Option<EventId>,
    /// Events refused, with the reason.
    pub rejected: Vec<(EventId, TransitionError)>,
}

/// Orders events: an event comes after every parent present in the set; among ready events,
/// the earliest `at`, then the smallest id, goes first.
#[must_use]
pub fn order(events: &[Event]) -> Vec<&Event> {
    let present: HashMap<&EventId, &Event> = events.iter().map(|e| (&e.id, e)).collect();
    let mut waiting: HashMap<&EventId, usize> = HashMap::new();
    let mut children: HashMap<&EventId, Vec<&Event>> = HashMap::new();
    let mut ready: BTreeSet<(Timestamp, &EventId)> = BTreeSet::new();
    for e in present.values() {
        let deps: BTreeSet<&EventId> = e
            .parents
            .iter()
            .filter(|p| present.contains_key(p) && **p != e.id)
            .collect();
        if deps.is_empty() {
            ready.insert((e.at, &e.id));
        } else {
            waiting.insert(&e.id, deps.len());
            for p in deps {
                children.entry(p).or_default().push(e);
            }
        }
    }
    let mut out = Vec::with_capacity(present.len());
    while let Some((_, id)) = ready.pop_first() {
        if let Some(e) = present.get(id) {
            out.push(*e);
        }
        for c in children.remove(id).unwrap_or_default() {
            if let Some(n) = waiting.get_mut(&c.id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    waiting.remove(&c.id);
                    ready.insert((c.at, &c.id));
                }
            }
        }
    }
    // Cycles cannot occur with content-addressed ids; anything left over goes last, in order.
    let mut rest: Vec<&Event> = waiting
        .keys()
        .filter_map(|id| present.get(id).copied())
        .collect();
    rest.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    out.extend(rest);
    out
}

/// Folds one ticket's events.
#[must_use]
pub fn fold(events: &[Event]) -> Folded {
    fold_visit(events, |_, _| {})
}

/// [`fold`], calling `visit` with the state before each event the fold applies (`None` before
/// the `created` event) and the event.
pub fn fold_visit(events: &[Event], mut visit: impl FnMut(Option<&TicketState>, &Event)) -> Folded {
    let mut state: Option<TicketState> = None;
    let mut head = None;
    let mut rejected = Vec::new();
    for e in order(events) {
        let next = match &state {
            None => TicketState::create(&e.origin, &e.actor, &e.change, e.at),
            Some(s) => s.apply_from(&e.origin, &e.actor, &e.change, e.at),
        };
        match next {
            Ok(s) => {
                visit(state.as_ref(), e);
                state = Some(s);
                head = Some(e.id.clone());
            }
            Err(err) => rejected.push((e.id.clone(), err)),
        }
    }
    Folded {
        state,
        head,
        rejected,
    }
}
