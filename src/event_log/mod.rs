//! The event log: every ticket change is appended here, in the same transaction as the
//! projection update.
//!
//! - `wire`: an [`Event`](crate::domain::Event) as JSON, its canonical bytes (RFC 8785) and id;
//! - `model`: the `events` and `chain_heads` rows;
//! - `hold`: the restore hold — no own event is written until a restored node has its own
//!   events back;
//! - `rotation`: signed key statements (`keys rotate`), judged and applied at peers;
//! - `store`: append (allocating the node's next `seq` and `prev` from its chain head) and read.

pub mod audit;
pub mod hold;
pub mod keys;
pub mod model;
pub mod rotation;
pub mod store;
pub mod wire;
