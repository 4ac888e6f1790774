//! Diesel queries on the SMS tables: handled inbound messages, the outbox, blocked numbers and
//! the node's SMS secret.

use diesel::prelude::*;

use super::model::{BlockedRow, NewOutRow, OutRow, state};
use crate::db::DbConn;
use crate::db::schema::{sms_blocked, sms_inbound, sms_outbox, sms_secrets};

/// The outcome recorded for an inbound message already handled.
pub fn inbound_outcome(conn: &mut DbConn, key: &str) -> QueryResult<Option<String>> {
    sms_inbound::table
        .find(key)
        .select(sms_inbound::outcome)
        .first(conn)
        .optional()
}

/// Records an inbound message as handled (fails on a second record of the same key).
pub fn record_inbound(conn: &mut DbConn, key: &str, now_ms: i64, outcome: &str) -> QueryResult<()> {
    diesel::insert_into(sms_inbound::table)
        .values((
            sms_inbound::message_key.eq(key),
            sms_inbound::received_at_ms.eq(now_ms),
            sms_inbound::outcome.eq(outcome),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Queues a message; a second notice for the same event is ignored.
pub fn queue(conn: &mut DbConn, row: &NewOutRow) -> QueryResult<()> {
    if let Some(event) = &row.event_id {
        let held: i64 = sms_outbox::table
            .filter(sms_outbox::event_id.eq(event))
            .count()
            .get_result(conn)?;
        if held > 0 {
            return Ok(());
        }
    }
    crate::db::on_backend!(conn, c => diesel::insert_into(sms_outbox::table)
        .values(row)
        .execute(c)
        .map(|_| ()))
}

/// Pending messages due at `now_ms`, oldest first.
pub fn due(conn: &mut DbConn, now_ms: i64, limit: i64) -> QueryResult<Vec<OutRow>> {
    sms_outbox::table
        .filter(sms_outbox::state.eq(state::PENDING))
        .filter(sms_outbox::next_at_ms.le(now_ms))
        .order(sms_outbox::id.asc())
        .limit(limit)
        .select(OutRow::as_select())
        .load(conn)
}

/// Messages in `state_name`, newest first.
pub fn in_state(conn: &mut DbConn, state_name: &str, limit: i64) -> QueryResult<Vec<OutRow>> {
    sms_outbox::table
        .filter(sms_outbox::state.eq(state_name))
        .order(sms_outbox::id.desc())
        .limit(limit)
        .select(OutRow::as_select())
        .load(conn)
}

/// Counts messages by state.
pub fn counts(conn: &mut DbConn) -> QueryResult<Vec<(String, i64)>> {
    use diesel::dsl::count_star;
    sms_outbox::table
        .group_by(sms_outbox::state)
        .select((sms_outbox::state, count_star()))
        .load(conn)
}

/// Every message, oldest first (tests).
pub fn all(conn: &mut DbConn) -> QueryResult<Vec<OutRow>> {
    sms_outbox::table
        .order(sms_outbox::id.asc())
        .select(OutRow::as_select())
        .load(conn)
}

/// Parts of a message accepted so far.
pub fn set_parts_sent(conn: &mut DbConn, id: i64, parts: i32) -> QueryResult<()> {
    diesel::update(sms_outbox::table.find(id))
        .set(sms_outbox::parts_sent.eq(parts))
        .execute(conn)
        .map(|_| ())
}

/// A message handed to the gateway: its number is forgotten, its key kept for the daily cap.
pub fn mark_sent(conn: &mut DbConn, id: i64, number_key: &str, now_ms: i64) -> QueryResult<()> {
    diesel::update(sms_outbox::table.find(id))
        .set((
            sms_outbox::state.eq(state::SENT),
            sms_outbox::phone.eq(None::<String>),
            sms_outbox::number_key.eq(number_key),
            sms_outbox::done_at_ms.eq(now_ms),
            sms_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A failed attempt: retried at `next_at_ms`, or dead-lettered.
pub fn mark_failed(
    conn: &mut DbConn,
    id: i64,
    attempts: i32,
    next_at_ms: i64,
    dead: bool,
    error: &str,
    now_ms: i64,
) -> QueryResult<()> {
    diesel::update(sms_outbox::table.find(id))
        .set((
            sms_outbox::attempts.eq(attempts),
            sms_outbox::next_at_ms.eq(next_at_ms),
            sms_outbox::state.eq(if dead { state::DEAD } else { state::PENDING }),
            sms_outbox::done_at_ms.eq(dead.then_some(now_ms)),
            sms_outbox::last_error.eq(error),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A message that waits (daily cap) without counting as a failure.
pub fn postpone(conn: &mut DbConn, id: i64, next_at_ms: i64) -> QueryResult<()> {
    diesel::update(sms_outbox::table.find(id))
        .set(sms_outbox::next_at_ms.eq(next_at_ms))
        .execute(conn)
        .map(|_| ())
}

/// A message that will never be sent (the number is gone): dropped, number forgotten.
pub fn mark_dropped(conn: &mut DbConn, id: i64, why: &str, now_ms: i64) -> QueryResult<()> {
    diesel::update(sms_outbox::table.find(id))
        .set((
            sms_outbox::state.eq(state::DROPPED),
            sms_outbox::phone.eq(None::<String>),
            sms_outbox::done_at_ms.eq(now_ms),
            sms_outbox::last_error.eq(why),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Drops the pending and dead notices about `ticket` (its contact was erased).
pub fn drop_for_ticket(conn: &mut DbConn, ticket: &str, now_ms: i64) -> QueryResult<usize> {
    diesel::update(
        sms_outbox::table
            .filter(sms_outbox::ticket_id.eq(ticket))
            .filter(sms_outbox::state.eq_any([state::PENDING, state::DEAD])),
    )
    .set((
        sms_outbox::state.eq(state::DROPPED),
        sms_outbox::done_at_ms.eq(now_ms),
        sms_outbox::last_error.eq("erased"),
    ))
    .execute(conn)
}

/// Dead letters back to pending, due now: `id`, or all of them. Returns how many.
pub fn retry_dead(conn: &mut DbConn, id: Option<i64>, now_ms: i64) -> QueryResult<usize> {
    let mut q = diesel::update(sms_outbox::table)
        .filter(sms_outbox::state.eq(state::DEAD))
        .into_boxed();
    if let Some(id) = id {
        q = q.filter(sms_outbox::id.eq(id));
    }
    q.set((
        sms_outbox::state.eq(state::PENDING),
        sms_outbox::attempts.eq(0),
        sms_outbox::next_at_ms.eq(now_ms),
        sms_outbox::done_at_ms.eq(None::<i64>),
    ))
    .execute(conn)
}

/// Messages sent to `number_key` at or after `since_ms`.
pub fn sent_since(conn: &mut DbConn, number_key: &str, since_ms: i64) -> QueryResult<i64> {
    sms_outbox::table
        .filter(sms_outbox::number_key.eq(number_key))
        .filter(sms_outbox::state.eq(state::SENT))
        .filter(sms_outbox::done_at_ms.ge(since_ms))
        .count()
        .get_result(conn)
}

/// Whether `phone` is blocked.
pub fn is_blocked(conn: &mut DbConn, phone: &str) -> QueryResult<bool> {
    let n: i64 = sms_blocked::table
        .filter(sms_blocked::phone.eq(phone))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Blocks a number (again: the note and time are updated).
pub fn block(conn: &mut DbConn, row: &BlockedRow) -> QueryResult<()> {
    diesel::delete(sms_blocked::table.find(&row.phone)).execute(conn)?;
    diesel::insert_into(sms_blocked::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Unblocks a number; whether it was blocked.
pub fn unblock(conn: &mut DbConn, phone: &str) -> QueryResult<bool> {
    Ok(diesel::delete(sms_blocked::table.find(phone)).execute(conn)? > 0)
}

/// Blocked numbers, by number.
pub fn blocked(conn: &mut DbConn) -> QueryResult<Vec<BlockedRow>> {
    sms_blocked::table
        .order(sms_blocked::phone.asc())
        .select(BlockedRow::as_select())
        .load(conn)
}

/// The node's secret `name`, created (random, hex) on first use.
pub fn secret(conn: &mut DbConn, name: &str) -> QueryResult<String> {
    let held: Option<String> = sms_secrets::table
        .find(name)
        .select(sms_secrets::value)
        .first(conn)
        .optional()?;
    if let Some(v) = held {
        return Ok(v);
    }
    let value = crate::crypto::pii::new_salt();
    diesel::insert_into(sms_secrets::table)
        .values((sms_secrets::name.eq(name), sms_secrets::value.eq(&value)))
        .execute(conn)?;
    Ok(value)
}
