//! Delivery and catch-up: the federation side of a node.
//!
//! - [`Federation::deliver_once`] sends one round of a destination's outbox: capped batches
//!   (events and bytes), zstd-compressed, several in flight, over mTLS; acknowledged rows leave
//!   the outbox, refused rows stay marked with the reason, deferred rows are sent again later.
//!   A failed round persists exponential backoff with jitter (capped) in `peers`.
//! - [`Federation::pull_once`] catches up: for each known origin, the events after this
//!   node's cursor, from the origin itself or, when it cannot be reached, from the hub; each is
//!   verified by its signature like a pushed one.
//! - [`Federation::fetch_keys`] pins a peer's signing keys from `GET /federation/v1/node`.
//! - [`Federation::run`] runs one delivery worker per peer and the catch-up loop.

pub mod peers;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::api::metrics::Metrics;
use crate::config::{FederationSettings, NodeRole, PeerSettings, Settings};
use crate::db::{Db, DbError};
use crate::domain::{NodeId, ProvinceCode, Timestamp};
use crate::inbox::{Inbox, InboxError, Outcome, PiiPart};
use crate::outbox::store as outbox;
use crate::tls::config::TlsFiles;

pub use peers::PeerStatus;
pub use wire::{Batch, FeedPage, NodeInfo};

/// A federation failure.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    /// The peer could not be reached or did not answer in time.
    #[error("{peer} unreachable: {cause}")]
    Unreachable {
        /// The peer.
        peer: String,
        /// The transport error.
        cause: String,
    },
    /// The peer answered with an error.
    #[error("{peer} answered {status}: {body}")]
    Refused {
        /// The peer.
        peer: String,
        /// HTTP status.
        status: u16,
        /// Its body (error JSON).
        body: String,
    },
    /// The peer's answer could not be understood.
    #[error("{peer} answered something unreadable: {cause}")]
    BadAnswer {
        /// The peer.
        peer: String,
        /// What is wrong.
        cause: String,
    },
    /// The peer's keys changed without a rotation this node can accept.
    #[error("{peer}: {message}")]
    KeyChange {
        /// The peer.
        peer: String,
        /// What changed.
        message: String,
    },
    /// Not a configured peer.
    #[error("{0} is not a configured peer")]
    UnknownPeer(String),
    /// Local database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Applying received events failed locally.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl From<diesel::result::Error> for FedError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Events sent.
    pub sent: usize,
    /// Acknowledged (accepted or duplicate) and removed from the outbox.
    pub acknowledged: usize,
    /// Deferred by the receiver (kept, sent again).
    pub deferred: usize,
    /// Refused by the receiver (kept, marked).
    pub refused: usize,
}

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

/// The federation side of one node (cheap to clone).
#[derive(Debug, Clone)]
pub struct Federation(Arc<Inner>);

/// Shared state.
#[derive(Debug)]
pub struct Inner {
    db: Db,
    node: NodeId,
    role: NodeRole,
    province: ProvinceCode,
    settings: FederationSettings,
    client: reqwest::Client,
    inbox: Inbox,
    metrics: Arc<Metrics>,
    wake: HashMap<NodeId, Arc<Notify>>,
    /// When each peer's contact was last recorded (ms), while no failure has been recorded
    /// since: further contacts within [`CONTACT_RECORD_MS`] need no write.
    contacts: std::sync::Mutex<HashMap<NodeId, i64>>,
}

/// How often a healthy peer's contact is written to `peers` (the operator view's
/// last-contact time is this precise).
const CONTACT_RECORD_MS: i64 = 1000;

impl std::ops::Deref for Federation {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FedError> + Send + 'static,
) -> Result<T, FedError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FedError::Db(DbError::Unavailable(format!("blocking task failed: {e}"))))?
}

/// zstd-compresses a body.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).unwrap_or_else(|_| bytes.to_vec())
}

