//! Queuing SMS, always inside the transaction of what causes it.
//!
//! ```text
//!  tickets::commands::append_change ─┐  (local change: officer, citizen, SLA sweep, erasure)
//!  federation::judge (event stored) ─┼─► on_event ─► notice_for (which status changes speak)
//!                                    │                  └─► sms_outbox row (ticket, event id)
//!  sms::inbound (filing hook, answer) ──► queue_answer / queue_notice ─► sms_outbox row
//!                                                      commit ─► the sender wakes
//! ```
//!
//! Only the origin of a report filed by SMS queues its notices: it alone holds the reporter's
//! number (an SMS report's contact is never replicated while anonymous, and never to the
//! hub). A notice names its ticket, not the number; the sender reads the number from the
//! contact when it sends, so an erasure stops every notice still queued.

use diesel::QueryResult;

use super::model::{NewOutRow, state};
use super::replies::Notice;
use super::store;
use crate::db::DbConn;
use crate::domain::{Change, Channel, Event, NodeId, TicketState};

/// The notice `event` gives the reporter of a report in `state` (after the event), if any.
fn notice_for(
    conn: &mut DbConn,
    state: &TicketState,
    event: &Event,
) -> QueryResult<Option<Notice>> {
    let code = state.report.tracking_code.clone();
    Ok(match &event.change {
        Change::Verified {} => Some(Notice::Verified(code)),
        Change::Dispatched {
            agency, handler, ..
        } => {
            let name = crate::tickets::agencies::get(conn, agency.as_str())?
                .map_or_else(|| agency.to_string(), |a| a.name);
            Some(if *handler == state.origin {
                Notice::Dispatched(code, name)
            } else {
                Notice::Forwarded(code, name)
            })
        }
        Change::Responded { message, .. } => Some(Notice::Responded(code, message.clone())),
        Change::Resolved { message, .. } => Some(Notice::Resolved(code, message.clone())),
        Change::Closed { .. } => Some(Notice::Closed(code)),
        Change::Archived { .. } => Some(Notice::Archived(code)),
        _ => None,
    })
}

/// After `event` was stored (at this node, `me`) and the ticket is in `state`: queues the
/// reporter's notice when the report was filed here by SMS and is not erased; on an erasure,
/// drops the notices still queued.
///
/// # Errors
///
/// The database refused a statement (the caller's transaction fails).
pub fn on_event(
    conn: &mut DbConn,
    me: &NodeId,
    state: &TicketState,
    event: &Event,
) -> QueryResult<()> {
    if state.origin != *me || state.report.channel != Channel::Sms {
        return Ok(());
    }
    let now = event.at.millis();
    if matches!(event.change, Change::Erased {}) {
        store::drop_for_ticket(conn, &event.ticket.to_string(), now)?;
        return Ok(());
    }
    if state.erased {
        return Ok(());
    }
    match notice_for(conn, state, event)? {
        Some(notice) => queue_notice(
            conn,
            &event.ticket.to_string(),
            &event.id.to_string(),
            &notice,
            now,
        ),
        None => Ok(()),
    }
}

/// Queues `notice` about `ticket`, caused by `event_id`.
pub fn queue_notice(
    conn: &mut DbConn,
    ticket: &str,
    event_id: &str,
    notice: &Notice,
    now_ms: i64,
) -> QueryResult<()> {
    store::queue(
        conn,
        &NewOutRow {
            ticket_id: Some(ticket.to_owned()),
            event_id: Some(event_id.to_owned()),
            phone: None,
            number_key: None,
            kind: notice.kind().to_owned(),
            body: notice.text(),
            state: state::PENDING.to_owned(),
            next_at_ms: now_ms,
            created_at_ms: now_ms,
        },
    )?;
    crate::db::writer::notice_after_commit();
    Ok(())
}

/// Queues an answer `text` to `phone` (whose keyed hash is `number_key`).
pub fn queue_answer(
    conn: &mut DbConn,
    phone: &str,
    number_key: &str,
    text: &str,
    now_ms: i64,
) -> QueryResult<()> {
    store::queue(
        conn,
        &NewOutRow {
            ticket_id: None,
            event_id: None,
            phone: Some(phone.to_owned()),
            number_key: Some(number_key.to_owned()),
            kind: "answer".to_owned(),
            body: text.to_owned(),
            state: state::PENDING.to_owned(),
            next_at_ms: now_ms,
            created_at_ms: now_ms,
        },
    )?;
    crate::db::writer::notice_after_commit();
    Ok(())
}
