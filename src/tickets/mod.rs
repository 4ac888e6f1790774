//! Tickets: everything a channel (HTTP API and web console today; SMS, Open311 and the hub's
//! statistics later) does with reports and tickets, without knowing the channel.
//!
//! ```text
//!   channel ── input ──► intake ───┐   (file a report: grouped writer transactions)
//!      │                 commands ─┤   (act, erase, SLA sweep: one transaction each)
//!      │                           ▼
//!      │              domain (state machine) → event_log + store (projection) + outbox
//!      │
//!      └──────────────── queries ◄── store + event_log  (read models; who sees what)
//!   refusals of all of them: error::TicketError
//! ```
//!
//! | module | role |
//! |---|---|
//! | `handle` | [`Tickets`], the handle every channel holds (database, key, settings, queue) |
//! | `input` | what the wing accepts (report, contact, action, inbox query) and its checks |
//! | `error` | [`TicketError`]: typed refusals (field problems, scope, hidden report, …) and faults |
//! | `intake` | filing reports, grouped into one writer transaction per burst (decisions 24, 25) |
//! | `commands` | actions (officer, citizen follow-up), erasure, SLA sweep |
//! | `escalations` | SLA escalations to the node's verifiers: recorded with a breach, listed, acknowledged |
//! | `queries` | the read side: timelines, find by tracking code, inbox, ticket detail, statistics |
//! | `phone` | the SMS channel's follow-up: the reporter's number stands in for the follow-up token |
//! | `store` | diesel queries on the projection tables, and rebuild |
//! | `model` | row types |
//! | `codes` | tracking codes drawn from a counter through a keyed permutation |
//! | `agencies`, `agencies_cli` | agencies as managed data (list, add, import, disable) |

pub mod agencies;
pub mod agencies_cli;
pub mod codes;
pub mod commands;
pub mod error;
pub mod escalations;
pub mod handle;
pub mod input;
pub mod intake;
pub mod model;
pub mod phone;
pub mod queries;
pub mod store;

pub use commands::Swept;
pub use error::{OutOfScope, Problem, TicketError, Unavailability};
pub use escalations::EscalationView;
pub use handle::Tickets;
pub use input::{Action, Contact, InboxQuery, NewReport, contact_value, hash_token};
pub use intake::{IntakeStats, Submitted, TxHook};
pub use queries::{Detail, Found, InboxPage, ReportView, Statistics, Step};
