//! Tracking codes drawn from the node's counter: unique after a restart that lost its
//! reservation, never equal to a code stored without a number, and found again after the
//! migration that introduced them. Each test runs on SQLite and, when `LAPOR_TEST_PG_URL` is
//! set, on PostgreSQL.

use diesel::prelude::*;
use lapor_node::db::{migrations, schema};
use lapor_node::domain::{Actor, Change, TrackingCode};
use lapor_node::tickets::codes::CodeBook;
use lapor_node::tickets::store as ticket_store;
use lapor_node::tickets::{Submitted, Tickets};

use crate::helpers::{self, backends, monday_morning};

fn code_of(s: &Submitted) -> TrackingCode {
    match &s.event.change {
        Change::Created(c) => c.tracking_code.clone(),
        other => panic!("not a report: {other:?}"),
    }
}

fn file(t: &Tickets) -> Submitted {
    t.submit(&crate::api_report(), &Actor::citizen(), monday_morning())
        .unwrap()
}

/// A second `Tickets` on the same database, reading the code book afresh (a restart).
fn restarted(db: &helpers::TestDb, t: &Tickets) -> Tickets {
    let s = helpers::settings(db, "");
    let key =
        lapor_node::event_log::keys::load_or_create(t.db(), s.node_id(), &s.key_path()).unwrap();
    Tickets::new(t.db().clone(), &s, key).unwrap()
}

fn set_book(t: &Tickets, secret: Option<[u8; 32]>, reserved_end: i64) {
    use schema::tracking_code_books as b;
    t.db()
        .with_writer(move |c| {
            diesel::update(b::table)
                .set(b::reserved_end.eq(reserved_end))
                .execute(c)?;
            if let Some(k) = secret {
                diesel::update(b::table)
                    .set(b::secret.eq(hex::encode(k)))
                    .execute(c)?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap()
        .unwrap();
}

fn lookup(t: &Tickets, code: &TrackingCode) -> Option<String> {
    let mut c = t.db().read().unwrap();
    ticket_store::by_tracking_code(&mut c, t.codes(), code)
        .unwrap()
        .map(|r| r.id)
}

#[test]
fn codes_stay_unique_after_a_restart_that_lost_its_reservation() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let first: Vec<Submitted> = (0..3).map(|_| file(&t)).collect();
        // The reservation is lost (as if the row had been restored from an old backup): the
        // restarted node counts from 0 again, so its first numbers are taken.
        set_book(&t, None, 0);
        let t2 = restarted(&db, &t);
        let alone = file(&t2);
        let grouped = crate::store::file_concurrently(&t2, 8, |_, _| {});
        let mut codes = std::collections::HashSet::new();
        let all = first
            .iter()
            .chain(std::iter::once(&alone))
            .chain(grouped.iter().map(|(_, r)| r.as_ref().unwrap()));
        for s in all {
            let code = code_of(s);
            assert!(
                codes.insert(code.clone()),
                "{}: {code} issued twice",
                db.name
            );
            assert_eq!(
                lookup(&t2, &code),
                Some(s.event.ticket.to_string()),
                "{}: {code}",
                db.name
            );
        }
        assert_eq!(codes.len(), 12);
        // Every stored number is the one its code stands for.
        let mut c = t2.db().read().unwrap();
        for row in ticket_store::all(&mut c).unwrap() {
            let code = TrackingCode::parse(&row.tracking_code).unwrap();
            let number = t2.codes().number(&code).and_then(|n| i64::try_from(n).ok());
            assert_eq!(row.code_number, number, "{}", db.name);
        }
    }
}

#[test]
fn a_code_stored_without_a_number_is_found_and_never_issued_again() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let legacy_ticket = file(&t).event.ticket;
        // The next number of a book with this key stands for `legacy`; store that code as one
        // drawn at random before numbering (no number).
        let key = [9u8; 32];
        let province = t.codes().province().clone();
        let legacy = CodeBook::with_key(province, key, 0).code(0);
        let (id, code) = (legacy_ticket.to_string(), legacy.to_string());
        t.db()
            .with_writer(move |c| {
                use schema::tickets as k;
                diesel::update(k::table.find(id))
                    .set((k::tracking_code.eq(code), k::code_number.eq(None::<i64>)))
                    .execute(c)
            })
            .unwrap()
            .unwrap();
        set_book(&t, Some(key), 0);
        let t2 = restarted(&db, &t);
        let alone = file(&t2);
        assert_ne!(code_of(&alone), legacy, "{}", db.name);
        let grouped = crate::store::file_concurrently(&t2, 6, |_, _| {});
        for (_, r) in &grouped {
            assert_ne!(code_of(r.as_ref().unwrap()), legacy, "{}", db.name);
        }
        assert_eq!(
            lookup(&t2, &legacy),
            Some(legacy_ticket.to_string()),
            "{}",
            db.name
        );
        assert_eq!(
            lookup(&t2, &code_of(&alone)),
            Some(alone.event.ticket.to_string())
        );
        // A code of another province is looked up as it is, and is not held here.
        let foreign = TrackingCode::parse("32-2222-2222").unwrap();
        assert_eq!(lookup(&t2, &foreign), None);
    }
}

