//! Schema migrations that move data: reverted and applied again on a database that holds it.

use diesel::prelude::*;
use lapor_node::db::migrations;
use lapor_node::domain::Actor;

use crate::helpers::{self, backends, monday_morning};

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
struct OutboxRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    event_id: String,
}

fn outbox_rows(t: &lapor_node::tickets::Tickets) -> Vec<OutboxRow> {
    let mut c = t.db().read().unwrap();
    diesel::sql_query("SELECT id, event_id FROM outbox ORDER BY id")
        .load(&mut *c)
        .unwrap()
}

fn sql(t: &lapor_node::tickets::Tickets, text: &'static str) {
    t.db()
        .write(move |c| {
            diesel::sql_query(text)
                .execute(c)
                .map(|_| ())
                .map_err(lapor_node::db::DbError::from)
        })
        .unwrap();
}

#[test]
fn events_keyed_by_ticket_keep_their_outbox_rows_and_row_numbers_both_ways() {
    for db in backends() {
        let t = helpers::tickets(&db);
        for _ in 0..3 {
            t.submit(&crate::api_report(), &Actor::citizen(), monday_morning())
                .unwrap();
        }
        // Outbox rows for every event (as a federated node writes them); the first is then
        // acknowledged, so the row numbers run ahead of the rows left.
        sql(
            &t,
            "INSERT INTO outbox (destination, event_id, ticket, with_pii, enqueued_at_ms) \
             SELECT 'hub.lapor.test', id, ticket, FALSE, 0 FROM events ORDER BY seq",
        );
        sql(
            &t,
            "DELETE FROM outbox WHERE id = (SELECT MIN(id) FROM outbox)",
        );
        let before = outbox_rows(&t);
        assert_eq!(before.len(), 2, "{}", db.name);

        // Later migrations first, down to this one.
        loop {
            let reverted = t
                .db()
                .with_writer(migrations::revert_last)
                .unwrap()
                .unwrap();
            assert!(reverted.as_str() >= "20261203000008", "{}", db.name);
            if reverted == "20261203000008" {
                break;
            }
        }
        assert_eq!(outbox_rows(&t), before, "{}: after the revert", db.name);
        t.db()
            .with_writer(migrations::run_pending)
            .unwrap()
            .unwrap();
        assert_eq!(outbox_rows(&t), before, "{}: after applying again", db.name);

        // Row numbers continue after the highest ever given; each row joins its event.
        sql(
            &t,
            "INSERT INTO outbox (destination, event_id, ticket, with_pii, enqueued_at_ms) \
             SELECT 'prov-53.lapor.test', id, ticket, FALSE, 0 FROM events WHERE seq = 1",
        );
        let after = outbox_rows(&t);
        let newest = after.iter().map(|r| r.id).max().unwrap();
        assert!(newest > 3, "{}: row number {newest} given again", db.name);
        let mut c = t.db().read().unwrap();
        let pending =
            lapor_node::federation::outbox::pending(&mut c, "hub.lapor.test", 0, 10, i64::MAX)
                .unwrap();
        let ids: Vec<&str> = pending.iter().map(|p| p.event_id.as_str()).collect();
        let expected: Vec<&str> = before.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, expected, "{}", db.name);
        assert!(pending.iter().all(|p| p.raw.contains(&p.event_id)));
        drop(c);
        // An outbox row must name a held event of its ticket.
        let bad = t.db().write(|c| {
            diesel::sql_query(
                "INSERT INTO outbox (destination, event_id, ticket, with_pii, enqueued_at_ms) \
                 SELECT 'hub.lapor.test', id, '01a23a12-ac5f-767c-a0c2-8251c3c9143d', FALSE, 0 \
                 FROM events WHERE seq = 2",
            )
            .execute(c)
            .map(|_| ())
            .map_err(lapor_node::db::DbError::from)
        });
        assert!(bad.is_err(), "{}: foreign key not enforced", db.name);
    }
}
