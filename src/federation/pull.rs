//! Catch-up (pull): for each origin this node knows, the events after its cursor, from the
//! origin itself or, when it cannot be reached, from the hub; each verified by its signature
//! like a pushed one; a causal gap filled by fetching the whole ticket.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::client::{Federation, blocking, read_json};
use super::protocol::{self as wire, DeferReason, FeedPage, Outcome, PiiPart};
use super::{FedError, peers};
use crate::config::PeerSettings;
use crate::domain::{NodeId, Timestamp};
use crate::event_log::rotation::KeyStatement;

/// What one catch-up round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pulled {
    /// Events received.
    pub received: usize,
    /// Newly applied.
    pub accepted: usize,
    /// Refused and quarantined.
    pub rejected: usize,
    /// Still waiting for parents or keys.
    pub deferred: usize,
}

impl Pulled {
    fn add(&mut self, outcomes: &[Outcome]) {
        self.received += outcomes.len();
        for o in outcomes {
            match o {
                Outcome::Accepted { .. } => self.accepted += 1,
                Outcome::Rejected { .. } => self.rejected += 1,
                Outcome::Deferred { .. } => self.deferred += 1,
                Outcome::Duplicate { .. } => {}
            }
        }
    }
}

impl Federation {
    /// One catch-up round: for every origin this node knows (its peers), the events after the
    /// cursor, from the origin or, failing that, from the hub.
    #[tracing::instrument(name = "federation.pull", skip_all)]
    pub async fn pull_once(&self) -> Result<Pulled, FedError> {
        self.pull_round(None).await
    }

    /// The puller's round: as [`Self::pull_once`], but an origin that pushed a batch here
    /// within `pushing` is left out — it is delivering its events itself, and a pull would
    /// carry them a second time over its link while its push is still sending them.
    pub(super) async fn pull_round(&self, pushing: Option<Duration>) -> Result<Pulled, FedError> {
        let mut total = Pulled::default();
        let hub = self.members().hub();
        for origin in self.peers().into_iter().map(|p| p.id) {
            if pushing.is_some_and(|w| self.pushing(&origin, w)) {
                continue;
            }
            let mut sources = vec![origin.clone()];
            if let Some(h) = &hub {
                if h.id != origin {
                    sources.push(h.id.clone());
                }
            }
            let mut last_err = None;
            for source in &sources {
                match self.pull_origin(source, &origin).await {
                    Ok(p) => {
                        total.received += p.received;
                        total.accepted += p.accepted;
                        total.rejected += p.rejected;
                        total.deferred += p.deferred;
                        last_err = None;
                        break;
                    }
                    Err(e @ FedError::Unreachable { .. }) => last_err = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if let Some(e) = last_err {
                tracing::info!(origin = %origin, error = %e, "catch-up: origin and hub unreachable");
            }
        }
        Ok(total)
    }

    /// Pulls `origin`'s events from `source` from this node's cursor to the source's head.
    pub async fn pull_origin(&self, source: &NodeId, origin: &NodeId) -> Result<Pulled, FedError> {
        let peer = self.peer(source)?;
        let mut total = Pulled::default();
        loop {
            let (db, o) = (self.db.clone(), origin.to_string());
            let after = blocking(move || {
                let cursor = peers::cursor(&db, &o)?;
                let mut conn = db.read()?;
                Ok(super::store::contiguous_after(&mut conn, &o, cursor)?)
            })
            .await?;
            let url = format!(
                "{}?origin={}&after={after}&limit={}",
                Self::url(&peer, "/federation/v1/events"),
                origin,
                self.settings.batch_max_events
            );
            let page: FeedPage = self.get_feed(&peer, &url).await?;
            let tickets: HashMap<String, String> = page
                .events
                .iter()
                .filter_map(|e| {
                    Some((
                        e["id"].as_str()?.to_owned(),
                        e["ticket"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            let outcomes = self
                .apply_page(source, page.events, page.pii, page.key_statements)
                .await?;
            total.add(&outcomes);
            // Missing parents: fetch those tickets whole from the same source, then retry.
            let deferred: Vec<(String, String)> = outcomes
                .iter()
                .filter(|o| {
                    matches!(
                        o,
                        Outcome::Deferred {
                            reason: DeferReason::MissingParents,
                            ..
                        }
                    )
                })
                .filter_map(|o| Some((tickets.get(o.id())?.clone(), o.id().to_owned())))
                .collect();
            let mut still_deferred = false;
            if !deferred.is_empty() {
                still_deferred = !self.fill_tickets(&peer, &deferred).await?;
            }
            let advance = !still_deferred
                && !outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Deferred { reason, .. } if *reason != DeferReason::MissingParents));
            if advance && page.next_after > after {
                let (db, o, n) = (self.db.clone(), origin.to_string(), page.next_after);
                blocking(move || peers::set_cursor(&db, &o, n)).await?;
            }
            if !advance || page.next_after >= page.head || page.next_after <= after {
                break;
            }
        }
        Ok(total)
    }

    pub(super) async fn get_feed(
        &self,
        peer: &PeerSettings,
        url: &str,
    ) -> Result<FeedPage, FedError> {
        let resp = self
            .http()
            .get(url)
            .header(
                super::dictionary::HEADER,
                super::dictionary::header_value().unwrap_or("0"),
            )
            // A page holds at most 1,000 events of a few hundred compressed bytes each.
            .timeout(self.timeout_for(1000 * 400))
            .send()
            .await
            .map_err(|e| Self::unreachable(peer, &e))?;
        self.dictionary_named(&peer.id, super::client::dictionary_of(&resp));
        self.noticed(&peer.id, &resp);
        read_json(peer, resp).await
    }

    pub(super) async fn apply_page(
        &self,
        source: &NodeId,
        events: Vec<Value>,
        pii: Vec<PiiPart>,
        statements: Vec<KeyStatement>,
    ) -> Result<Vec<Outcome>, FedError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let (inbox, s) = (self.inbox.clone(), source.clone());
        let outcomes = blocking(move || {
            inbox.accept_key_statements(&s, statements, Timestamp::now());
            Ok(inbox.receive(&s, events, pii, Timestamp::now())?)
        })
        .await?;
        if outcomes.iter().any(|o| {
            matches!(
                o,
                Outcome::Deferred {
                    reason: DeferReason::UnknownOriginKeys,
                    ..
                }
            )
        }) {
            for p in &self.peers() {
                let _ = self.fetch_keys(&p.id).await;
            }
        }
        Ok(outcomes)
    }

    /// Fetches whole tickets of the deferred events from `peer` and applies them in causal
    /// order. Returns whether every deferred event is now held.
    async fn fill_tickets(
        &self,
        peer: &PeerSettings,
        deferred: &[(String, String)],
    ) -> Result<bool, FedError> {
        let events = deferred.to_vec();
        // The deferred events are not stored; ask the source for their tickets whole.
        let tickets: std::collections::BTreeSet<&str> =
            events.iter().map(|(t, _)| t.as_str()).collect();
        for ticket in tickets {
            let url = format!(
                "{}?ticket={ticket}",
                Self::url(peer, "/federation/v1/events")
            );
            let page = self.get_feed(peer, &url).await?;
            let ordered = wire::causal_order(page.events);
            self.apply_page(&peer.id, ordered, page.pii, page.key_statements)
                .await?;
        }
        let db = self.db.clone();
        blocking(move || {
            let mut conn = db.read()?;
            for (ticket, id) in &events {
                if !super::store::event_exists(&mut conn, ticket, id)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
    }
}
