//! The live membership of this node's federation: who its peers are, where they listen, their
//! provinces, and the certificate rules — from `[[federation.peers]]` and, once one is held,
//! from the hub-signed roster. Read by the listener (who may call), the client (whom to
//! deliver to), the inbox (members' provinces), the tickets wing (which agencies' owners are
//! reachable) and the TLS verifiers; replaced whole when a newer roster is applied, so no
//! restart is needed.
//!
//! Precedence (ARCHITECTURE decision 88): without a roster the static peers are the
//! membership. With one, the roster is: a node it does not list is not a member, even if a
//! static entry names it (logged at apply); for a node both list, the static entry's `url`
//! and `address` are the route used (the local operator's way to reach it, e.g. a tunnel),
//! and everything else comes from the roster.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::roster::Roster;
use crate::config::{PeerSettings, Settings};
use crate::domain::{NodeId, ProvinceCode};
use crate::tls::config::Resolver;
use crate::tls::revocation::CertPolicy;

#[derive(Debug, Clone)]
struct View {
    peers: Vec<PeerSettings>,
    provinces: Arc<HashMap<String, ProvinceCode>>,
    ids: BTreeSet<String>,
    version: i64,
}

/// The membership (cheap to clone; every clone sees the same).
#[derive(Debug, Clone)]
pub struct Members {
    me: NodeId,
    province: ProvinceCode,
    static_peers: Arc<Vec<PeerSettings>>,
    view: Arc<RwLock<View>>,
    policy: CertPolicy,
    resolver: Arc<Resolver>,
    changed: Arc<watch::Sender<i64>>,
}

impl Members {
    /// The membership `settings` configure (static peers; no roster yet).
    #[must_use]
    pub fn from_settings(settings: &Settings) -> Self {
        let peers = settings
            .raw
            .federation
            .as_ref()
            .map(|f| f.peers.clone())
            .unwrap_or_default();
        let me = settings.node_id().clone();
        let province = settings.raw.node.province.clone();
        let resolver = Arc::new(Resolver::default());
        for p in &peers {
            if let Some(a) = p.address {
                resolver.pin(p.id.as_str(), a);
            }
        }
        let view = Self::view_of(&me, &province, peers.clone(), 0);
        Self {
            me,
            province,
            static_peers: Arc::new(peers),
            view: Arc::new(RwLock::new(view)),
            policy: CertPolicy::default(),
            resolver,
            changed: Arc::new(watch::channel(0).0),
        }
    }

    fn view_of(
        me: &NodeId,
        province: &ProvinceCode,
        peers: Vec<PeerSettings>,
        version: i64,
    ) -> View {
        let provinces = peers
            .iter()
            .map(|p| (p.id.to_string(), p.province.clone()))
            .chain([(me.to_string(), province.clone())])
            .collect();
        let ids = peers
            .iter()
            .map(|p| p.id.to_string())
            .chain([me.to_string()])
            .collect();
        View {
            peers,
            provinces: Arc::new(provinces),
            ids,
            version,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `roster` the membership (see the module's precedence rule) and hands its
    /// revocations and pinned certificates to the TLS verifiers. Returns the static peers it
    /// leaves out.
    pub fn apply(&self, roster: &Roster) -> Vec<NodeId> {
        let peers: Vec<PeerSettings> = roster
            .nodes
            .iter()
            .filter(|n| n.id != self.me)
            .map(|n| {
                let local = self.static_peers.iter().find(|p| p.id == n.id);
                PeerSettings {
                    id: n.id.clone(),
                    url: local.map_or_else(|| n.url.clone(), |p| p.url.clone()),
                    role: n.role,
                    province: n.province.clone(),
                    address: local.and_then(|p| p.address).or(n.address),
                }
            })
            .collect();
        for p in &peers {
            if let Some(a) = p.address {
                self.resolver.pin(p.id.as_str(), a);
            }
        }
        let left_out: Vec<NodeId> = self
            .static_peers
            .iter()
            .filter(|s| !peers.iter().any(|p| p.id == s.id))
            .map(|s| s.id.clone())
            .collect();
        self.policy.set(
            roster
                .revoked
                .iter()
                .map(|c| c.certificate.clone())
                .collect(),
            roster
                .nodes
                .iter()
                .filter_map(|n| n.certificate.clone().map(|c| (n.id.to_string(), c)))
                .collect(),
        );
        {
            let mut v = self
                .view
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *v = Self::view_of(&self.me, &self.province, peers, roster.version);
        }
        self.changed.send_replace(roster.version);
        left_out
    }

    /// The membership of the node `settings` describe as its database holds it: the static
    /// peers, replaced by the roster held when one verifies (for commands run beside a node).
    #[must_use]
    pub fn of_node(settings: &Settings, db: &crate::db::Db) -> Self {
        let m = Self::from_settings(settings);
        let key = settings
            .raw
            .federation
            .as_ref()
            .and_then(|f| f.roster_key.as_deref())
            .and_then(|k| crate::crypto::keys::parse_public_key(k).ok());
        m.restore(db, key.as_ref());
        m
    }

    /// Applies the roster held in `db`, if any and if it verifies with `key` (at start, and in
    /// commands run beside a node). Returns its version (`0`: none applied).
    pub fn restore(&self, db: &crate::db::Db, key: Option<&ed25519_dalek::VerifyingKey>) -> i64 {
        let held = db
            .read()
            .map_err(|e| e.to_string())
            .and_then(|mut c| super::roster_store::held(&mut c).map_err(|e| e.to_string()));
        let signed = match held {
            Ok(Some(s)) => s,
            Ok(None) => return 0,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the roster held");
                return 0;
            }
        };
        let Some(key) = key else {
            tracing::warn!(
                "a roster is held but no federation.roster_key is pinned: static peers only"
            );
            return 0;
        };
        match signed.open(key) {
            Ok(r) => {
                self.apply(&r);
                r.version
            }
            Err(e) => {
                tracing::error!(error = %e, "the roster held does not verify with federation.roster_key");
                0
            }
        }
    }

    /// The peers now.
    #[must_use]
    pub fn peers(&self) -> Vec<PeerSettings> {
        self.read().peers.clone()
    }

    /// One peer's settings.
    #[must_use]
    pub fn peer(&self, id: &NodeId) -> Option<PeerSettings> {
        self.read().peers.iter().find(|p| &p.id == id).cloned()
    }

    /// The hub among the peers.
    #[must_use]
    pub fn hub(&self) -> Option<PeerSettings> {
        self.read()
            .peers
            .iter()
            .find(|p| p.role == crate::config::NodeRole::Hub)
            .cloned()
    }

    /// Whether `node` is this node or one of its peers.
    #[must_use]
    pub fn contains(&self, node: &str) -> bool {
        self.read().ids.contains(node)
    }

    /// Every member's province (this node's included).
    #[must_use]
    pub fn provinces(&self) -> Arc<HashMap<String, ProvinceCode>> {
        Arc::clone(&self.read().provinces)
    }

    /// The roster version the membership comes from (`0`: static peers only).
    #[must_use]
    pub fn version(&self) -> i64 {
        self.read().version
    }

    /// The certificate rules the TLS verifiers consult.
    #[must_use]
    pub fn policy(&self) -> &CertPolicy {
        &self.policy
    }

    /// The client's resolver (peers' addresses).
    #[must_use]
    pub fn resolver(&self) -> Arc<Resolver> {
        Arc::clone(&self.resolver)
    }

    /// A receiver that sees each roster version applied.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }
}
