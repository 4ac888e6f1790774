//! This node as a member of the federation: its identity and role, its federation settings,
//! database, inbox and metrics, when each peer last contacted it, and the signals that wake
//! a peer's delivery worker or ask for a peer's keys. The client and the server share it; it
//! knows neither.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::Notify;

use super::FedError;
use super::inbox::Inbox;
use super::membership::Members;
use super::peers::{self, PeerStatus};
use super::protocol::{KeyInfo, NodeInfo};
use super::roster_store;
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
    /// Who the peers are now (static peers, then the roster).
    pub(super) members: Members,
    /// What a roster is judged with.
    pub(super) roster_judge: roster_store::Judge,
    /// A roster fetch is under way (one at a time).
    pub(super) roster_fetching: std::sync::atomic::AtomicBool,
    /// One per peer: wakes its delivery worker.
    wake: Mutex<HashMap<NodeId, Arc<Notify>>>,
    /// When each peer's contact was last recorded (ms), while no failure has been recorded
    /// since: further contacts within [`CONTACT_RECORD_MS`] need no write.
    contacts: Mutex<HashMap<NodeId, i64>>,
    /// What fetches a peer's signing keys when events of it arrive unjudgeable (set by the
    /// client; the server only asks).
    keys_fetcher: OnceLock<KeysFetcher>,
    /// How delivery to each peer is sized, from what its link showed.
    tuning: Mutex<HashMap<NodeId, Tuning>>,
    /// When each peer last pushed a batch here.
    pushed: Mutex<HashMap<NodeId, std::time::Instant>>,
    /// Which delivery and catch-up work this process holds (several processes on one
    /// PostgreSQL database).
    leases: super::lease::Leases,
}

/// Delivery to one peer, fitted to its link: batches grow while their answers come back fast
/// and shrink when they are slow or fail (so a link that is up for a few seconds at a time
/// still delivers whole batches); slow links get thorough compression.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    /// Events per batch.
    batch: f64,
    /// Measured rate (bytes per second), once known.
    rate: Option<f64>,
    /// Measured compressed bytes per event, with the rate.
    per_event: Option<f64>,
    /// Batches in flight (`None`: the configured number).
    window: Option<f64>,
    /// The peer named the zstd dictionary this node ships (`dictionary::HEADER`).
    dictionary: bool,
}

/// The batch size after one answered in `elapsed` (`None`: failed): doubled when fast, a
/// quarter more when quick, kept when slow, halved when too slow or lost; within
/// [`MIN_BATCH`]..=`max`.
fn next_batch(batch: f64, elapsed: Option<std::time::Duration>, max: f64) -> f64 {
    match elapsed {
        Some(e) if e < FAST_ANSWER => batch * 2.0,
        Some(e) if e < SLOW_ANSWER / 2 => batch * 1.25,
        Some(e) if e < SLOW_ANSWER => batch,
        _ => batch / 2.0,
    }
    .clamp(MIN_BATCH.min(max), max)
}

/// The events of [`BATCH_SECS`] of `t`'s link, within [`MIN_BATCH`]..=`max` (`max` while the
/// rate is unknown).
fn link_target(t: &Tuning, max: f64) -> f64 {
    match (t.rate, t.per_event) {
        (Some(rate), Some(per)) if per > 0.0 => {
            (rate * BATCH_SECS / per).clamp(MIN_BATCH.min(max), max)
        }
        _ => max,
    }
}

