//! What a member may pull (`GET /federation/v1/events`): an origin's events after a cursor, or
//! one ticket's events whole (to fill a causal gap). The hub may hold every event (public
//! parts); any other node only the events of tickets it takes part in. The personal-data part
//! rides along only as [`crate::domain::replication::entitled_to_pii`] allows.

use diesel::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::FedError;
use super::node::Member;
use super::protocol::FeedPage;
use crate::db::schema::{events, ticket_participants, tickets};
use crate::domain::NodeId;

/// The feed's query: `origin` (with `after`, `limit`) or `ticket`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// The origin whose events are wanted.
    pub origin: Option<String>,
    /// The seq after which to start.
    pub after: Option<i64>,
    /// Events per page (1–1,000; default 500).
    pub limit: Option<i64>,
    /// A ticket wanted whole.
    pub ticket: Option<String>,
}

/// Why a feed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedRefusal {
    /// Neither an origin nor a ticket.
    #[error("give origin (with after) or ticket")]
    NoSubject,
    /// No event of that ticket is held here.
    #[error("no events of ticket {0} here")]
    UnknownTicket(String),
    /// The requester takes no part in that ticket.
    #[error("{0} takes no part in that ticket")]
    NotAParticipant(String),
}

/// A feed request that failed: refused, or the node failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Refused (the requester's error).
    #[error(transparent)]
    Refused(#[from] FeedRefusal),
    /// This node failed.
    #[error(transparent)]
    Failed(#[from] FedError),
}

impl From<diesel::result::Error> for FeedError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl From<crate::db::DbError> for FeedError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Failed(e.into())
    }
}

/// The page of `q` for `requester`.
pub fn page(member: &Member, requester: &NodeId, q: &FeedQuery) -> Result<FeedPage, FeedError> {
    let mut conn = member.db().read()?;
    let to_hub = member.is_hub(requester);
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let rows: Vec<(String, i64, String, String)>;
    let (mut next_after, mut head) = (0, 0);
    if let Some(ticket) = &q.ticket {
        let held: i64 = events::table
            .filter(events::ticket.eq(ticket))
            .count()
            .get_result(&mut conn)?;
        if held == 0 {
            return Err(FeedRefusal::UnknownTicket(ticket.clone()).into());
        }
        if !to_hub && !super::outbox::is_participant(&mut conn, ticket, requester.as_str())? {
            return Err(FeedRefusal::NotAParticipant(requester.to_string()).into());
        }
        rows = events::table
            .filter(events::ticket.eq(ticket))
            .order((
                events::stored_at_ms.asc(),
                events::origin.asc(),
                events::seq.asc(),
            ))
            .select((events::id, events::seq, events::ticket, events::raw))
            .load(&mut conn)?;
    } else {
        let Some(origin) = &q.origin else {
            return Err(FeedRefusal::NoSubject.into());
        };
        let after = q.after.unwrap_or(0).max(0);
        let scanned: Vec<(String, i64, String, String)> = events::table
            .filter(events::origin.eq(origin))
            .filter(events::seq.gt(after))
            .order(events::seq.asc())
            .limit(limit)
            .select((events::id, events::seq, events::ticket, events::raw))
            .load(&mut conn)?;
        head = events::table
            .filter(events::origin.eq(origin))
            .select(diesel::dsl::max(events::seq))
            .first::<Option<i64>>(&mut conn)?
            .unwrap_or(0);
        next_after = scanned.last().map_or(after.max(head), |r| r.1);
        rows = if to_hub {
            scanned
        } else {
            let tickets_of: Vec<String> = scanned.iter().map(|r| r.2.clone()).collect();
            let mine: std::collections::HashSet<String> = ticket_participants::table
                .filter(ticket_participants::node.eq(requester.as_str()))
                .filter(ticket_participants::ticket.eq_any(&tickets_of))
                .select(ticket_participants::ticket)
                .load::<String>(&mut conn)?
                .into_iter()
                .collect();
            scanned
                .into_iter()
                .filter(|r| mine.contains(&r.2))
                .collect()
        };
    }
    let mut page = FeedPage {
        next_after,
        head,
        ..FeedPage::default()
    };
    for (id, _, ticket, raw) in rows {
        let v: Value = serde_json::from_str(&raw).map_err(|e| FedError::BadAnswer {
            peer: "local log".into(),
            cause: e.to_string(),
        })?;
        let created = v.get("kind").and_then(Value::as_str) == Some("created");
        if created {
            let held: Option<(String, bool)> = tickets::table
                .find(&ticket)
                .select((tickets::handling_node, tickets::anonymous))
                .first(&mut conn)
                .optional()?;
            let entitled = held.is_some_and(|(handler, anonymous)| {
                crate::domain::replication::entitled_to_pii(
                    requester.as_str(),
                    to_hub,
                    &handler,
                    anonymous,
                )
            });
            if entitled {
                if let Some(p) = super::outbox::pii_part(&mut conn, &ticket, &id)? {
                    page.pii.push(p);
                }
            }
        }
        page.events.push(v);
    }
    page.key_statements = crate::event_log::rotation::introducing(&mut conn, &page.events)?;
    Ok(page)
}
