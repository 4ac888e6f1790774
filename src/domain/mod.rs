//! The domain: pure types and rules, no IO. Nothing here imports diesel, actix or tokio.

pub mod chain;
pub mod escalation;
pub mod event;
pub mod fold;
pub mod ids;
pub mod milestones;
pub mod reference;
pub mod replication;
pub mod report;
pub mod sla;
pub mod ticket;
pub mod timestamp;
pub mod visibility;

pub use event::{Actor, Change, Created, Event, Role};
pub use ids::{
    AgencyCode, EventId, IdError, NodeId, ProvinceCode, RegionCode, TicketId, TrackingCode,
};
pub use report::{Category, Channel, Privacy, ReportKind};
pub use ticket::{Status, TicketState, TransitionError};
pub use timestamp::Timestamp;

#[cfg(test)]
mod lifecycle_tests;