#[test]
fn codes_filed_before_numbering_are_found_after_the_migration() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let before: Vec<Submitted> = (0..3).map(|_| file(&t)).collect();
        // Back to the schema before numbering (one unique index over every code), and forward
        // again: the rows come back without numbers and the book with a new key.
        // (Migrations after it are reverted first.)
        loop {
            let reverted = t
                .db()
                .with_writer(migrations::revert_last)
                .unwrap()
                .unwrap();
            if reverted == "20261202000006" {
                break;
            }
        }
        t.db()
            .with_writer(migrations::run_pending)
            .unwrap()
            .unwrap();
        let t2 = restarted(&db, &t);
        let after: Vec<Submitted> = (0..3).map(|_| file(&t2)).collect();
        for s in before.iter().chain(&after) {
            let code = code_of(s);
            assert_eq!(
                lookup(&t2, &code),
                Some(s.event.ticket.to_string()),
                "{}: {code}",
                db.name
            );
        }
        let mut c = t2.db().read().unwrap();
        let numbered = ticket_store::all(&mut c)
            .unwrap()
            .iter()
            .filter(|r| r.code_number.is_some())
            .count();
        assert_eq!(numbered, 3, "{}: only the new codes have numbers", db.name);
    }
}

#[derive(diesel::QueryableByName)]
struct PlanStep {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// SQLite's plan for `sql`, one line per step.
fn plan(t: &Tickets, sql: &str) -> String {
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let mut c = t.db().read().unwrap();
    let lapor_node::db::DbConn::Sqlite(c) = &mut *c else {
        panic!("not SQLite");
    };
    diesel::sql_query(sql)
        .load::<PlanStep>(c)
        .unwrap()
        .into_iter()
        .map(|s| s.detail)
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn code_lookups_and_the_sla_sweep_read_through_their_indexes() {
    let db = helpers::sqlite();
    let t = helpers::tickets(&db);
    let cases = [
        (
            "SELECT id FROM tickets WHERE code_number = 5 AND tracking_code = '31-2222-2222'",
            "tickets_code_number",
        ),
        (
            "SELECT id FROM tickets WHERE code_number IS NULL AND tracking_code = '31-2222-2222'",
            "tickets_unnumbered_code",
        ),
        (
            "SELECT tracking_code FROM tickets WHERE code_number IS NULL \
             AND tracking_code >= '31-' AND tracking_code < '31.' LIMIT 1",
            "tickets_unnumbered_code",
        ),
        (
            "SELECT id FROM tickets WHERE next_due_ms <= 5 AND handling_node = 'n' \
             AND (next_due_ms > 3 OR (next_due_ms = 3 AND id > 'x')) \
             ORDER BY next_due_ms, id LIMIT 200",
            "tickets_next_due",
        ),
        // The event log's key (ticket, id): duplicate checks, the outbox's join, a ticket's
        // events, and paging through the whole log.
        (
            "SELECT ticket, id FROM events WHERE ticket IN ('a', 'b') AND id IN ('x', 'y')",
            "sqlite_autoindex_events",
        ),
        (
            "SELECT o.id, e.raw FROM outbox o JOIN events e ON e.ticket = o.ticket \
             AND e.id = o.event_id WHERE o.destination = 'h' AND o.id > 0 \
             AND o.refused_reason IS NULL ORDER BY o.id LIMIT 10",
            "sqlite_autoindex_events",
        ),
        (
            "SELECT id FROM events WHERE ticket = 'a' ORDER BY stored_at_ms, origin, seq",
            "sqlite_autoindex_events",
        ),
        (
            "SELECT id FROM events WHERE ticket >= 'a' AND (ticket > 'a' OR id > 'b') \
             ORDER BY ticket, id LIMIT 10",
            "sqlite_autoindex_events",
        ),
    ];
    for (sql, index) in cases {
        let p = plan(&t, sql);
        assert!(p.contains(index) && !p.contains("SCAN"), "{sql}: {p}");
    }
}
