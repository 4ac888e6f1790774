//! The federation client: delivery (push) and catch-up (pull) over mTLS.
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

use std::sync::Arc;
use std::time::Duration;

use super::node::Member;
use super::peers;
use super::protocol::{self as wire, NodeInfo};
use super::{FedError, lease, outbox};
use crate::config::{PeerSettings, Settings};
use crate::db::{Db, DbError};
use crate::domain::{NodeId, Timestamp};
use crate::event_log::rotation::KeyStatement;
use crate::metrics::Metrics;
use crate::tls::config::TlsFiles;

/// The federation client of one node: its member state and an mTLS client for its peers
/// (cheap to clone). Dereferences to the [`Member`].
#[derive(Debug, Clone)]
pub struct Federation {
    member: Member,
    /// The mTLS client; replaced when a roster changes the membership, so that no kept-alive
    /// connection outlives a revocation.
    client: Arc<std::sync::RwLock<reqwest::Client>>,
    /// What the client is built from.
    tls: Arc<(TlsFiles, Duration)>,
}

impl std::ops::Deref for Federation {
    type Target = Member;
    fn deref(&self) -> &Member {
        &self.member
    }
}

/// How often a backing-off worker checks whether its peer is reachable again.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How often it is probed in the first minute of backing off.
const PROBE_FIRST_MINUTE: Duration = Duration::from_secs(1);

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FedError> + Send + 'static,
) -> Result<T, FedError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FedError::Db(DbError::Unavailable(format!("blocking task failed: {e}"))))?
}

