//! A restored node takes its own events back before it writes (issue 25, item 4; the hold is
//! `event_log::hold`).
//!
//! ```text
//!  start with RESTORED marker ─► hold on (writes refused, /readyz 503 `restoring`)
//!        │
//!        ▼  every round (worker, or a test / `restore-check` by hand)
//!  for the hub, then every peer:  GET /federation/v1/events?origin=<me>&after=<own head>
//!        │   pages judged by the inbox with own events adopted (signature by own keys,
//!        │   chain head moved over the contiguous run)
//!        ▼
//!  caught up? = the hub answered (or, without a hub, every peer) and no source holds more
//!               of this node's chain than it does ─► hold off, marker removed, log
//! ```

use super::client::{Federation, blocking};
use super::{FedError, store};
use crate::domain::NodeId;
use crate::event_log::hold::Hold;

/// What one source holds of this node's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHead {
    /// The source (hub or peer).
    pub source: NodeId,
    /// The highest seq of this node's chain it holds, or why it could not be asked.
    pub head: Result<i64, String>,
}

/// One recovery round's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// This node's own head after the round (the last seq of its contiguous chain).
    pub own_head: i64,
    /// Each source's answer.
    pub sources: Vec<SourceHead>,
    /// Whether this node now holds its true head (as far as the sources tell).
    pub caught_up: bool,
    /// Whether this round lifted the hold.
    pub released: bool,
}

impl Recovery {
    /// Why the node still waits, for `/readyz` and the log; `None` once caught up.
    #[must_use]
    pub fn waiting_for(&self) -> Option<String> {
        if self.caught_up {
            return None;
        }
        let behind: Vec<String> = self
            .sources
            .iter()
            .map(|s| match &s.head {
                Ok(h) => format!("{} holds up to seq {h}", s.source),
                Err(e) => format!("{} unreachable ({e})", s.source),
            })
            .collect();
        Some(format!(
            "restored from a backup: this node holds its own chain up to seq {} and writes \
             nothing until it has its true head back; {}. Operator override once the missing \
             events are known to be lost: `lapor-node restore-check --release`",
            self.own_head,
            if behind.is_empty() {
                "no hub or peer configured".to_owned()
            } else {
                behind.join("; ")
            }
        ))
    }
}

impl Federation {
    /// The last seq of this node's own chain held here without a gap.
    async fn own_head(&self) -> Result<i64, FedError> {
        let (db, me) = (self.db.clone(), self.node().to_string());
        blocking(move || {
            let mut conn = db.read()?;
            Ok(store::contiguous_after(&mut conn, &me, 0)?)
        })
        .await
    }

    /// One round: asks the hub, then every peer, for this node's own events after its head and
    /// takes them back (`fetch = true`), or only asks how far each holds it (`fetch = false`,
    /// `restore-check`). When `hold` is on and the node is caught up — the hub answered (or,
    /// without a hub, every peer did) and no source holds more of its chain — the hold is
    /// lifted and its marker removed.
    #[tracing::instrument(name = "federation.recover", skip_all, fields(fetch))]
    pub async fn recover_own_chain(&self, hold: &Hold, fetch: bool) -> Result<Recovery, FedError> {
        let me = self.node().clone();
        let mut order: Vec<_> = self.peers();
        order.sort_by_key(|p| p.role != crate::config::NodeRole::Hub);
        if fetch {
            self.inbox.adopt_own_events(true);
        }
        let mut sources = Vec::with_capacity(order.len());
        for peer in &order {
            let head = self.fetch_own_from(peer, &me, fetch).await;
            if let Err(e) = &head {
                tracing::warn!(source = %peer.id, error = %e, "cannot ask for this node's own events");
            }
            sources.push(SourceHead {
                source: peer.id.clone(),
                head: head.map_err(|e| e.to_string()),
            });
        }
        let own_head = self.own_head().await?;
        let answered = |s: &SourceHead| s.head.is_ok();
        let enough = match self.settings.hub() {
            Some(h) => sources.iter().any(|s| s.source == h.id && answered(s)),
            None => sources.iter().all(answered),
        };
        let beyond = sources
            .iter()
            .any(|s| s.head.as_ref().is_ok_and(|h| *h > own_head));
        let caught_up = enough && !beyond;
        let mut r = Recovery {
            own_head,
            sources,
            caught_up,
            released: false,
        };
        if hold.is_on() {
            if caught_up && fetch {
                let h = hold.clone();
                blocking(move || {
                    h.release().map_err(|e| {
                        FedError::Db(crate::db::DbError::Unavailable(format!(
                            "cannot remove the restore marker: {e}"
                        )))
                    })
                })
                .await?;
                self.inbox.adopt_own_events(false);
                r.released = true;
                tracing::info!(
                    own_head,
                    "restored node caught up with its own chain: writing again"
                );
            } else if let Some(why) = r.waiting_for() {
                tracing::warn!(own_head, reason = %why, "restored node still holds its writes");
                hold.waiting(why);
            }
        } else if fetch {
            self.inbox.adopt_own_events(false);
        }
        Ok(r)
    }

    /// Pages of `me`'s events from `peer` after the own head, applied when `fetch`; returns the
    /// head of `me`'s chain `peer` holds.
    async fn fetch_own_from(
        &self,
        peer: &crate::config::PeerSettings,
        me: &NodeId,
        fetch: bool,
    ) -> Result<i64, FedError> {
        let mut rounds = 0;
        loop {
            let after = self.own_head().await?;
            let url = format!(
                "{}?origin={me}&after={after}&limit={}",
                Self::url(peer, "/federation/v1/events"),
                if fetch {
                    self.settings.batch_max_events
                } else {
                    1
                }
            );
            let page = self.get_feed(peer, &url).await?;
            let head = page.head;
            if !fetch || page.events.is_empty() || head <= after {
                return Ok(head);
            }
            let outcomes = self
                .apply_page(&peer.id, page.events, page.pii, page.key_statements)
                .await?;
            rounds += 1;
            // No progress (a gap this source cannot fill, or refused events): its head is
            // still reported, and another source may fill the gap.
            if self.own_head().await? <= after || rounds > 10_000 || outcomes.is_empty() {
                return Ok(head);
            }
        }
    }
}
