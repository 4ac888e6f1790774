//! This node as a member of the federation: its identity and role, its federation settings,
//! database, inbox and metrics, when each peer last contacted it, and the signals that wake
//! a peer's delivery worker or ask for a peer's keys. The client and the server share it; it
//! knows neither.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::Notify;

use super::FedError;
use super::inbox::Inbox;
use super::peers::{self, PeerStatus};
use super::protocol::{KeyInfo, NodeInfo};
use crate::config::{FederationSettings, NodeRole, Settings};
use crate::db::Db;
use crate::domain::{NodeId, ProvinceCode, Timestamp};
use crate::metrics::Metrics;

/// How often a healthy peer's contact is written to `peers` (the operator view's
/// last-contact time is this precise).
const CONTACT_RECORD_MS: i64 = 1000;

/// This node's federation state (cheap to clone). Dereferences to its fields for the
/// federation wing's modules.
#[derive(Debug, Clone)]
pub struct Member(Arc<State>);

/// The fields of a [`Member`].
#[derive(Debug)]
pub struct State {
    pub(super) db: Db,
    pub(super) node: NodeId,
    pub(super) role: NodeRole,
    pub(super) province: ProvinceCode,
    pub(super) settings: FederationSettings,
    pub(super) inbox: Inbox,
    pub(super) metrics: Arc<Metrics>,
    /// One per peer: wakes its delivery worker.
    wake: HashMap<NodeId, Arc<Notify>>,
    /// When each peer's contact was last recorded (ms), while no failure has been recorded
    /// since: further contacts within [`CONTACT_RECORD_MS`] need no write.
    contacts: Mutex<HashMap<NodeId, i64>>,
    /// What fetches a peer's signing keys when events of it arrive unjudgeable (set by the
    /// client; the server only asks).
    keys_fetcher: OnceLock<KeysFetcher>,
}

/// A callback that fetches a peer's keys.
struct KeysFetcher(Box<dyn Fn(NodeId) + Send + Sync>);

impl std::fmt::Debug for KeysFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeysFetcher")
    }
}

/// A [`Member`] that does not keep it alive (for callbacks it holds itself).
#[derive(Debug, Clone)]
pub struct WeakMember(Weak<State>);

impl WeakMember {
    /// The member, while it lives.
    #[must_use]
    pub fn upgrade(&self) -> Option<Member> {
        self.0.upgrade().map(Member)
    }
}

impl std::ops::Deref for Member {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

impl Member {
    /// The federation state of the node `settings` describe, when `[federation]` is
    /// configured. Counters that alerts watch are created at 0 for every peer.
    #[must_use]
    pub fn new(settings: &Settings, db: Db, metrics: Arc<Metrics>) -> Option<Self> {
        let fed = settings.raw.federation.clone()?;
        // Counters an alert is written against exist from the start, at 0: "absent" and
        // "never happened" look the same to a scrape otherwise.
        for p in &fed.peers {
            for name in [
                "lapor_federation_key_changes_refused_total",
                "lapor_federation_delivered_total",
            ] {
                metrics.inc(name, &[("peer", p.id.as_str())], 0);
            }
        }
        let wake = fed
            .peers
            .iter()
            .map(|p| (p.id.clone(), Arc::new(Notify::new())))
            .collect();
        Some(Self(Arc::new(State {
            inbox: Inbox::of_node(settings, &fed.peers, db.clone(), metrics.clone()),
            db,
            node: settings.node_id().clone(),
            role: settings.raw.node.role,
            province: settings.raw.node.province.clone(),
            settings: fed,
            metrics,
            wake,
            contacts: Mutex::new(HashMap::new()),
            keys_fetcher: OnceLock::new(),
        })))
    }

    /// The federation settings.
    #[must_use]
    pub fn settings(&self) -> &FederationSettings {
        &self.settings
    }

