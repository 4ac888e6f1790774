//! Federation: how events leave this node, reach its peers and the hub, and are judged on
//! arrival. The wire protocol is at the bottom; the client (push and pull) and the server (the
//! mTLS listener) both build on it and on this node's federation state, never on each other.
//!
//! ```text
//!            tickets wing (one transaction: event + chain head + projection + outbox rows)
//!                                     │
//!                                     ▼
//!   outbox ──► client (push batches, pull feeds) ══ mTLS ══► server (routes) ──► inbox
//!     │            │                                            │                 │
//!     └────────────┴──────────── protocol (wire types, outcomes, reasons) ────────┘
//!                  peers (backoff, contact, pinned keys)   store / quarantine / feed
//! ```
//!
//! | module | role |
//! |---|---|
//! | [`protocol`] | the wire: batch, answer, feed page, node info, personal-data part, outcomes and their typed reasons, compression, batch ids |
//! | [`dictionary`] | the zstd dictionary every node ships, and how peers agree to use it |
//! | [`outbox`] | per-destination queues written with each event; batches built from them |
//! | [`peers`] | per-peer state: persisted backoff, last contact, catch-up cursors, pinned keys, the operator view |
//! | [`error`] | what can go wrong on the federation side |
//! | [`node`] | this node as a member: identity, settings, database, inbox, contacts and wake-ups — shared by client and server |
//! | [`client`] | the mTLS client: key fetching and pinning, the workers that run push and pull |
//! | [`push`] | delivery: outbox batches sent, answers settled |
//! | [`pull`] | catch-up: feeds read from the origin or the hub, gaps filled |
//! | [`recover`] | a restored node takes its own events back from the hub and peers before it writes |
//! | [`server`] | the mTLS listener's routes: node info, batches in, feed out, statuses in |
//! | [`status`] | a member's signed status for the hub: built, signed, verified and kept (latest per node) |
//! | [`status_send`] | a province's status sender: every minute and soon after a change, its own task |
//! | [`feed`] | what a member may pull: its events after a cursor, or whole tickets |
//! | [`inbox`] | events received: signatures checked, then judged, stored and applied in one transaction (`judge`) |
//! | [`store`] | lookups of held events used by the inbox, the feed and the client |
//! | [`lease`] | which process of several sharing a PostgreSQL database delivers to a peer or catches up |
//! | [`quarantine`] | refused events kept for operators, bounded per sender; retried after a fix |
//! | [`roster`] | the hub-signed roster: wire format, signature, consistency rules, diff |
//! | [`roster_store`] | rosters held; accepting a newer one with its agencies and keys in one transaction |
//! | [`membership`] | the live membership (static peers, then the roster): peers, provinces, certificate rules |

pub mod client;
pub mod dictionary;
pub mod error;
pub mod feed;
pub mod inbox;
mod judge;
pub mod lease;
pub mod membership;
pub mod node;
pub mod outbox;
pub mod peers;
pub mod protocol;
pub mod pull;
pub mod push;
pub mod quarantine;
pub mod recover;
pub mod roster;
mod roster_fetch;
pub mod roster_store;
pub mod server;
pub mod status;
pub mod status_send;
pub mod store;

pub use client::Federation;
pub use error::FedError;
pub use node::Member;
pub use peers::PeerStatus;
pub use pull::Pulled;
pub use push::Delivered;
