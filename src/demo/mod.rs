//! `lapor-node demo`: a whole federation on loopback (hub + two provinces) and a scripted
//! walk of a complaint across it; [`cluster`], [`link`] and the link emulator [`linksim`] are
//! shared with the tests and the benchmarks; `lapor-node linksim` runs the emulator alone
//! ([`linksim_cli`]).

pub mod cluster;
pub mod kannel;
pub mod link;
pub mod linksim;
pub mod linksim_cli;
pub mod scenario;