    /// This node's id.
    #[must_use]
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The inbox.
    #[must_use]
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// The metrics registry.
    #[must_use]
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The database.
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The operator view of every configured peer.
    pub fn status(&self, now: Timestamp) -> Result<Vec<PeerStatus>, FedError> {
        peers::status(&self.db, &self.node, &self.settings.peers, now)
    }

    /// Whether `node` is one of this node's peers (a member of its federation).
    #[must_use]
    pub fn is_peer(&self, node: &NodeId) -> bool {
        self.settings.peer(node).is_some()
    }

    /// Whether `node` is the federation's hub.
    #[must_use]
    pub fn is_hub(&self, node: &NodeId) -> bool {
        (self.role == NodeRole::Hub && node == &self.node)
            || self
                .settings
                .peer(node)
                .is_some_and(|p| p.role == NodeRole::Hub)
    }

    /// This node's `GET /federation/v1/node` answer.
    pub fn node_info(&self) -> Result<NodeInfo, FedError> {
        let mut conn = self.db.read()?;
        let keys = crate::event_log::keys::own_keys(&mut conn, &self.node)?;
        Ok(NodeInfo {
            id: self.node.to_string(),
            role: self.role,
            province: self.province.to_string(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            keys: keys.into_iter().map(KeyInfo::from).collect(),
        })
    }

    /// Called when a peer contacts us: its backoff resets and its queue wakes. A peer in good
    /// standing whose contact was recorded within the last second is not recorded again (no
    /// write per request on a busy link).
    pub fn contact_from(&self, peer: &NodeId, now: Timestamp) {
        if !self.is_peer(peer) {
            return;
        }
        if let Ok(seen) = self.contacts.lock() {
            if seen
                .get(peer)
                .is_some_and(|t| now.millis().saturating_sub(*t) < CONTACT_RECORD_MS)
            {
                return;
            }
        }
        let recorded = peers::contact(&self.db, peer, now);
        if recorded.is_ok() {
            if let Ok(mut seen) = self.contacts.lock() {
                seen.insert(peer.clone(), now.millis());
            }
        }
        match recorded {
            Ok(true) => self.wake(peer),
            Ok(false) => {}
            Err(e) => tracing::warn!(peer = %peer, error = %e, "cannot record peer contact"),
        }
    }

    /// A failure was recorded for `peer`: its next contact is written (and resets the backoff).
    pub(super) fn forget_contact(&self, peer: &NodeId) {
        if let Ok(mut seen) = self.contacts.lock() {
            seen.remove(peer);
        }
    }

    /// Wakes `peer`'s delivery worker.
    pub fn wake(&self, peer: &NodeId) {
        if let Some(n) = self.wake.get(peer) {
            n.notify_one();
        }
    }

    /// Wakes every delivery worker (new outbox rows).
    pub fn wake_all(&self) {
        for n in self.wake.values() {
            n.notify_one();
        }
    }

    /// The signal that wakes `peer`'s delivery worker.
    pub(super) fn waker(&self, peer: &NodeId) -> Arc<Notify> {
        self.wake.get(peer).cloned().unwrap_or_default()
    }

    /// A handle that does not keep this member alive.
    #[must_use]
    pub fn downgrade(&self) -> WeakMember {
        WeakMember(Arc::downgrade(&self.0))
    }

    /// Sets what fetches a peer's signing keys (the client does, once).
    pub fn on_keys_wanted(&self, fetch: impl Fn(NodeId) + Send + Sync + 'static) {
        let _ = self.keys_fetcher.set(KeysFetcher(Box::new(fetch)));
    }

    /// Asks for `peer`'s signing keys to be fetched: events of an origin whose keys are not
    /// pinned yet arrived.
    pub fn want_keys(&self, peer: &NodeId) {
        if !self.is_peer(peer) {
            return;
        }
        if let Some(f) = self.keys_fetcher.get() {
            (f.0)(peer.clone());
        }
    }
}
