//! Cryptography of the event log: node signing keys (`keys`), the strict JSON reader for
//! received events (`strict_json`), and event signatures (`signing`).

pub mod keys;
pub mod pii;
pub mod signing;
pub mod strict_json;
