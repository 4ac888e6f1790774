//! Property: the national statistics kept incrementally equal their recomputation from the
//! folded tickets — on the node that wrote the events (command path), after `rebuild`, and on
//! a node that received the same events in a random order (one at a time, each applied once
//! its parents are there, as the inbox does).

use std::collections::HashMap;

use lapor_node::db::{Db, DbError};
use lapor_node::domain::event::ArchiveReason;
use lapor_node::domain::{
    Actor, AgencyCode, Category, Channel, Event, EventId, RegionCode, ReportKind, TicketId, fold,
};
use lapor_node::event_log::store as log;
use lapor_node::hub::cells::Cells;
use lapor_node::hub::store as hub;
use lapor_node::tickets::model::TicketRow;
use lapor_node::tickets::store as ticket_store;
use lapor_node::tickets::{Action, Tickets};
use proptest::prelude::*;

use crate::helpers::{self, liaison, monday_morning, verifier};

const AGENCIES: [&str; 2] = ["DKI-DISHUB", "DKI-DINKES"];

fn report(i: usize) -> lapor_node::tickets::NewReport {
    let mut r = crate::api_report();
    r.kind = [ReportKind::Pengaduan, ReportKind::Aspirasi][i % 2];
    r.channel = [Channel::Web, Channel::Sms, Channel::Web][i % 3];
    r.region = RegionCode::parse(["3171", "31", "3172"][i % 3]).unwrap();
    r.category = Category::parse(["infrastruktur", "kesehatan"][i / 2 % 2]).unwrap();
    r
}

fn current_agency(t: &Tickets, id: &TicketId) -> String {
    let mut c = t.db().read().unwrap();
    ticket_store::by_id(&mut c, id)
        .unwrap()
        .and_then(|r| r.agency)
        .unwrap_or_else(|| AGENCIES[0].to_owned())
}

/// Plays `steps` on a fresh node: `(ticket, action code, hours later)`. Illegal actions are
/// refused by the node and leave nothing behind, as they would for a user.
fn play(t: &Tickets, tickets: usize, steps: &[(usize, u8, u16)]) -> Vec<TicketId> {
    let mut now = monday_morning();
    let ids: Vec<TicketId> = (0..tickets)
        .map(|i| {
            now = now.plus_millis(3_600_000);
            t.submit(&report(i), &Actor::citizen(), now)
                .unwrap()
                .event
                .ticket
        })
        .collect();
    for &(ticket, code, hours) in steps {
        now = now.plus_millis(i64::from(hours) * 3_600_000);
        let id = &ids[ticket % ids.len()];
        let own = || liaison(&current_agency(t, id));
        let agency = |i: usize| AgencyCode::parse(AGENCIES[i]).unwrap();
        let text = || "catatan".to_owned();
        let (actor, action) = match code {
            0 => (verifier(), Action::Verify),
            1 | 2 => (
                verifier(),
                Action::Dispatch {
                    agency: agency(usize::from(code - 1)),
                },
            ),
            3 => (verifier(), Action::Postpone { note: text() }),
            4 => (
                verifier(),
                Action::Archive {
                    reason: ArchiveReason::Duplicate,
                },
            ),
            5 => (verifier(), Action::NotOurAuthority { note: text() }),
            6 => (own(), Action::NotOurAuthority { note: text() }),
            7 => (own(), Action::Start),
            8 => (own(), Action::Respond { message: text() }),
            9 => (own(), Action::Resolve { message: text() }),
            10 => (Actor::citizen(), Action::Reply { message: text() }),
            11 => (
                Actor::citizen(),
                Action::Rate {
                    rating: 1 + u8::try_from(hours % 5).unwrap(),
                },
            ),
            12 => (Actor::citizen(), Action::Reopen { message: text() }),
            _ => {
                t.sla_sweep(now, 1000).unwrap();
                continue;
            }
        };
        let _refused_or_done = t.act(id, &actor, action, now);
    }
    ids
}

fn events_of(db: &Db, ids: &[TicketId]) -> Vec<Event> {
    let mut c = db.read().unwrap();
    ids.iter()
        .flat_map(|id| log::for_ticket(&mut c, id).unwrap())
        .map(|r| log::decode(&r).unwrap())
        .collect()
}

/// The cells recomputed from scratch: every ticket's fold, added once.
fn recomputed(events: &[Event]) -> Cells {
    let mut by_ticket: HashMap<TicketId, Vec<Event>> = HashMap::new();
    for e in events {
        by_ticket.entry(e.ticket).or_default().push(e.clone());
    }
    let mut cells = Cells::default();
    for list in by_ticket.values() {
        if let Some(s) = fold::fold(list).state {
            cells.ticket(&s, 1);
        }
    }
    cells.prune();
    cells
}

