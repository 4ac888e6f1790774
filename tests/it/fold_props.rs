//! Property: every node holding the same events of a ticket derives the same state, whatever
//! order they arrived in; events from a node without authority never change the state.

use lapor_node::domain::event::{Actor, Change, Role};
use lapor_node::domain::{AgencyCode, Event, EventId, NodeId, TicketState, fold};
use lapor_node::event_log::store as log;
use lapor_node::tickets::Action;
use proptest::prelude::*;

use crate::helpers::{self, DAY_MS, liaison, monday_morning, verifier};

/// A ticket taken through its lifecycle on a real node; its events as stored.
fn lifecycle_events() -> Vec<Event> {
    let db = helpers::sqlite();
    let t = helpers::tickets(&db);
    let mut now = monday_morning();
    let id = t
        .submit(&crate::api_report(), &Actor::citizen(), now)
        .unwrap()
        .event
        .ticket;
    let dishub = || AgencyCode::parse("DKI-DISHUB").unwrap();
    let steps = [
        (verifier(), Action::Verify),
        (verifier(), Action::Dispatch { agency: dishub() }),
        (liaison("DKI-DISHUB"), Action::Start),
        (
            liaison("DKI-DISHUB"),
            Action::Respond {
                message: "ditangani".into(),
            },
        ),
        (
            Actor::citizen(),
            Action::Reply {
                message: "kapan?".into(),
            },
        ),
        (
            liaison("DKI-DISHUB"),
            Action::Respond {
                message: "besok".into(),
            },
        ),
        (
            liaison("DKI-DISHUB"),
            Action::Resolve {
                message: "selesai".into(),
            },
        ),
        (Actor::citizen(), Action::Rate { rating: 5 }),
    ];
    for (actor, action) in steps {
        now = now.plus_millis(DAY_MS / 4);
        t.act(&id, &actor, action, now).unwrap();
    }
    let mut c = t.db().read().unwrap();
    log::for_ticket(&mut c, &id)
        .unwrap()
        .iter()
        .map(|r| log::decode(r).unwrap())
        .collect()
}

/// Events by a node that never handled the ticket: a status change and a citizen event.
fn intruders(events: &[Event]) -> Vec<Event> {
    let stranger = NodeId::parse("prov-99.lapor.test").unwrap();
    let created = &events[0];
    let mut out = Vec::new();
    for (i, (actor, change)) in [
        (
            Actor {
                role: Role::Verifier,
                officer: None,
                agency: None,
            },
            Change::Verified {},
        ),
        (Actor::citizen(), Change::Rated { rating: 1 }),
        (
            Actor {
                role: Role::System,
                officer: None,
                agency: None,
            },
            Change::SlaBreached {
                step: lapor_node::domain::event::SlaStep::Overall,
            },
        ),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(Event {
            id: EventId::of_bytes(format!("intruder {i}").as_bytes()),
            origin: stranger.clone(),
            seq: i as u64 + 1,
            prev: None,
            ticket: created.ticket,
            parents: vec![created.id.clone()],
            at: created.at.plus_millis(1000),
            actor,
            change,
            pii: None,
        });
    }
    out
}

fn folded(events: &[Event]) -> (Option<TicketState>, usize) {
    let f = fold::fold(events);
    (f.state, f.rejected.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_arrival_order_folds_to_the_same_state(seed in any::<u64>()) {
        thread_local! {
            static EVENTS: Vec<Event> = lifecycle_events();
        }
        EVENTS.with(|events| {
            let (reference, rejected) = folded(events);
            assert_eq!(rejected, 0);
            let mut with_intruders = events.clone();
            with_intruders.extend(intruders(events));
            // A deterministic shuffle from the seed (Fisher-Yates with a xorshift).
            let mut x = seed | 1;
            for i in (1..with_intruders.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let j = usize::try_from(x % (i as u64 + 1)).unwrap();
                with_intruders.swap(i, j);
            }
            let (state, rejected) = folded(&with_intruders);
            prop_assert_eq!(state, reference);
            prop_assert_eq!(rejected, 3, "every intruding event is refused");
            Ok(())
        })?;
    }
}
