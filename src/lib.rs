//! # lapor-node
//!
//! One node of the federated LAPOR! complaint system: a province node owns the complaints
//! filed in its region and keeps working with every link down; the national hub aggregates
//! and relays. This crate is the whole node; its folders follow the data flow.
//!
//! ## Layout
//!
//! One report, from the citizen to a peer's inbox, by folder (`docs/ARCHITECTURE.md` has the
//! same map with every file):
//!
//! ```text
//!  citizen / officer (HTTP, browser)               peer node (mTLS)
//!         │                                               │
//!         ▼                                               ▼
//!    api / web (parse, call, render)         federation::server ──► federation::inbox
//!         │                                                             │ judge, store,
//!         ▼                                                             │ apply (one tx)
//!    tickets::{intake, commands, queries} ──► domain (rules, no IO)     ▼
//!         │ one write transaction                            event_log + tickets::store
//!         ▼
//!    event_log::store (signed, chained) + tickets::store + federation::outbox
//!         │ the commit wakes the delivery worker
//!         ▼
//!    federation::push ══ mTLS ══► peer          federation::pull ◄══ peer's federation::feed
//! ```
//!
//! | module | role |
//! |---|---|
//! | [`config`], [`config_check`] | layered settings (defaults → TOML → `LAPOR__…` environment); `config check`, `config example` |
//! | [`telemetry`], [`metrics`] | tracing subscriber (text or JSON); the Prometheus registry both wings count into |
//! | [`domain`] | pure types and rules: ids, reports, events, the ticket state machine and fold (with its `milestones`), SLA calendar, chain rules, who receives what (`replication`), who sees what (`visibility`, `report::may_see_reporter`) |
//! | [`db`] | SQLite/PostgreSQL connection, pool, the single writer (group commit, reconnect, commit notices), migrations, schema |
//! | [`crypto`] | node signing keys, strict JSON, event signatures (alone or grouped under a Merkle root), personal-data commitments |
//! | [`event_log`] | the append-only signed log: wire form, canonical bytes, ids, chain heads, keys, audit |
//! | [`tickets`] | the wing every channel uses: `input` (what it accepts, checked), `error` (typed refusals), `intake` (grouped filing), `commands` (act, erase, SLA sweep), `queries` (read models: timelines, find by tracking code, inbox, detail with the contact gate, statistics), `store` (projection queries, rebuild) |
//! | [`api`] | the HTTP API: handlers parse, call `tickets`, render (`views`); `dto` wire bodies and their OpenAPI schemas; `error` the one mapping of every error to a status and code |
//! | [`web`] | the web console (HTML, Bahasa Indonesia and English, no JavaScript): citizens file and follow reports, officers handle tickets, admins manage accounts — through `tickets` and `auth` exactly as `api` does |
//! | [`sms`] | the SMS channel through Kannel: the endpoint its `sms-service` calls, the keyword parser, answers and notices in Bahasa Indonesia (GSM-7), the durable SMS outbox and its sender (`sendsms`), flood limits, blocked numbers |
//! | [`auth`] | officer accounts, sessions, the role rule, account administration (`accounts`), login throttles |
//! | [`federation`] | the federation wing: `protocol` at the bottom; `client` (with `push`, `pull`) and `server` (with `feed`, `inbox`, `judge`) over the shared `node::Member`; `outbox`, `peers`, `quarantine`, `store`; `dictionary` (the zstd dictionary every node ships); `roster`, `roster_store`, `membership` (the hub-signed roster and the live membership) |
//! | [`hub`] | national statistics: each ticket's cells (counts, SLA outcomes, flows) from its folded state, kept in the projection's transaction, read by rollup; the checked requests and read models of `/api/v1/hub/…` |
//! | [`tls`] | rustls for the mTLS listener and client, peer identity, the development CA, offline revocation (`revocation`) |
//! | [`ops`] | operator commands on the node's files: the node lock, backup and restore, `peers` and `quarantine`, `sync` (a progress bar on the running node's delivery) |
//! | [`demo`] | the in-process cluster for tests, benchmarks and `demo`; cuttable links over an emulated line (bandwidth, delay, queue, flapping: `demo::linksim`); the demo's catch-up over an emulated VSAT link (`demo::catchup`); a real Kannel on loopback (`demo::kannel`) and the demo's first report by SMS (`demo::sms_walk`) |
//! | [`app`], [`cli`] | builds and runs the node (listeners, workers, jobs); the command line |

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
pub mod hub;
pub mod metrics;
pub mod ops;
pub mod sms;
pub mod telemetry;
pub mod tickets;
pub mod tls;
pub mod web;