impl Federation {
    /// The federation of a node, when `[federation]` is configured.
    pub fn new(
        settings: &Settings,
        db: Db,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Self>, FedError> {
        let Some(fed) = settings.raw.federation.clone() else {
            return Ok(None);
        };
        let files = TlsFiles {
            ca: fed.ca_file.clone(),
            cert: fed.cert_file.clone(),
            key: fed.key_file.clone(),
        };
        let resolve: Vec<(String, std::net::SocketAddr)> = fed
            .peers
            .iter()
            .filter_map(|p| p.address.map(|a| (p.id.to_string(), a)))
            .collect();
        let client = crate::tls::config::client(
            &files,
            &resolve,
            Duration::from_secs(fed.request_timeout_secs),
        )?;
        let node = settings.node_id().clone();
        let wake = fed
            .peers
            .iter()
            .map(|p| (p.id.clone(), Arc::new(Notify::new())))
            .collect();
        Ok(Some(Self(Arc::new(Inner {
            inbox: Inbox::new(
                db.clone(),
                node.clone(),
                metrics.clone(),
                fed.peers
                    .iter()
                    .map(|p| (p.id.to_string(), p.province.clone()))
                    .chain([(node.to_string(), settings.raw.node.province.clone())])
                    .collect(),
            ),
            db,
            node,
            role: settings.raw.node.role,
            province: settings.raw.node.province.clone(),
            settings: fed,
            client,
            metrics,
            wake,
            contacts: std::sync::Mutex::new(HashMap::new()),
        }))))
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

    fn peer(&self, id: &NodeId) -> Result<&PeerSettings, FedError> {
        self.settings
            .peer(id)
            .ok_or_else(|| FedError::UnknownPeer(id.to_string()))
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

    fn url(peer: &PeerSettings, path: &str) -> String {
        let mut u = peer.url.clone();
        u.set_path(path);
        u.to_string()
    }

    fn unreachable(peer: &PeerSettings, e: &reqwest::Error) -> FedError {
        FedError::Unreachable {
            peer: peer.id.to_string(),
            cause: error_chain(e),
        }
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
            keys: keys.into_iter().map(wire::KeyInfo::from).collect(),
        })
    }

    /// Fetches `peer`'s node information over mTLS and pins its signing keys: unknown keys of
    /// a peer with no pinned keys yet are pinned; a known key id with other key material, or a
    /// new key while others are pinned, is refused and reported (a rotation is pinned by the
    /// operator, see `docs/PROTOCOL.md`). Returns the number of keys newly pinned.
    #[tracing::instrument(name = "federation.fetch_keys", skip_all, fields(peer = %peer_id))]
    pub async fn fetch_keys(&self, peer_id: &NodeId) -> Result<usize, FedError> {
        let (peer, info) = self.node_info_of(peer_id).await?;
        let this = self.clone();
        let result = blocking(move || peers::pin_keys(&this.db, &peer.id, &info.keys)).await;
        if let Err(FedError::KeyChange { message, .. }) = &result {
            self.metrics.inc(
                "lapor_federation_key_changes_refused_total",
                &[("peer", peer_id.as_str())],
                1,
            );
            tracing::error!(peer = %peer_id, %message, "signing key change refused");
            let (db, p, m) = (self.db.clone(), peer_id.clone(), message.clone());
            let _ = blocking(move || peers::record_error(&db, &p, &m)).await;
        }
        result
    }

    /// `GET /federation/v1/node` of a configured peer, checked to answer as that peer.
    async fn node_info_of(&self, peer_id: &NodeId) -> Result<(PeerSettings, NodeInfo), FedError> {
        let peer = self.peer(peer_id)?.clone();
        let resp = self
            .client
            .get(Self::url(&peer, "/federation/v1/node"))
            .send()
            .await
            .map_err(|e| Self::unreachable(&peer, &e))?;
        let info: NodeInfo = read_json(&peer, resp).await?;
        if info.id != peer.id.as_str() {
            return Err(FedError::BadAnswer {
                peer: peer.id.to_string(),
                cause: format!("answered as {}", info.id),
            });
        }
        Ok((peer, info))
    }

    /// An operator accepts `key_id` for `peer_id`: the peer is asked for its keys over mTLS
    /// (its certificate proves who answers) and the one with that id is pinned, whatever the
    /// automatic pinning would say — for a rotation the operator has checked with the peer's
    /// operators. Returns the key and whether it was newly pinned.
    pub async fn pin_peer_key(
        &self,
        peer_id: &NodeId,
        key_id: &str,
    ) -> Result<(wire::KeyInfo, bool), FedError> {
        let (peer, info) = self.node_info_of(peer_id).await?;
        let Some(key) = info.keys.iter().find(|k| k.id == key_id).cloned() else {
            let offered: Vec<&str> = info.keys.iter().map(|k| k.id.as_str()).collect();
            return Err(FedError::KeyChange {
                peer: peer.id.to_string(),
                message: format!(
                    "does not offer key {key_id} (it offers: {})",
                    offered.join(", ")
                ),
            });
        };
        let (db, p, k) = (self.db.clone(), peer.id.clone(), key.clone());
        let added = blocking(move || peers::pin_by_operator(&db, &p, &k)).await?;
        tracing::warn!(peer = %peer.id, key = %key.id, added, "signing key pinned by an operator");
        Ok((key, added))
    }

    /// Fetches and pins the keys of every configured peer; returns the peers that could not
    /// be reached or whose keys were refused, with the reason.
    pub async fn fetch_all_keys(&self) -> Vec<(NodeId, String)> {
        let mut failed = Vec::new();
        for p in &self.settings.peers {
            if let Err(e) = self.fetch_keys(&p.id).await {
                failed.push((p.id.clone(), e.to_string()));
            }
        }
        failed
    }

    /// Called when a peer contacts us: its backoff resets and its queue wakes. A peer in good
    /// standing whose contact was recorded within the last second is not recorded again (no
    /// write per request on a busy link).
    pub fn contact_from(&self, peer: &NodeId, now: Timestamp) {
        if self.settings.peer(peer).is_none() {
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
            Ok(true) => {
                if let Some(n) = self.wake.get(peer) {
                    n.notify_one();
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(peer = %peer, error = %e, "cannot record peer contact"),
        }
    }

    /// A failure was recorded for `peer`: its next contact is written (and resets the backoff).
    fn forget_contact(&self, peer: &NodeId) {
        if let Ok(mut seen) = self.contacts.lock() {
            seen.remove(peer);
        }
    }

    /// Wakes every delivery worker (new outbox rows).
    pub fn wake_all(&self) {
        for n in self.wake.values() {
            n.notify_one();
        }
    }

    /// One delivery round to `dest`: the outbox rows pending when each batch is built, streamed
    /// through a window of `in_flight` concurrent batches — as soon as one is answered its rows
    /// are acknowledged (or marked refused) and the next batch goes out, so neither side waits
    /// for the slowest batch of a group. Deferred rows stay for the next round. The round stops
    /// sending at the first transport error, settles the batches still in flight and returns
    /// that error (the peer's backoff is recorded).
    #[tracing::instrument(name = "federation.deliver", skip_all, fields(peer = %dest))]
    pub async fn deliver_once(&self, dest: &NodeId) -> Result<Delivered, FedError> {
        use futures_util::StreamExt as _;
        use futures_util::future::BoxFuture;
        /// What finished in the window.
        enum Step {
            /// The next batch was built (or the queue is exhausted, or reading it failed).
            Built(Result<Vec<wire::Built>, FedError>),
            /// A batch was answered (or its sending failed).
            Answered(wire::Built, Result<Vec<Outcome>, FedError>),
            /// A batch's answer was recorded in the outbox.
            Settled(Result<Delivered, FedError>),
        }
        let peer = self.peer(dest)?.clone();
        let cap = self.settings.batch_max_events;
        let max_bytes = self.settings.batch_max_bytes;
        let window = self.settings.in_flight.max(1);
        let limit = i64::try_from(cap).unwrap_or(i64::MAX);
        let build = |after: i64| -> BoxFuture<'static, Step> {
            let (db, d) = (self.db.clone(), dest.to_string());
            Box::pin(async move {
                Step::Built(
                    blocking(move || wire::build_batches(&db, &d, after, limit, cap, max_bytes))
                        .await,
                )
            })
        };
        let mut after = 0i64;
        let mut building = true;
        let mut sending = 0usize;
        let mut exhausted = false;
        let mut first_err: Option<FedError> = None;
        let mut report = Delivered::default();
        let mut steps = futures_util::stream::FuturesUnordered::<BoxFuture<'_, Step>>::new();
        steps.push(build(after));
        while let Some(step) = steps.next().await {
            match step {
                Step::Built(Ok(mut built)) if !built.is_empty() => {
                    building = false;
                    let batch = built.swap_remove(0);
                    after = batch
                        .rows
                        .iter()
                        .map(|(row, _)| *row)
                        .max()
                        .unwrap_or(after);
                    sending += 1;
                    let peer = &peer;
                    steps.push(Box::pin(async move {
                        let answer = self.send_batch(peer, &batch).await;
                        Step::Answered(batch, answer)
                    }));
                }
                Step::Built(Ok(_)) => {
                    building = false;
                    exhausted = true;
                }
                Step::Built(Err(e)) | Step::Settled(Err(e)) => {
                    building = false;
                    first_err.get_or_insert(e);
                }
                Step::Answered(batch, Ok(results)) => {
                    sending -= 1;
                    report.sent += batch.rows.len();
                    steps.push(Box::pin(async move {
                        Step::Settled(self.settle_batch(dest, &batch, &results).await)
                    }));
                }
                Step::Answered(_, Err(e)) => {
                    sending -= 1;
                    first_err.get_or_insert(e);
                }
                Step::Settled(Ok(settled)) => {
                    report.acknowledged += settled.acknowledged;
                    report.refused += settled.refused;
                    report.deferred += settled.deferred;
                }
            }
            // Build the next batch while the window has room: one build at a time (each
            // starts after the rows the previous one took).
            if !building && !exhausted && first_err.is_none() && sending < window {
                building = true;
                steps.push(build(after));
            }
        }
        drop(steps);
        let now = Timestamp::now();
        let (db, d) = (self.db.clone(), dest.clone());
        let failed = first_err.as_ref().map(ToString::to_string);
        let settings = self.settings.clone();
        let delivered = report.acknowledged;
        if failed.is_some() {
            self.forget_contact(dest);
        }
        if failed.is_some() || report.sent > 0 {
            blocking(move || match failed {
                None => peers::success(&db, &d, now, delivered),
                Some(msg) => peers::failure(&db, &d, now, &msg, &settings),
            })
            .await?;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Applies a peer's answer to one batch: acknowledged rows leave the outbox, refused rows
    /// are marked with the reason, the rest (deferred or unanswered) stay.
    async fn settle_batch(
        &self,
        dest: &NodeId,
        batch: &wire::Built,
        results: &[Outcome],
    ) -> Result<Delivered, FedError> {
        let by_id: HashMap<&str, &Outcome> = results.iter().map(|o| (o.id(), o)).collect();
        let mut acks = Vec::new();
        let mut refusals = Vec::new();
        let mut settled = Delivered::default();
        for (row, event_id) in &batch.rows {
            match by_id.get(event_id.as_str()) {
                Some(o) if o.acknowledged() => acks.push(*row),
                Some(Outcome::Rejected { reason, detail, .. }) => {
                    refusals.push((*row, format!("{reason}: {detail}")));
                }
                _ => settled.deferred += 1,
            }
        }
        settled.acknowledged = acks.len();
        settled.refused = refusals.len();
        let db = self.db.clone();
        blocking(move || {
            db.write(move |c| {
                outbox::acknowledge(c, &acks)?;
                for (row, reason) in &refusals {
                    outbox::refuse(c, *row, reason)?;
                }
                Ok::<_, FedError>(())
            })
        })
        .await?;
        self.metrics.inc(
            "lapor_federation_delivered_total",
            &[("peer", dest.as_str())],
            u64::try_from(settled.acknowledged).unwrap_or(0),
        );
        if settled.refused > 0 {
            self.metrics.inc(
                "lapor_federation_refused_by_peer_total",
                &[("peer", dest.as_str())],
                u64::try_from(settled.refused).unwrap_or(0),
            );
        }
        Ok(settled)
    }

    async fn send_batch(
        &self,
        peer: &PeerSettings,
        batch: &wire::Built,
    ) -> Result<Vec<Outcome>, FedError> {
        let resp = self
            .client
            .post(Self::url(peer, "/federation/v1/events"))
            .header("content-type", "application/json")
            .header("content-encoding", "zstd")
            .body(batch.body.clone())
            .send()
            .await
            .map_err(|e| Self::unreachable(peer, &e))?;
        let answer: wire::BatchAnswer = read_json(peer, resp).await?;
        if answer.batch != batch.id {
            return Err(FedError::BadAnswer {
                peer: peer.id.to_string(),
                cause: format!(
                    "answered for batch {} instead of {}",
                    answer.batch, batch.id
                ),
            });
        }
        Ok(answer.results)
    }

    /// Delivers to `dest` until its queue holds nothing more that can be delivered now.
    /// Returns the total; stops at the first transport error.
    pub async fn drain(&self, dest: &NodeId) -> Result<Delivered, FedError> {
        let mut total = Delivered::default();
        loop {
            let r = self.deliver_once(dest).await?;
            total.sent += r.sent;
            total.acknowledged += r.acknowledged;
            total.deferred += r.deferred;
            total.refused += r.refused;
            if r.acknowledged == 0 {
                return Ok(total);
            }
        }
    }

    /// One catch-up round: for every origin this node knows (its peers), the events after the
    /// cursor, from the origin or, failing that, from the hub.
    #[tracing::instrument(name = "federation.pull", skip_all)]
    pub async fn pull_once(&self) -> Result<Pulled, FedError> {
        let mut total = Pulled::default();
        let hub = self.settings.hub().cloned();
        for origin in self.settings.peers.iter().map(|p| p.id.clone()) {
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
        let peer = self.peer(source)?.clone();
        let mut total = Pulled::default();
        loop {
            let (db, o) = (self.db.clone(), origin.to_string());
            let after = blocking(move || peers::cursor(&db, &o)).await?;
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
            let outcomes = self.apply_page(source, page.events, page.pii).await?;
            total.add(&outcomes);
            // Missing parents: fetch those tickets whole from the same source, then retry.
            let deferred: Vec<(String, String)> = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Deferred { reason, .. } if reason == "missing_parents"))
                .filter_map(|o| Some((tickets.get(o.id())?.clone(), o.id().to_owned())))
                .collect();
            let mut still_deferred = false;
            if !deferred.is_empty() {
                still_deferred = !self.fill_tickets(&peer, &deferred).await?;
            }
            let advance = !still_deferred
                && !outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Deferred { reason, .. } if reason != "missing_parents"));
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

    async fn get_feed(&self, peer: &PeerSettings, url: &str) -> Result<FeedPage, FedError> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| Self::unreachable(peer, &e))?;
        read_json(peer, resp).await
    }

    async fn apply_page(
        &self,
        source: &NodeId,
        events: Vec<Value>,
        pii: Vec<PiiPart>,
    ) -> Result<Vec<Outcome>, FedError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let (inbox, s) = (self.inbox.clone(), source.clone());
        let outcomes =
            blocking(move || Ok(inbox.receive(&s, events, pii, Timestamp::now())?)).await?;
        if outcomes.iter().any(
            |o| matches!(o, Outcome::Deferred { reason, .. } if reason == "unknown_origin_keys"),
        ) {
            for p in &self.settings.peers {
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
            self.apply_page(&peer.id, ordered, page.pii).await?;
        }
        let db = self.db.clone();
        blocking(move || {
            let mut conn = db.read()?;
            for (ticket, id) in &events {
                if !crate::inbox::store::event_exists(&mut conn, ticket, id)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
    }

    /// Delivery state of every peer, for operators.
    pub fn status(&self, now: Timestamp) -> Result<Vec<PeerStatus>, FedError> {
        peers::status(&self.db, &self.settings.peers, now)
    }

    /// Runs the delivery workers (one per peer) and the catch-up loop until the task is
    /// dropped.
    pub async fn run(self) {
        let mut tasks = Vec::new();
        for p in &self.settings.peers {
            let (this, id) = (self.clone(), p.id.clone());
            tasks.push(tokio::spawn(async move { this.worker(id).await }));
        }
        let this = self.clone();
        tasks.push(tokio::spawn(async move { this.puller().await }));
        let _guard = AbortOnDrop(tasks);
        std::future::pending::<()>().await;
    }

    async fn worker(self, dest: NodeId) {
        let wake = self.wake.get(&dest).cloned().unwrap_or_default();
        let idle = Duration::from_millis(500);
        let mut keys_pinned = false;
        loop {
            let now = Timestamp::now();
            let (db, d) = (self.db.clone(), dest.clone());
            let wait_ms = blocking(move || peers::wait_ms(&db, &d, now))
                .await
                .unwrap_or(1000);
            if wait_ms > 0 {
                let sleep = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1000));
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = wake.notified() => {}
                }
                continue;
            }
            if !keys_pinned {
                match self.fetch_keys(&dest).await {
                    Ok(_) => keys_pinned = true,
                    Err(e @ FedError::Unreachable { .. }) => {
                        self.forget_contact(&dest);
                        let (db, d, s, m) = (
                            self.db.clone(),
                            dest.clone(),
                            self.settings.clone(),
                            e.to_string(),
                        );
                        let _ = blocking(move || peers::failure(&db, &d, Timestamp::now(), &m, &s))
                            .await;
                        continue;
                    }
                    Err(e) => tracing::warn!(peer = %dest, error = %e, "key fetch failed"),
                }
            }
            match self.deliver_once(&dest).await {
                Ok(r) if r.acknowledged > 0 => {}
                Ok(_) => {
                    tokio::select! {
                        () = tokio::time::sleep(idle) => {}
                        () = wake.notified() => {}
                    }
                }
                Err(e) => tracing::info!(peer = %dest, error = %e, "delivery failed; backing off"),
            }
        }
    }

    async fn puller(self) {
        let every = Duration::from_secs(self.settings.pull_interval_secs);
        loop {
            match self.pull_once().await {
                Ok(p) if p.accepted > 0 => {
                    tracing::info!(
                        accepted = p.accepted,
                        rejected = p.rejected,
                        deferred = p.deferred,
                        "caught up"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "catch-up failed"),
            }
            tokio::time::sleep(every).await;
        }
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Reads a JSON answer (zstd-decoded when so marked), turning error statuses into
/// [`FedError::Refused`].
async fn read_json<T: serde::de::DeserializeOwned>(
    peer: &PeerSettings,
    resp: reqwest::Response,
) -> Result<T, FedError> {
    let status = resp.status();
    let zstd = resp
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"zstd");
    let bytes = resp.bytes().await.map_err(|e| FedError::Unreachable {
        peer: peer.id.to_string(),
        cause: error_chain(&e),
    })?;
    let bytes = if zstd {
        wire::decompress(&bytes, 256 * 1024 * 1024).map_err(|e| FedError::BadAnswer {
            peer: peer.id.to_string(),
            cause: e,
        })?
    } else {
        bytes.to_vec()
    };
    if !status.is_success() {
        return Err(FedError::Refused {
            peer: peer.id.to_string(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
        });
    }
    // Strictly, as the listener reads a pushed batch: the events of a feed page are verified
    // as read, so they must have exactly one reading.
    let bad = |cause: String| FedError::BadAnswer {
        peer: peer.id.to_string(),
        cause,
    };
    let value = crate::crypto::strict_json::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}
