//! # lapor-node
//!
//! One node of the federated LAPOR! complaint system: a province node owns the complaints
//! filed in its region and keeps working with every link down; the national hub aggregates
//! and relays. This crate is the whole node; its modules follow the data flow.
//!
//! ```text
//!  citizen (web / SMS / Open311)          officer (API)
//!           │                                  │
//!           ▼                                  ▼
//!     api::reports ──── parse → call → render ──── api::officers        (api::views)
//!           │                                  │
//!           ▼                                  ▼
//!   tickets::intake ─────────► tickets ◄──── tickets::commands   input: tickets::input
//!                                │ (domain: state machine, SLA)   refusals: tickets::error
//!                                ▼
//!                           event_log   event + chain head +        event_log::store
//!                                │      projection, one tx
//!                                ▼
//!                 (outbox → delivery → network → inbox: federation, later issues)
//!
//!   reads, for every channel: tickets::queries (timelines, by tracking code, inbox, detail,
//!   statistics); who sees what: domain::visibility, domain::report::may_see_reporter
//! ```
//!
//! | module | stage |
//! |---|---|
//! | [`config`] | layered settings: defaults → TOML → `LAPOR__…` environment |
//! | [`config_check`] | `config check`: the configuration and the files it names, checked without starting |
//! | [`telemetry`] | tracing subscriber (text or JSON) |
//! | [`domain`] | pure types and rules: ids, reports, the ticket state machine, fold, SLA calendar, who sees what (`visibility`, `report::may_see_reporter`) |
//! | [`db`] | SQLite/PostgreSQL connection, pool, single writer, embedded migrations, schema |
//! | [`crypto`] | node signing keys, strict JSON for received events, event signatures |
//! | [`event_log`] | the append-only signed log: wire form, canonical bytes, ids, chain heads, keys |
//! | [`tickets`] | the wing every channel uses: `input` (what it accepts, checked), `error` (typed refusals), `intake` (grouped filing), `commands` (act, erase, SLA sweep), `queries` (read models: timelines, find by tracking code, inbox, detail with the contact gate, statistics), `store` (projection queries, rebuild) |
//! | [`api`] | the HTTP API: handlers parse, call `tickets`, render (`views`); `dto` wire bodies and their OpenAPI schemas; `error` the one mapping of every error to a status and code |
//! | [`app`] | builds and runs the node: listeners, background jobs |
//! | [`ops`] | operator commands on the node's files: the node lock, backup and restore |
//! | [`cli`] | `serve`, `migrate`, `rebuild`, `init` |

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod config_check;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod event_log;
pub mod federation;
pub mod metrics;
pub mod ops;
pub mod telemetry;
pub mod tickets;
pub mod tls;