/// Seconds of a thin link's time one batch may take.
const BATCH_SECS: f64 = 2.0;
/// Events in a first batch to a peer whose link is not measured yet.
const FIRST_BATCH: f64 = 100.0;
/// Fewest events per batch.
const MIN_BATCH: f64 = 10.0;
/// A batch answered within this grows fast; beyond [`SLOW_ANSWER`] it shrinks.
const FAST_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);
const SLOW_ANSWER: std::time::Duration = std::time::Duration::from_secs(10);
/// Under this rate (bytes per second), bodies are compressed thoroughly.
const SLOW_LINK: f64 = 1_000_000.0;

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
        let members = Members::from_settings(settings);
        members.policy().count_into(metrics.clone());
        for reason in [
            "malformed_roster",
            "no_roster_key",
            "wrong_roster_key",
            "bad_signature",
            "not_newer",
            "overlapping_key_windows",
            "node_certificate_mismatch",
            "key_conflict",
            "invalid_roster",
        ] {
            metrics.inc(
                "lapor_federation_rosters_refused_total",
                &[("reason", reason)],
                0,
            );
        }
        let roster_judge = roster_store::Judge {
            key: fed
                .roster_key
                .as_deref()
                .and_then(|k| crate::crypto::keys::parse_public_key(k).ok()),
            me: settings.node_id().clone(),
            own_certificate: own_certificate(&fed.cert_file),
        };
        let version = members.restore(&db, roster_judge.key.as_ref());
        if version > 0 {
            tracing::info!(
                version,
                peers = members.peers().len(),
                "membership from the roster held"
            );
        }
        Some(Self(Arc::new(State {
            inbox: Inbox::of_node(settings, &members, db.clone(), metrics.clone()),
            members,
            roster_judge,
            db,
            node: settings.node_id().clone(),
            role: settings.raw.node.role,
            province: settings.raw.node.province.clone(),
            settings: fed,
            metrics,
            wake: Mutex::new(HashMap::new()),
            roster_fetching: std::sync::atomic::AtomicBool::new(false),
            contacts: Mutex::new(HashMap::new()),
            keys_fetcher: OnceLock::new(),
            tuning: Mutex::new(HashMap::new()),
            pushed: Mutex::new(HashMap::new()),
            leases: super::lease::Leases::new(),
        })))
    }

    /// This process's leases on federation work.
    #[must_use]
    pub fn leases(&self) -> &super::lease::Leases {
        &self.leases
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

    /// The operator view of every peer.
    pub fn status(&self, now: Timestamp) -> Result<Vec<PeerStatus>, FedError> {
        peers::status(&self.db, &self.node, &self.members.peers(), now)
    }

    /// The live membership.
    #[must_use]
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// The peers now (static, or from the roster held).
    #[must_use]
    pub fn peers(&self) -> Vec<crate::config::PeerSettings> {
        self.members.peers()
    }

    /// The roster held, as received (served to peers).
    pub fn roster(&self) -> Result<Option<super::roster::SignedRoster>, FedError> {
        let mut c = self.db.read()?;
        Ok(roster_store::held(&mut c)?)
    }

    /// Judges a roster received from `from` (a peer, or `operator` for one applied by hand):
    /// when accepted (stored with its agencies and keys in one transaction), the membership
    /// becomes it at once — new peers get workers, removed ones are refused, revoked
    /// certificates fail their next handshake. A refusal is logged and counted
    /// (`lapor_federation_rosters_refused_total{reason}`) and changes nothing.
    pub fn offer_roster(
        &self,
        signed: &super::roster::SignedRoster,
        from: &str,
    ) -> Result<roster_store::Accepted, roster_store::AcceptError> {
        let r = roster_store::accept(&self.db, &self.roster_judge, signed, from, Timestamp::now());
        match &r {
            Ok(a) => {
                let left_out = self.members.apply(&a.roster);
                self.metrics
                    .inc("lapor_federation_rosters_accepted_total", &[], 1);
                let changes = a
                    .previous
                    .as_ref()
                    .map(|p| super::roster::diff(p, &a.roster).len().saturating_sub(1));
                tracing::info!(
                    version = a.roster.version,
                    from,
                    peers = self.members.peers().len(),
                    revoked = a.roster.revoked.len(),
                    changes,
                    "roster applied"
                );
                for s in left_out {
                    tracing::warn!(peer = %s, "static peer not in the roster: not a member while this roster holds");
                }
            }
            Err(roster_store::AcceptError::Refused(e)) => {
                self.metrics.inc(
                    "lapor_federation_rosters_refused_total",
                    &[("reason", e.code())],
                    1,
                );
                tracing::warn!(
                    from,
                    offered = signed.claimed_version(),
                    reason = e.code(),
                    message = %e,
                    "roster refused"
                );
            }
            Err(roster_store::AcceptError::Db(e)) => {
                tracing::error!(from, error = %e, "roster could not be stored");
            }
        }
        r
    }

    /// Applies a roster that was stored beside the running node (`lapor-node roster apply`
    /// writes the database): when the database holds a newer version than the membership.
    pub fn reload_roster(&self) -> Result<bool, FedError> {
        let held = {
            let mut c = self.db.read()?;
            roster_store::held_version(&mut c)?
        };
        if held > self.members.version() {
            return Ok(self
                .members
                .restore(&self.db, self.roster_judge.key.as_ref())
                == held);
        }
        Ok(false)
    }

    /// Whether `node` is one of this node's peers (a member of its federation).
    #[must_use]
    pub fn is_peer(&self, node: &NodeId) -> bool {
        self.members.peer(node).is_some()
    }

    /// Whether `node` is the federation's hub.
    #[must_use]
    pub fn is_hub(&self, node: &NodeId) -> bool {
        (self.role == NodeRole::Hub && node == &self.node)
            || self
                .members
                .peer(node)
                .is_some_and(|p| p.role == NodeRole::Hub)
    }

    /// This node's `GET /federation/v1/node` answer.
    pub fn node_info(&self) -> Result<NodeInfo, FedError> {
        let mut conn = self.db.read()?;
        let keys = crate::event_log::keys::own_keys(&mut conn, &self.node)?;
        let key_statements = crate::event_log::rotation::held(&mut conn)?;
        Ok(NodeInfo {
            key_statements,
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

    /// `peer` pushed a batch here.
    pub fn batch_from(&self, peer: &NodeId) {
        if let Ok(mut p) = self.pushed.lock() {
            p.insert(peer.clone(), std::time::Instant::now());
        }
    }

    /// Whether `peer` pushed a batch here within `within`: it is delivering its events itself,
    /// so pulling them from it would carry them twice over its link.
    #[must_use]
    pub fn pushing(&self, peer: &NodeId, within: std::time::Duration) -> bool {
        self.pushed
            .lock()
            .ok()
            .and_then(|p| p.get(peer).map(std::time::Instant::elapsed))
            .is_some_and(|ago| ago < within)
    }

    /// A failure was recorded for `peer`: its next contact is written (and resets the backoff).
    pub(super) fn forget_contact(&self, peer: &NodeId) {
        if let Ok(mut seen) = self.contacts.lock() {
            seen.remove(peer);
        }
    }

    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Arc<Notify>>> {
        self.wake
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes `peer`'s delivery worker.
    pub fn wake(&self, peer: &NodeId) {
        if let Some(n) = self.wakers().get(peer) {
            n.notify_one();
        }
    }

    /// Wakes every delivery worker (new outbox rows).
    pub fn wake_all(&self) {
        for n in self.wakers().values() {
            n.notify_one();
        }
    }

    /// The signal that wakes `peer`'s delivery worker (made on first use: peers the roster
    /// adds get one when their worker starts).
    pub(super) fn waker(&self, peer: &NodeId) -> Arc<Notify> {
        Arc::clone(self.wakers().entry(peer.clone()).or_default())
    }

    fn tuning_of<T>(&self, peer: &NodeId, f: impl FnOnce(&mut Tuning) -> T) -> T {
        let mut map = self
            .tuning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = map.entry(peer.clone()).or_insert(Tuning {
            batch: FIRST_BATCH,
            rate: None,
            per_event: None,
            window: None,
            dictionary: false,
        });
        f(t)
    }

    /// Events per batch to `peer` now (at most `max`): on a link whose rate is known, no more
    /// than `BATCH_SECS` (2 s) of it, so that a batch fits the few seconds a flapping link stays up
    /// and a cut loses little.
    #[must_use]
    pub fn batch_events(&self, peer: &NodeId, max: usize) -> usize {
        #[expect(clippy::cast_precision_loss, reason = "batch caps are small")]
        let max_f = (max.max(1)) as f64;
        let n = self.tuning_of(peer, |t| t.batch.min(link_target(t, max_f)));
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a batch size between MIN_BATCH and max"
        )]
        let n = n as usize;
        n.clamp(1, max.max(1))
    }

    /// A batch to `peer` was answered after `elapsed` (or failed, with `None`): the next ones
    /// grow or shrink (within `max` events). Once the link's rate is known an answer's delay
    /// says little (it holds the batches queued ahead of it): answered batches grow towards
    /// the link's target, failed ones halve.
    pub fn batch_answered(&self, peer: &NodeId, elapsed: Option<std::time::Duration>, max: usize) {
        #[expect(clippy::cast_precision_loss, reason = "batch caps are small")]
        let max = (max.max(1)) as f64;
        let configured = self.settings.in_flight.max(1);
        self.tuning_of(peer, |t| {
            t.batch = match (elapsed, t.rate.is_some()) {
                (Some(_), true) => (t.batch * 2.0)
                    .min(link_target(t, max))
                    .max(MIN_BATCH.min(max)),
                _ => next_batch(t.batch, elapsed, max),
            };
            // The batches in flight follow the same rule, more gently: a cut in transfer
            // halves them (what a cut loses is what was in flight), each answer adds a quarter.
            #[expect(clippy::cast_precision_loss, reason = "a handful of batches")]
            let most = configured as f64;
            t.window = match elapsed {
                Some(_) => (t.window.unwrap_or(most) + 0.25).min(most),
                None => (t.window.unwrap_or(most) / 2.0).max(1.0),
            }
            .into();
        });
    }

    /// Batches in flight to `peer` at once: the configured `in_flight`, fewer after batches
    /// were cut in transfer (a flapping link), growing back as answers come.
    #[must_use]
    pub fn window(&self, peer: &NodeId) -> usize {
        let configured = self.settings.in_flight.max(1);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "between 1 and the configured in_flight"
        )]
        let w = self.tuning_of(peer, |t| {
            t.window.map_or(configured, |w| w.floor() as usize)
        });
        w.clamp(1, configured)
    }

    /// Delivery to `peer` moved `bytes` (compressed bodies of `events` events) in `secs`: the
    /// rate and size estimates move towards them.
    pub fn rate_measured(&self, peer: &NodeId, bytes: u64, secs: f64, events: u64) {
        if secs < 1.0 || bytes < 16 * 1024 || events == 0 {
            return;
        }
        #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
        let (sample, per_event) = (bytes as f64 / secs, bytes as f64 / events as f64);
        self.tuning_of(peer, |t| {
            t.rate = Some(t.rate.map_or(sample, |r| 0.7 * r + 0.3 * sample));
            t.per_event = Some(t.per_event.map_or(per_event, |p| 0.7 * p + 0.3 * per_event));
        });
    }

    /// The zstd level for bodies to `peer`: thorough on a slow link, fast otherwise.
    #[must_use]
    pub fn compression_level(&self, peer: &NodeId) -> i32 {
        match self.tuning_of(peer, |t| t.rate) {
            Some(r) if r < SLOW_LINK => super::protocol::THOROUGH,
            _ => super::protocol::FAST,
        }
    }

    /// `peer` named a dictionary in an answer (`value` of [`super::dictionary::HEADER`]): bodies
    /// to it use the shipped dictionary when it is the same one.
    pub fn dictionary_named(&self, peer: &NodeId, value: Option<&[u8]>) {
        let same = super::dictionary::names_ours(value);
        self.tuning_of(peer, |t| t.dictionary = same);
    }

    /// Whether bodies to `peer` use the shipped dictionary.
    #[must_use]
    pub fn uses_dictionary(&self, peer: &NodeId) -> bool {
        self.tuning_of(peer, |t| t.dictionary)
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

/// SHA-256 of the certificate in `path` (the first of the file), when readable.
pub fn own_certificate(path: &std::path::Path) -> Option<String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let der = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    Some(crate::tls::revocation::fingerprint(der.as_ref()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn batches_grow_while_answers_are_fast_and_halve_when_slow_or_lost() {
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert!((next_batch(100.0, secs(1), 500.0) - 200.0).abs() < 1e-9);
        assert!((next_batch(400.0, secs(1), 500.0) - 500.0).abs() < 1e-9);
        assert!((next_batch(100.0, secs(3), 500.0) - 125.0).abs() < 1e-9);
        assert!((next_batch(100.0, secs(7), 500.0) - 100.0).abs() < 1e-9);
        assert!((next_batch(100.0, secs(30), 500.0) - 50.0).abs() < 1e-9);
        assert!((next_batch(100.0, None, 500.0) - 50.0).abs() < 1e-9);
        assert!((next_batch(12.0, None, 500.0) - MIN_BATCH).abs() < 1e-9);
    }
}
