//! Rosters travel between members: every federation answer names the version its node holds
//! ([`VERSION_HEADER`]); a node that sees a higher one fetches it from that node
//! (`GET /federation/v1/roster?after=N`), whoever that is — the signature is what counts.
//! The catch-up loop also asks the hub each round, and applies a roster an operator stored
//! beside the running node (`lapor-node roster apply`).
//!
//! ```text
//!   answer from peer P ── lapor-roster-version: 7 ──► noticed (held 6) ──► fetch_roster(P)
//!   puller round ──► reload_roster (database) ──► fetch_roster(hub)        │
//!                                                        Member::offer_roster ◄┘
//! ```

use std::sync::atomic::Ordering;

use super::FedError;
use super::client::{Federation, blocking, read_json};
use super::roster::{SignedRoster, VERSION_HEADER};
use crate::domain::NodeId;

impl Federation {
    /// An answer from `peer` arrived: when it names a roster version higher than the one
    /// held, the roster is fetched from `peer` in the background.
    pub(super) fn noticed(&self, peer: &NodeId, resp: &reqwest::Response) {
        let Some(named) = resp
            .headers()
            .get(VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
        else {
            return;
        };
        if named <= self.members().version() || self.settings().roster_key.is_none() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (this, peer) = (self.clone(), peer.clone());
        rt.spawn(async move {
            if let Err(e) = this.fetch_roster(&peer).await {
                tracing::warn!(peer = %peer, error = %e, "roster fetch failed");
            }
        });
    }

    /// Fetches the roster `peer` holds when it is newer than this node's, and offers it
    /// ([`super::Member::offer_roster`]). Returns the version applied, if one was. One fetch
    /// runs at a time; a call while another runs does nothing.
    #[tracing::instrument(name = "federation.fetch_roster", skip_all, fields(peer = %peer_id))]
    pub async fn fetch_roster(&self, peer_id: &NodeId) -> Result<Option<i64>, FedError> {
        if self.roster_fetching.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let r = self.fetch_roster_now(peer_id).await;
        self.roster_fetching.store(false, Ordering::Release);
        r
    }

    async fn fetch_roster_now(&self, peer_id: &NodeId) -> Result<Option<i64>, FedError> {
        let peer = self.peer(peer_id)?;
        let held = self.members().version();
        let mut url = Self::url(&peer, "/federation/v1/roster");
        url.push_str(&format!("?after={held}"));
        let resp = self
            .http()
            .get(url)
            .send()
            .await
            .map_err(|e| Self::unreachable(&peer, &e))?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let signed: SignedRoster = read_json(&peer, resp).await?;
        let (this, from) = (self.clone(), peer.id.to_string());
        let accepted = blocking(move || {
            Ok(this
                .member()
                .offer_roster(&signed, &from)
                .map(|a| a.roster.version))
        })
        .await?;
        match accepted {
            Ok(v) => {
                self.renew_client();
                Ok(Some(v))
            }
            Err(super::roster_store::AcceptError::Refused(e)) => Err(FedError::BadAnswer {
                peer: peer.id.to_string(),
                cause: format!("roster refused ({}): {e}", e.code()),
            }),
            Err(super::roster_store::AcceptError::Db(e)) => Err(FedError::Db(e)),
        }
    }

    /// The catch-up loop's roster step: a roster stored beside the node is applied, and the
    /// hub is asked for a newer one.
    pub(super) async fn roster_round(&self) {
        let this = self.clone();
        if let Err(e) = blocking(move || this.member().reload_roster()).await {
            tracing::warn!(error = %e, "cannot reload the roster held");
        }
        if self.settings().roster_key.is_none() {
            return;
        }
        if let Some(hub) = self.members().hub() {
            if let Err(e) = self.fetch_roster(&hub.id).await {
                tracing::debug!(error = %e, "roster not fetched from the hub");
            }
        }
    }
}
