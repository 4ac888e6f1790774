//! Rows of the `events` and `chain_heads` tables.

use diesel::prelude::*;

use crate::db::schema::{chain_heads, events};

/// One stored event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub struct EventRow {
    /// Event id.
    pub id: String,
    /// Writer node.
    pub origin: String,
    /// Position in the writer's chain.
    pub seq: i64,
    /// Writer's previous event.
    pub prev: Option<String>,
    /// Ticket id.
    pub ticket: String,
    /// Change kind.
    pub kind: String,
    /// Event time, ms since the epoch.
    pub at_ms: i64,
    /// The JSON object as written or received.
    pub raw: String,
    /// Signing key id (signed-log layer).
    pub key_id: Option<String>,
    /// Signature (signed-log layer).
    pub sig: Option<String>,
    /// When this node stored it.
    pub stored_at_ms: i64,
}

crate::db::sqlite_insert!(
    EventRow,
    events {
        id,
        origin,
        seq,
        prev,
        ticket,
        kind,
        at_ms,
        raw,
        key_id,
        sig,
        stored_at_ms,
    }
);

/// The head of an origin's chain.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = chain_heads)]
pub struct ChainHead {
    /// The origin node.
    pub origin: String,
    /// Its latest seq stored here.
    pub seq: i64,
    /// The id of that event.
    pub last_id: String,
}
