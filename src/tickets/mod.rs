//! Tickets: the commands every channel (HTTP API today; web console, SMS, Open311 later) uses
//! on reports and tickets, and their projection.
//!
//! ```text
//!   channel ── input ──► intake ───┐   (file a report: grouped writer transactions)
//!                        commands ─┤   (act, erase, SLA sweep: one transaction each)
//!                                  ▼
//!                     domain (state machine) → event_log + store (projection) + outbox
//!   refusals of all of them: error::TicketError
//! ```
//!
//! | module | role |
//! |---|---|
//! | `handle` | [`Tickets`], the handle every channel holds (database, key, settings, queue) |
//! | `input` | what the wing accepts (report, contact, action) and its checks |
//! | `error` | [`TicketError`]: typed refusals (a field's problem, an unavailable agency, …) and faults |
//! | `intake` | filing reports, grouped into one writer transaction per burst (decisions 24, 25) |
//! | `commands` | actions, erasure, SLA sweep |
//! | `store` | diesel queries on the projection tables, and rebuild |
//! | `model` | row types |
//! | `codes` | tracking codes drawn from a counter through a keyed permutation |
//! | `agencies`, `agencies_cli` | agencies as managed data (list, add, import, disable) |

pub mod agencies;
pub mod agencies_cli;
pub mod codes;
pub mod commands;
pub mod error;
pub mod handle;
pub mod input;
pub mod intake;
pub mod model;
pub mod store;

pub use commands::Swept;
pub use error::{Problem, TicketError, Unavailability};
pub use handle::Tickets;
pub use input::{Action, Contact, NewReport, contact_value, hash_token};
pub use intake::{IntakeStats, Submitted};
