//! `lapor-node demo`: a whole federation on loopback (hub + two provinces) and a scripted
//! walk of a complaint across it, ending with a catch-up over an emulated VSAT link
//! ([`catchup`]); [`cluster`], [`link`] and the link emulator [`linksim`] are shared with the
//! tests and the benchmarks; [`console`] lists the web consoles and their accounts;
//! `lapor-node linksim` runs the emulator alone ([`linksim_cli`]). With Kannel installed, the
//! demo's first report is filed by a real SMS ([`kannel`], [`sms_walk`]).

pub mod catchup;
pub mod cluster;
pub mod console;
pub mod join;
pub mod kannel;
pub mod link;
pub mod linksim;
pub mod linksim_cli;
pub mod scenario;
pub mod sms_walk;