impl Federation {
    /// The federation side of a node, when `[federation]` is configured: its member state
    /// and an mTLS client for its peers.
    pub fn new(
        settings: &Settings,
        db: Db,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Self>, FedError> {
        let Some(member) = Member::new(settings, db, metrics) else {
            return Ok(None);
        };
        let fed = member.settings();
        let files = TlsFiles {
            ca: fed.ca_file.clone(),
            cert: fed.cert_file.clone(),
            key: fed.key_file.clone(),
        };
        // The resolver and the certificate rules are the membership's: peers and revocations a
        // roster brings apply to this client without rebuilding it.
        let timeout = Duration::from_secs(fed.request_timeout_secs);
        let client = crate::tls::config::client_with(
            &files,
            member.members().resolver(),
            timeout,
            member.members().policy(),
        )?;
        let client = Arc::new(std::sync::RwLock::new(client));
        let tls = Arc::new((files, timeout));
        // The server asks for a peer's keys when its events arrive unjudgeable; the client
        // fetches them at once (holding the member weakly: it holds this callback).
        let (weak, c, t) = (member.downgrade(), client.clone(), tls.clone());
        member.on_keys_wanted(move |peer| {
            let Some(member) = weak.upgrade() else {
                return;
            };
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let fed = Self {
                member,
                client: c.clone(),
                tls: t.clone(),
            };
            rt.spawn(async move {
                if let Err(e) = fed.fetch_keys(&peer).await {
                    tracing::warn!(peer = %peer, error = %e, "key fetch after unknown-key events failed");
                }
            });
        });
        Ok(Some(Self {
            member,
            client,
            tls,
        }))
    }

    /// The mTLS client now.
    pub(super) fn http(&self) -> reqwest::Client {
        self.client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the mTLS client by a new one (no pooled connection carried over): after a
    /// roster changed the membership, every connection is made again through the verifiers.
    pub(super) fn renew_client(&self) {
        let (files, timeout) = &*self.tls;
        match crate::tls::config::client_with(
            files,
            self.members().resolver(),
            *timeout,
            self.members().policy(),
        ) {
            Ok(c) => {
                *self
                    .client
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = c;
            }
            Err(e) => tracing::error!(error = %e, "cannot renew the federation client"),
        }
    }

    /// This node's federation state (what the server shares).
    #[must_use]
    pub fn member(&self) -> &Member {
        &self.member
    }

    pub(super) fn peer(&self, id: &NodeId) -> Result<PeerSettings, FedError> {
        self.members()
            .peer(id)
            .ok_or_else(|| FedError::UnknownPeer(id.to_string()))
    }

    /// Whether `dest` accepts a TCP connection now (no TLS, no request): a backing-off worker
    /// asks this every [`PROBE_EVERY`].
    async fn probe(&self, dest: &NodeId) -> bool {
        let Ok(peer) = self.peer(dest) else {
            return false;
        };
        let addr = match peer.address {
            Some(a) => Some(a),
            None => {
                let host = peer.url.host_str().unwrap_or_default().to_owned();
                let port = peer.url.port_or_known_default().unwrap_or(443);
                tokio::net::lookup_host((host, port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
            }
        };
        let Some(addr) = addr else {
            return false;
        };
        let Ok(Ok(stream)) =
            tokio::time::timeout(PROBE_EVERY, tokio::net::TcpStream::connect(addr)).await
        else {
            return false;
        };
        // A TLS server waits for our hello in silence; a connection closed at once (a relay
        // whose far side is down) is not a way through.
        match tokio::time::timeout(Duration::from_millis(300), stream.readable()).await {
            Err(_) => true,
            Ok(Err(_)) => false,
            Ok(Ok(())) => {
                let mut buf = [0_u8; 1];
                !matches!(stream.try_read(&mut buf), Ok(0) | Err(_))
            }
        }
    }

    /// How long a request moving about `bytes` may take: the base timeout plus the time those
    /// bytes need at the slowest link allowed for (`federation.min_link_kbit`) — a slow link
    /// is not a dead one.
    pub(super) fn timeout_for(&self, bytes: usize) -> Duration {
        let rate = self.settings.min_link_kbit.max(1).saturating_mul(125); // bytes per second
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        Duration::from_secs(self.settings.request_timeout_secs)
            + Duration::from_secs(bytes.div_ceil(rate))
    }

    pub(super) fn url(peer: &PeerSettings, path: &str) -> String {
        let mut u = peer.url.clone();
        u.set_path(path);
        u.to_string()
    }

    pub(super) fn unreachable(peer: &PeerSettings, e: &reqwest::Error) -> FedError {
        FedError::Unreachable {
            peer: peer.id.to_string(),
            cause: error_chain(e),
        }
    }

    /// Fetches `peer`'s node information over mTLS and pins its signing keys: unknown keys of
    /// a peer with no pinned keys yet are pinned; a known key id with other key material, or a
    /// new key while others are pinned, is refused and reported (a rotation is pinned by the
    /// operator, see `docs/PROTOCOL.md`). Returns the number of keys newly pinned.
    #[tracing::instrument(name = "federation.fetch_keys", skip_all, fields(peer = %peer_id))]
    pub async fn fetch_keys(&self, peer_id: &NodeId) -> Result<usize, FedError> {
        let (peer, info) = self.node_info_of(peer_id).await?;
        self.accept_key_statements(peer_id, info.key_statements.clone())
            .await;
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

    /// Applies the key statements `from` offers in its node information (its own rotations
    /// and those it passes on), as the inbox judges those that come with events.
    async fn accept_key_statements(&self, from: &NodeId, statements: Vec<KeyStatement>) {
        if statements.is_empty() {
            return;
        }
        let (inbox, f) = (self.inbox.clone(), from.clone());
        let _ = blocking(move || {
            inbox.accept_key_statements(&f, statements, Timestamp::now());
            Ok(())
        })
        .await;
    }

    /// `GET /federation/v1/node` of a configured peer, checked to answer as that peer.
    async fn node_info_of(&self, peer_id: &NodeId) -> Result<(PeerSettings, NodeInfo), FedError> {
        let peer = self.peer(peer_id)?;
        let resp = self
            .http()
            .get(Self::url(&peer, "/federation/v1/node"))
            .send()
            .await
            .map_err(|e| Self::unreachable(&peer, &e))?;
        self.noticed(&peer.id, &resp);
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
        for p in &self.peers() {
            if let Err(e) = self.fetch_keys(&p.id).await {
                failed.push((p.id.clone(), e.to_string()));
            }
        }
        failed
    }

    /// Runs the delivery workers (one per peer) and the catch-up loop until the task is
    /// dropped. When a roster changes the membership, workers start for new peers and stop for
    /// removed ones, without a restart.
    pub async fn run(self) {
        let this = self.clone();
        let _puller = AbortOnDrop(vec![tokio::spawn(async move { this.puller().await })]);
        let _leases = ReleaseOnDrop(self.member.clone());
        let mut workers: std::collections::HashMap<NodeId, AbortOnDrop> =
            std::collections::HashMap::new();
        let mut changes = self.members().subscribe();
        loop {
            let peers = self.peers();
            workers.retain(|id, _| {
                let keep = peers.iter().any(|p| &p.id == id);
                if !keep {
                    tracing::info!(peer = %id, "no longer a member: delivery worker stopped");
                }
                keep
            });
            for p in peers {
                if !workers.contains_key(&p.id) {
                    let (this, id) = (self.clone(), p.id.clone());
                    workers.insert(
                        p.id.clone(),
                        AbortOnDrop(vec![tokio::spawn(async move { this.worker(id).await })]),
                    );
                }
            }
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            self.renew_client();
        }
    }

    /// Whether this process holds the lease on the work `name` (see [`super::lease`]); a
    /// database that cannot be written says no, and the work waits.
    async fn holds(&self, name: String) -> bool {
        let member = self.member.clone();
        blocking(move || member.leases().hold(member.db(), &name))
            .await
            .unwrap_or_else(|e| {
                tracing::debug!(error = %e, "federation lease not checked; waiting");
                false
            })
    }

    async fn worker(self, dest: NodeId) {
        let wake = self.waker(&dest);
        // New outbox rows wake the worker when they commit; this only bounds the wait.
        let idle = Duration::from_secs(5);
        let mut notices = self.db.notices();
        let mut keys_pinned = false;
        let mut backing_off_since: Option<std::time::Instant> = None;
        loop {
            let now = Timestamp::now();
            let (db, d) = (self.db.clone(), dest.clone());
            let wait_ms = blocking(move || peers::wait_ms(&db, &d, now))
                .await
                .unwrap_or(1000);
            if wait_ms > 0 {
                // Backing off: a link that comes back is tried within seconds all the same —
                // a bare TCP connect (a few packets) tells when: every second for the first
                // minute of an outage (most are short), then every five.
                let since = *backing_off_since.get_or_insert_with(std::time::Instant::now);
                let every = if since.elapsed() < Duration::from_secs(60) {
                    PROBE_FIRST_MINUTE
                } else {
                    PROBE_EVERY
                };
                let sleep = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1000));
                tokio::select! {
                    () = tokio::time::sleep(sleep.min(every)) => {
                        if sleep > every && self.probe(&dest).await {
                            let (db, d) = (self.db.clone(), dest.clone());
                            let _ = blocking(move || peers::retry_now(&db, &d)).await;
                        }
                    }
                    () = wake.notified() => {}
                }
                continue;
            }
            backing_off_since = None;
            // Another process of this node (same database) may be delivering to this peer.
            if !self.holds(format!("push:{dest}")).await {
                tokio::select! {
                    () = tokio::time::sleep(lease::WAIT) => {}
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
            notices.borrow_and_update();
            match self.deliver_once(&dest).await {
                Ok(r) if r.acknowledged > 0 => {}
                Ok(_) => {
                    // Nothing more to send now: wait for a commit that queued rows, a peer's
                    // contact, or the first deferred row coming due.
                    let (db, d) = (self.db.clone(), dest.to_string());
                    let due = blocking(move || {
                        let mut conn = db.read()?;
                        Ok(outbox::next_retry(&mut conn, &d)?)
                    })
                    .await
                    .ok()
                    .flatten();
                    let until_due = due.map_or(idle, |at| {
                        let ms = (at - Timestamp::now().millis()).clamp(0, 5_000);
                        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                    });
                    tokio::select! {
                        () = tokio::time::sleep(until_due.min(idle)) => {}
                        () = wake.notified() => {}
                        _ = notices.changed() => {}
                    }
                }
                Err(e) => tracing::info!(peer = %dest, error = %e, "delivery failed; backing off"),
            }
        }
    }

    async fn puller(self) {
        let every = Duration::from_secs(self.settings.pull_interval_secs);
        loop {
            // Every process follows the roster; one at a time catches up.
            self.roster_round().await;
            if !self.holds("pull".to_owned()).await {
                tokio::time::sleep(every).await;
                continue;
            }
            match self.pull_round(Some(every)).await {
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

/// Gives this process's leases up when its workers stop, so another process takes the work
/// over at once.
struct ReleaseOnDrop(Member);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.leases().release_all(self.0.db());
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The dictionary a peer's answer names (`dictionary::HEADER`), for
/// [`Member::dictionary_named`](super::node::Member::dictionary_named).
pub(super) fn dictionary_of(resp: &reqwest::Response) -> Option<&[u8]> {
    resp.headers()
        .get(super::dictionary::HEADER)
        .map(reqwest::header::HeaderValue::as_bytes)
}

/// Reads a JSON answer (zstd-decoded when so marked), turning error statuses into
/// [`FedError::Refused`].
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
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
            cause: e.to_string(),
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