fn stored(db: &Db) -> Cells {
    let mut c = db.read().unwrap();
    hub::load(&mut c).unwrap()
}

/// Delivers `events` to `db` in `order`, one at a time: an event whose parents have not
/// arrived waits; each arrival refolds its ticket and writes the projection row (insert or
/// update), as the inbox's judge does.
fn deliver(db: &Db, events: &[Event], order: &[usize]) {
    let mut waiting: Vec<&Event> = order.iter().map(|i| &events[*i]).collect();
    let mut held: HashMap<TicketId, Vec<Event>> = HashMap::new();
    while !waiting.is_empty() {
        let before = waiting.len();
        waiting.retain(|e| {
            let history = held.entry(e.ticket).or_default();
            let known: Vec<&EventId> = history.iter().map(|h| &h.id).collect();
            if !e.parents.iter().all(|p| known.contains(&p)) {
                return true;
            }
            history.push((*e).clone());
            let f = fold::fold(history);
            let (Some(state), Some(head)) = (f.state, f.head) else {
                return false;
            };
            let row = TicketRow::from_state(&e.ticket, &state, &head).unwrap();
            let first = history.len() == 1;
            db.write(move |c| {
                if first {
                    ticket_store::insert(c, &row).map_err(DbError::from)
                } else {
                    ticket_store::update(c, &row).map_err(DbError::from)
                }
            })
            .unwrap();
            false
        });
        assert!(
            waiting.len() < before,
            "every event's parents arrive eventually"
        );
    }
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, usize::try_from(x % (i as u64 + 1)).unwrap());
    }
    order
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn incremental_statistics_equal_recomputed_in_any_arrival_order(
        tickets in 1usize..5,
        steps in proptest::collection::vec((0usize..5, 0u8..14, 0u16..120), 0..40),
        seed in any::<u64>(),
    ) {
        let (origin_db, copy_db) = (helpers::sqlite(), helpers::sqlite());
        let t = helpers::tickets(&origin_db);
        let ids = play(&t, tickets, &steps);
        let events = events_of(t.db(), &ids);
        let expected = recomputed(&events);
        prop_assert_eq!(stored(t.db()), expected.clone(), "commands keep the statistics");

        let copy = helpers::tickets(&copy_db);
        deliver(copy.db(), &events, &shuffled(events.len(), seed));
        prop_assert_eq!(stored(copy.db()), expected.clone(), "arrival order does not matter");

        let province = lapor_node::domain::ProvinceCode::parse("31").unwrap();
        t.db().write(move |c| {
            ticket_store::rebuild(c, &province).map(|_| ()).map_err(|e| DbError::Unavailable(e.to_string()))
        }).unwrap();
        prop_assert_eq!(stored(t.db()), expected, "rebuild recomputes the same cells");
    }
}

/// The same on PostgreSQL, for one fixed stream (the upserts and reads are per backend).
#[test]
fn incremental_statistics_equal_recomputed_on_every_backend() {
    let steps: Vec<(usize, u8, u16)> = vec![
        (0, 0, 2),
        (0, 1, 3),
        (0, 7, 20),
        (0, 8, 30),
        (0, 10, 5),
        (0, 9, 10),
        (0, 11, 4),
        (1, 2, 100),
        (1, 6, 2),
        (1, 1, 3),
        (1, 13, 200),
        (2, 3, 1),
        (2, 13, 90),
        (2, 4, 1),
        (3, 13, 120),
        (3, 2, 1),
        (3, 9, 2),
        (3, 12, 1),
    ];
    for db in helpers::backends() {
        let copy_db = if helpers::is_pg(&db) {
            helpers::postgres().unwrap()
        } else {
            helpers::sqlite()
        };
        let t = helpers::tickets(&db);
        let ids = play(&t, 4, &steps);
        let events = events_of(t.db(), &ids);
        let expected = recomputed(&events);
        assert!(
            !expected.flows.is_empty() && !expected.sla.is_empty(),
            "{}",
            db.name
        );
        assert_eq!(stored(t.db()), expected, "{}", db.name);
        let copy = helpers::tickets(&copy_db);
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.reverse();
        deliver(copy.db(), &events, &order);
        assert_eq!(stored(copy.db()), expected, "{}", db.name);
    }
}

