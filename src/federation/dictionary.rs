//! The zstd dictionary every node ships: trained on synthetic events (`cargo bench --bench
//! dictionary`, which also shows what it saves), it holds the field names, formats and common
//! values that every event repeats, so a small batch on a thin link compresses almost as well
//! as a large one (`docs/BENCHMARKS.md`, "A dictionary for small batches").
//!
//! Negotiation needs no round trip: a node names the dictionary it holds in the
//! [`HEADER`] of every federation request and answer; a sender uses it towards a peer once it
//! has seen the peer name the same id, and a zstd frame records the id of the dictionary it
//! needs, so a receiver decodes plain and dictionary frames alike and refuses one that needs a
//! dictionary it does not hold (`bad_compression`, naming the id).

use std::sync::OnceLock;

/// The dictionary's bytes (`src/federation/events.zdict`).
pub const BYTES: &[u8] = include_bytes!("events.zdict");

/// The header that names the dictionary a node holds: `x-lapor-zstd-dict: <id>`.
pub const HEADER: &str = "x-lapor-zstd-dict";

/// The dictionary's id (0 when none is shipped).
#[must_use]
pub fn id() -> u32 {
    zstd::zstd_safe::get_dict_id_from_dict(BYTES).map_or(0, std::num::NonZeroU32::get)
}

/// The id as the header's value, when a dictionary is shipped.
#[must_use]
pub fn header_value() -> Option<&'static str> {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| id().to_string());
    (id() != 0).then_some(text.as_str())
}

/// Whether a header value names the dictionary this node holds.
#[must_use]
pub fn names_ours(value: Option<&[u8]>) -> bool {
    header_value().is_some_and(|ours| value == Some(ours.as_bytes()))
}

/// zstd-compresses `bytes` at `level` with the dictionary (plain zstd when none is shipped,
/// or if the dictionary cannot be loaded).
#[must_use]
pub fn compress(bytes: &[u8], level: i32) -> Vec<u8> {
    if id() == 0 {
        return super::protocol::compress_at(bytes, level);
    }
    zstd::bulk::Compressor::with_dictionary(level, BYTES)
        .and_then(|mut c| c.compress(bytes))
        .unwrap_or_else(|_| super::protocol::compress_at(bytes, level))
}

/// The dictionary a zstd frame needs, if any (0: none).
#[must_use]
pub fn needed_by(frame: &[u8]) -> u32 {
    zstd::zstd_safe::get_dict_id_from_frame(frame).map_or(0, std::num::NonZeroU32::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::protocol::{DecompressError, decompress};

    fn sample() -> Vec<u8> {
        br#"{"batch":"ab","events":[{"id":"x","origin":"prov-53.lapor.test","kind":"created"}],"pii":[]}"#
            .repeat(3)
    }

    #[test]
    fn a_dictionary_is_shipped_and_its_frames_decode_back() {
        assert_ne!(id(), 0, "events.zdict is not a zstd dictionary");
        let body = sample();
        let packed = compress(&body, 19);
        assert_eq!(needed_by(&packed), id());
        assert_eq!(decompress(&packed, 1 << 20).unwrap(), body);
        // Plain frames still decode.
        let plain = crate::federation::protocol::compress_at(&body, 3);
        assert_eq!(needed_by(&plain), 0);
        assert_eq!(decompress(&plain, 1 << 20).unwrap(), body);
    }

    #[test]
    fn a_frame_that_needs_another_dictionary_is_refused_by_name() {
        let samples: Vec<Vec<u8>> = (0..400)
            .map(|i| format!(r#"{{"seq":{i},"kind":"other","at":"{}"}}"#, i * 7919).into_bytes())
            .collect();
        let other = zstd::dict::from_samples(&samples, 1024).unwrap();
        let other_id =
            zstd::zstd_safe::get_dict_id_from_dict(&other).map_or(0, std::num::NonZero::get);
        let packed = zstd::bulk::Compressor::with_dictionary(3, &other)
            .unwrap()
            .compress(&sample())
            .unwrap();
        match decompress(&packed, 1 << 20) {
            Err(DecompressError::UnknownDictionary(n)) => assert_eq!(n, other_id),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_header_names_only_this_dictionary() {
        let ours = header_value().unwrap();
        assert!(names_ours(Some(ours.as_bytes())));
        assert!(!names_ours(Some(b"12345")));
        assert!(!names_ours(None));
    }
}
