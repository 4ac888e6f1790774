//! Rows of the SMS tables.

use diesel::prelude::*;

use crate::db::schema::{sms_blocked, sms_outbox};

/// States of an outbox row.
pub mod state {
    /// Waiting to be sent (at `next_at_ms`).
    pub const PENDING: &str = "pending";
    /// Handed to the gateway.
    pub const SENT: &str = "sent";
    /// Failed `max_attempts` times: shown to admins, retried only on request.
    pub const DEAD: &str = "dead";
    /// Not sent and never will be: the report's contact was erased (or never held a number).
    pub const DROPPED: &str = "dropped";
}

/// One message of the SMS outbox.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sms_outbox)]
pub struct OutRow {
    /// Row id (also the concatenation reference of its parts).
    pub id: i64,
    /// The report a notice is about (its number is read from the report's contact).
    pub ticket_id: Option<String>,
    /// The event that caused the notice (one notice per event).
    pub event_id: Option<String>,
    /// The number of an answer, until it is sent.
    pub phone: Option<String>,
    /// Keyed hash of the number.
    pub number_key: Option<String>,
    /// `filed`, `verified`, …, or `answer`.
    pub kind: String,
    /// The text (GSM-7).
    pub body: String,
    /// See [`state`].
    pub state: String,
    /// Failed attempts so far.
    pub attempts: i32,
    /// Parts the gateway accepted (a retry resumes after them).
    pub parts_sent: i32,
    /// Not before.
    pub next_at_ms: i64,
    /// Queued at.
    pub created_at_ms: i64,
    /// Sent, dead-lettered or dropped at.
    pub done_at_ms: Option<i64>,
    /// The last failure (the gateway's answer; never the number or the text).
    pub last_error: Option<String>,
}

/// A message to queue.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = sms_outbox)]
pub struct NewOutRow {
    /// See [`OutRow::ticket_id`].
    pub ticket_id: Option<String>,
    /// See [`OutRow::event_id`].
    pub event_id: Option<String>,
    /// See [`OutRow::phone`].
    pub phone: Option<String>,
    /// See [`OutRow::number_key`].
    pub number_key: Option<String>,
    /// See [`OutRow::kind`].
    pub kind: String,
    /// See [`OutRow::body`].
    pub body: String,
    /// See [`OutRow::state`].
    pub state: String,
    /// See [`OutRow::next_at_ms`].
    pub next_at_ms: i64,
    /// See [`OutRow::created_at_ms`].
    pub created_at_ms: i64,
}

/// A blocked number.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sms_blocked)]
pub struct BlockedRow {
    /// The number (normalised, `+62…`).
    pub phone: String,
    /// Why (the administrator's note).
    pub note: Option<String>,
    /// Who blocked it.
    pub blocked_by: String,
    /// When.
    pub blocked_at_ms: i64,
}
