//! Cryptography of the event log: node signing keys (`keys`), the strict JSON reader for
//! received events (`strict_json`), event signatures (`signing`) and the Merkle tree that one
//! signature over a group of events uses (`merkle`).

pub mod keys;
pub mod merkle;
pub mod pii;
pub mod signing;
pub mod strict_json;
