//! The outbox: per-destination queues of events still to be acknowledged, written in the same
//! transaction as the event itself (invariant 5).
//!
//! Who receives what (invariant 6, `docs/PROTOCOL.md`):
//! - the hub: every event this node writes (events carry no personal data, only a commitment);
//! - a ticket's participants — its origin and every node that has handled it — its events;
//!   a node that becomes the handler also gets the ticket's earlier events;
//! - the personal-data part (salt + contact) rides with the `created` event only to the
//!   handling node, only when the report is not anonymous, never to the hub.
//!
//! A row leaves the outbox only when its destination acknowledged the event (`accepted` or
//! `duplicate`); a refused event stays, marked with the destination's reason, for operators.

pub mod store;

pub use store::{Claimed, OutboxStats, enqueue_for};