/// A node upgraded from a version without statistics: the start that applies their migration
/// fills them from the tickets already stored.
#[test]
fn statistics_are_filled_at_the_start_that_adds_them() {
    use diesel::RunQueryDsl as _;
    let db = helpers::sqlite();
    let t = helpers::tickets(&db);
    play(&t, 3, &[(0, 1, 2), (1, 0, 3), (2, 5, 1)]);
    let expected = stored(t.db());
    assert!(!expected.counts.is_empty());
    t.db()
        .write(|c| {
            for sql in [
                "DROP TABLE stat_counts",
                "DROP TABLE stat_sla",
                "DROP TABLE stat_flows",
                "DELETE FROM __diesel_schema_migrations WHERE version LIKE '2026%12%07%000012%'",
            ] {
                diesel::sql_query(sql).execute(c)?;
            }
            Ok::<(), DbError>(())
        })
        .unwrap();
    drop(t);
    let again = helpers::tickets(&db);
    assert_eq!(stored(again.db()), expected);
}

/// A hub upgraded to the month × province × kind rollup, the open-ticket rollups and the
/// quarterly flows: their
/// migrations derive the new cells from the stored ones, equal to what the writers keep from
/// then on.
#[test]
fn new_rollups_are_derived_at_the_start_that_adds_them() {
    use diesel::RunQueryDsl as _;
    for db in helpers::backends() {
        let t = helpers::tickets(&db);
        play(
            &t,
            4,
            &[(0, 1, 2), (1, 0, 3), (2, 5, 1), (3, 13, 120), (3, 2, 1)],
        );
        let expected = stored(t.db());
        for rollup in [7, 8, 9] {
            let n = expected
                .counts
                .keys()
                .filter(|k| k.rollup == rollup)
                .count();
            assert!(n > 0, "{}: no cells of rollup {rollup}", db.name);
        }
        assert!(expected.flows.keys().any(|k| k.rollup == 2), "{}", db.name);
        t.db()
            .write(|c| {
                for sql in [
                    "DELETE FROM stat_counts WHERE rollup IN (7, 8, 9)",
                    "DELETE FROM stat_flows WHERE rollup = 2",
                    "DELETE FROM __diesel_schema_migrations WHERE version LIKE '2026%12%07%000022%'",
                    "DELETE FROM __diesel_schema_migrations WHERE version LIKE '2026%12%07%000023%'",
                ] {
                    diesel::sql_query(sql).execute(c)?;
                }
                Ok::<(), DbError>(())
            })
            .unwrap();
        assert_ne!(stored(t.db()), expected, "{}", db.name);
        drop(t);
        let again = helpers::tickets(&db);
        assert_eq!(stored(again.db()), expected, "{}", db.name);
    }
}

/// The national generator writes what a hub would hold: every event accepted by the fold,
/// tickets handled by provinces and the hub, and statistics equal to a rebuild's.
#[test]
fn generated_national_data_is_consistent() {
    use lapor_node::hub::generate::{Nation, StdRng, province_codes, write_heads};
    use rand::SeedableRng as _;
    for db in helpers::backends() {
        let t = helpers::tickets(&db);
        let codes = province_codes(include_str!("../../config/provinces.csv"));
        assert_eq!(codes.len(), 38);
        let hub = lapor_node::domain::NodeId::parse("hub.lapor.test").unwrap();
        let mut nation =
            Nation::new(&codes, hub, lapor_node::crypto::keys::NodeKey::generate()).unwrap();
        let agencies = nation.agencies().unwrap();
        t.db()
            .write(move |c| ticket_store::sync_agencies(c, &agencies).map_err(DbError::from))
            .unwrap();
        let mut rng = StdRng::seed_from_u64(22);
        for _ in 0..2 {
            let batch = nation
                .batch(&mut rng, 150, lapor_node::domain::Timestamp::now())
                .unwrap();
            assert_eq!(batch.refused, 0, "{}", db.name);
            t.db()
                .write(move |c| batch.write(c).map_err(DbError::from))
                .unwrap();
        }
        let heads = nation.heads();
        t.db()
            .write(move |c| write_heads(c, &heads).map_err(DbError::from))
            .unwrap();
        let generated = stored(t.db());
        let tickets: i64 = generated
            .counts
            .iter()
            .filter(|(k, _)| k.rollup == 0)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(tickets, 300, "{}", db.name);
        assert!(
            generated
                .flows
                .keys()
                .any(|k| k.handler == "hub.lapor.test"),
            "{}",
            db.name
        );
        let province = lapor_node::domain::ProvinceCode::parse("31").unwrap();
        t.db()
            .write(move |c| {
                ticket_store::rebuild(c, &province)
                    .map(|_| ())
                    .map_err(|e| DbError::Unavailable(e.to_string()))
            })
            .unwrap();
        assert_eq!(stored(t.db()), generated, "{}", db.name);
    }
}
