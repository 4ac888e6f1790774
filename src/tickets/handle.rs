//! [`Tickets`], the handle every channel holds: the database, the node's key and settings,
//! the tracking codes and the intake queue. Its operations live by role: `intake` (filing
//! reports), `commands` (actions, erasure, SLA sweep), `queries` (the read side).

use super::codes::CodeBook;
use super::intake::Intake;
use crate::config::{LimitSettings, SlaSettings};
use crate::db::{Db, DbError};
use crate::domain::reference::Provinces;
use crate::domain::sla::WorkCalendar;
use crate::domain::{NodeId, Timestamp};

/// The tickets of one node: commands and queries (cheap to clone: the state is shared).
#[derive(Debug, Clone)]
pub struct Tickets(std::sync::Arc<Inner>);

/// What the operations need.
#[derive(Debug)]
pub struct Inner {
    pub(super) db: Db,
    pub(super) key: std::sync::Arc<crate::crypto::keys::NodeKey>,
    pub(super) node: NodeId,
    pub(super) calendar: WorkCalendar,
    pub(super) sla: SlaSettings,
    pub(super) limits: LimitSettings,
    pub(super) provinces: Provinces,
    /// The federation hub, when this node is a federated province node: it receives every
    /// event this node writes.
    pub(super) hub: Option<NodeId>,
    /// `[federation]` is configured: events get outbox rows.
    pub(super) federated: bool,
    /// The members of this node's federation (itself and its peers): the nodes a ticket can
    /// be dispatched to.
    pub(super) members: crate::federation::membership::Members,
    /// Tracking codes.
    pub(super) codes: CodeBook,
    /// Reports waiting for the writer, and the intake counters.
    pub(super) intake: Intake,
    /// The statistics API's settings (`hub::report`).
    pub(super) statistics: crate::config::StatisticsSettings,
    /// What the hub escalates (`hub::escalation`).
    pub(super) hub_settings: crate::config::HubSettings,
    /// The restore hold: no own event is written while it is on.
    pub(super) hold: crate::event_log::hold::Hold,
    /// Where the sweep counts the escalations it raises (set once by the app).
    pub(super) metrics: std::sync::OnceLock<std::sync::Arc<crate::metrics::Metrics>>,
}

impl std::ops::Deref for Tickets {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Tickets {
    /// The tickets of this node.
    ///
    /// Reads the node's tracking-code book (creating it on the first start).
    ///
    /// # Errors
    ///
    /// The database could not be read or written.
    pub fn new(
        db: Db,
        settings: &crate::config::Settings,
        key: std::sync::Arc<crate::crypto::keys::NodeKey>,
    ) -> Result<Self, DbError> {
        Self::new_in(db, settings, key, None)
    }

    /// [`Tickets::new`] in a federation whose live membership is `members` (the federation
    /// side's, so agencies of members a roster adds become dispatchable at once); `None`: the
    /// static peers of `settings`.
    ///
    /// # Errors
    ///
    /// The database could not be read or written.
    pub fn new_in(
        db: Db,
        settings: &crate::config::Settings,
        key: std::sync::Arc<crate::crypto::keys::NodeKey>,
        members: Option<crate::federation::membership::Members>,
    ) -> Result<Self, DbError> {
        let province = settings.raw.node.province.clone();
        let codes =
            db.write(move |conn| CodeBook::open(conn, &province).map_err(DbError::Query))?;
        Ok(Self(std::sync::Arc::new(Inner {
            codes,
            db,
            key,
            node: settings.raw.node.id.clone(),
            calendar: settings.calendar.clone(),
            sla: settings.raw.sla.clone(),
            limits: settings.raw.limits.clone(),
            provinces: settings.provinces.clone(),
            hub: settings
                .raw
                .federation
                .as_ref()
                .and_then(|f| f.hub())
                .map(|h| h.id.clone()),
            federated: settings.raw.federation.is_some(),
            members: members
                .unwrap_or_else(|| crate::federation::membership::Members::from_settings(settings)),
            intake: Intake::default(),
            statistics: settings.raw.statistics.clone(),
            hub_settings: settings.raw.hub.clone(),
            hold: crate::event_log::hold::Hold::of(&settings.raw.node.data_dir),
            metrics: std::sync::OnceLock::new(),
        })))
    }

    /// Counts what the SLA sweep raises (`lapor_sla_escalations_total`) in `metrics` from now
    /// on; a second call changes nothing.
    pub fn count_into(&self, metrics: std::sync::Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The node's tracking codes.
    #[must_use]
    pub fn codes(&self) -> &CodeBook {
        &self.codes
    }

    /// The province list (regions and time zones).
    #[must_use]
    pub fn provinces(&self) -> &Provinces {
        &self.provinces
    }

    /// The restore hold (writes of own events wait while it is on).
    #[must_use]
    pub fn hold(&self) -> &crate::event_log::hold::Hold {
        &self.hold
    }

    /// The database.
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The statistics API's settings.
    #[must_use]
    pub fn statistics_settings(&self) -> &crate::config::StatisticsSettings {
        &self.statistics
    }

    /// What the hub escalates (`[hub]`).
    #[must_use]
    pub fn hub_settings(&self) -> &crate::config::HubSettings {
        &self.hub_settings
    }

    /// The federation's hub, when this node is a province node under one (`None` on the hub
    /// itself and on a node without federation).
    #[must_use]
    pub fn hub(&self) -> Option<&NodeId> {
        self.hub.as_ref()
    }

    /// This node's event signing key (its status to the hub is signed with it too).
    #[must_use]
    pub fn signing_key(&self) -> &std::sync::Arc<crate::crypto::keys::NodeKey> {
        &self.key
    }

    /// This node.
    #[must_use]
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// `working_days` working days after `now`, on this node's calendar.
    pub(super) fn due(&self, now: Timestamp, working_days: u32) -> Timestamp {
        Timestamp::from_datetime(
            self.calendar
                .add_working_days(now.to_datetime(), working_days),
        )
    }
}
