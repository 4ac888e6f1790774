//! The national picture: statistics kept as the events are stored, and the queries on them.
//!
//! ```text
//!  tickets::store (insert / update / rebuild of a projection row, in the writer's transaction)
//!        │ old state, new state
//!        ▼
//!  cells (pure: a ticket's contribution)  ──►  store (upsert the difference)
//!                                                   │ stat_counts · stat_sla · stat_flows
//!                                                   ▼
//!  api::hub ──► query (checked requests, rollup plans, read models, small cells) ──► read
//! ```
//!
//! - `cells`: a ticket's cells (counts, SLA outcomes, flows) as a function of its folded state;
//!   the rollups and their grains;
//! - `store`: adding cells in the caller's transaction, clearing them for a rebuild;
//! - `read`: aggregate statements on one rollup;
//! - `query`: what the statistics API and the web console ask (checked input, typed refusals)
//!   and what they get back (read models, with small cells suppressed for the public).
//!
//! The federation's health beside it: `health` (chains held, and each member's signed status
//! against what the hub holds), `alerts` (raised once, kept while they hold), `escalation` (a
//! node's repeated SLA breaches, an alert of their own) and `watch` (the one answer the API,
//! the CLI, the web page and the alert job read).

/// The migration that adds the statistics tables: when a start applies it to a database that
/// holds tickets, the node rebuilds the projection once to fill them (`app`).
pub const STATISTICS_MIGRATION: &str = "2026-12-07-000012";

pub mod alerts;
pub mod cells;
pub mod escalation;
pub mod generate;
pub mod health;
pub mod plan;
pub mod query;
pub mod read;
pub mod report;
pub mod store;
pub mod watch;
