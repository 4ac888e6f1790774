//! The federation's health as one answer — what `GET /api/v1/hub/federation`, `lapor-node
//! federation status`, the `/nasional` page and the hub's alert job all read: every chain
//! (`health::chains`), every member node (`health::nodes`, from the signed statuses), the
//! alerts that hold (`alerts`, raised and logged once here; among them `escalation`'s repeated
//! SLA breaches) and this node's links to its peers
//! (`federation::peers::status`).

use crate::config::{FederationSettings, NodeRole, Settings};
use crate::db::{Db, DbError};
use crate::domain::{NodeId, Timestamp};
use crate::federation::PeerStatus;
use crate::metrics::Metrics;

use super::alerts::{self, Alert, Thresholds};
use super::health::{self, ChainHealth, NodeHealth};

/// Whose view: this node, whether it holds every event (the hub), its federation settings.
#[derive(Debug, Clone)]
pub struct Scope {
    /// This node.
    pub me: NodeId,
    /// It receives every event (the hub): a missing one is a gap.
    pub holds_all: bool,
    /// Its federation settings (alert thresholds), when federated.
    pub federation: Option<FederationSettings>,
    /// Its membership (static peers, or the roster held), read afresh at every look.
    pub members: Option<crate::federation::membership::Members>,
    /// When a node's SLA breaches escalate to the hub (`[hub]`).
    pub escalate: crate::config::HubSettings,
}

impl Scope {
    /// The scope of the node `settings` describe.
    #[must_use]
    pub fn of(settings: &Settings, db: &Db) -> Self {
        Self {
            me: settings.node_id().clone(),
            holds_all: settings.raw.node.role == NodeRole::Hub,
            federation: settings.raw.federation.clone(),
            members: settings
                .raw
                .federation
                .is_some()
                .then(|| crate::federation::membership::Members::of_node(settings, db)),
            escalate: settings.raw.hub.clone(),
        }
    }

    /// The member peers now.
    fn peers(&self) -> Vec<crate::config::PeerSettings> {
        self.members
            .as_ref()
            .map(crate::federation::membership::Members::peers)
            .unwrap_or_default()
    }

    /// The alert thresholds (the defaults without federation).
    #[must_use]
    pub fn thresholds(&self) -> Thresholds {
        let (silent, skew) = self
            .federation
            .as_ref()
            .map_or((1800, 120), |f| (f.alert_silent_secs, f.alert_skew_secs));
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        Thresholds {
            silent_ms: ms(silent),
            skew_ms: ms(skew),
        }
    }
}

/// The federation's health.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// Every origin's chain as held here.
    pub chains: Vec<ChainHealth>,
    /// Every member node: reported vs held, outbox matrix, clock, version, audit.
    pub nodes: Vec<NodeHealth>,
    /// The alerts that hold (only the hub raises them; empty on a province).
    pub alerts: Vec<Alert>,
    /// This node's link to each configured peer.
    pub peers: Vec<PeerStatus>,
}

/// Why the health could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The peers' state could not be read.
    #[error(transparent)]
    Federation(#[from] crate::federation::FedError),
}

impl From<diesel::result::Error> for WatchError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// Reads the federation's health. On the hub, with `raise` (the serving node's metrics), it
/// also brings the alerts up to date, logging and counting each new one once; without (a
/// command run beside the node), it shows them and leaves raising to the node.
///
/// # Errors
///
/// The database could not be read or written.
pub fn read(
    db: &Db,
    scope: &Scope,
    raise: Option<&Metrics>,
    now: Timestamp,
) -> Result<Health, WatchError> {
    let peers = scope.peers();
    let members: Vec<(NodeId, NodeRole)> = peers.iter().map(|p| (p.id.clone(), p.role)).collect();
    let (chains, nodes) = {
        let mut c = db.read()?;
        let chains = health::chains(&mut c, scope.me.as_str(), scope.holds_all)?;
        let ids: Vec<NodeId> = members.iter().map(|(id, _)| id.clone()).collect();
        let own = crate::federation::status::build(&mut c, &scope.me, &ids, now)?;
        let nodes = if scope.holds_all {
            health::nodes(&mut c, &scope.me, own, &members, &chains, now)?
        } else {
            Vec::new()
        };
        (chains, nodes)
    };
    let alerts = if scope.holds_all {
        let mut current = alerts::current(&nodes, scope.me.as_str(), scope.thresholds(), now);
        current.extend(super::escalation::breach_alerts(
            &mut *db.read()?,
            scope.me.as_str(),
            &scope.escalate,
            now,
        )?);
        if let Some(metrics) = raise {
            let (all, new) = alerts::sync(db, current)?;
            alerts::announce(metrics, &new);
            all
        } else {
            alerts::with_since(&mut *db.read()?, current)?
        }
    } else {
        Vec::new()
    };
    let peers = if scope.members.is_some() {
        crate::federation::peers::status(db, &scope.me, &peers, now)?
    } else {
        Vec::new()
    };
    Ok(Health {
        chains,
        nodes,
        alerts,
        peers,
    })
}

/// The hub's alert job: reads the health every `status_interval_secs` (raising, logging and
/// counting new alerts) until dropped.
pub async fn run_alerts(db: Db, scope: Scope, metrics: std::sync::Arc<Metrics>) {
    let every = std::time::Duration::from_secs(
        scope
            .federation
            .as_ref()
            .map_or(60, |f| f.status_interval_secs)
            .max(1),
    );
    loop {
        tokio::time::sleep(every).await;
        let (db, scope, metrics) = (db.clone(), scope.clone(), metrics.clone());
        let r = tokio::task::spawn_blocking(move || {
            read(&db, &scope, Some(&metrics), Timestamp::now())
        })
        .await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "federation alert check failed"),
            Err(e) => tracing::warn!(error = %e, "federation alert check task failed"),
        }
    }
}
