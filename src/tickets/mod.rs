//! Tickets: the handling actions and their projection.
//!
//! - `service`: the commands (submit a report, take an action, SLA sweep) — each checks the
//!   input, lets the domain state machine decide, appends the event and updates the projection
//!   in one transaction;
//! - `store`: the projection's queries (`tickets`, `reporter_contacts`, `agencies`) and rebuild;
//! - `model`: the row types;
//! - `codes`: tracking codes drawn from a counter through a keyed permutation;
//! - `agencies`: agencies as managed data (list, add, import, disable).

pub mod agencies;
pub mod agencies_cli;
pub mod codes;
pub mod model;
pub mod service;
pub mod store;

pub use service::{
    Action, Contact, IntakeStats, NewReport, Submitted, TicketError, Tickets, contact_value,
    hash_token,
};
