//! `lapor-node demo`: a whole federation on loopback (hub + two provinces) and a scripted
//! walk of a complaint across it; [`cluster`] and [`link`] are shared with the tests.

pub mod cluster;
pub mod link;
pub mod scenario;
