//! A link emulator in userspace (this kernel has no `netem`): a [`Line`] is one physical
//! link between two sides, A and B, with a [`Shape`] per direction — bandwidth, one-way
//! delay, jitter and a bounded queue — an up/down state with scheduled cuts and flapping, and
//! byte counters. [`super::link::Link`] proxies carry TCP connections over it.
//!
//! ```text
//!  clients at A ──► Link (side A) ──┐                  ┌──► server at B
//!                                   ├─ Line: A→B pipe ─┤
//!  server at A  ◄── Link (side B) ◄─┴─ Line: B→A pipe ◄┴─── clients at B
//! ```
//!
//! Every connection in one direction, through any proxy on the line, shares that direction's
//! [`Pipe`]: one serialisation clock and one queue. A chunk of `len` bytes admitted at `now`
//! leaves at `max(now, free) + len / rate` (and `free` becomes that time) and arrives one
//! delay (plus jitter) later; a connection's bytes never overtake each other. The queue is the
//! bytes admitted but not yet serialised, `(free - now) × rate`; when a chunk does not fit, the
//! proxy stops reading that connection until it does, so TCP's backpressure reaches the
//! sender as a modem's full buffer would. Reading and delivering are pipelined (a reader
//! schedules chunks, a writer sleeps until each one's arrival), so a long fat pipe is filled.
//!
//! Not modelled: packet headers and acknowledgements (the counters are payload bytes), loss
//! other than a cut, and reordering. A new connection's first bytes are held for one round
//! trip, the price of the TCP handshake the proxy's loopback `connect` does not pay.
//!
//! | file | role |
//! |---|---|
//! | [`shape`] | what a direction does: rate, delay, jitter, queue; the sides |
//! | [`pipe`] | one direction's serialisation clock and byte counters |
//! | [`line`](mod@line) | the two pipes, up/down state, cuts and flapping, the counters |

pub mod line;
pub mod pipe;
pub mod shape;

pub use line::{Counters, Line};
pub use pipe::{Pipe, Traffic};
pub use shape::{DEFAULT_QUEUE_BYTES, Shape, Side};
