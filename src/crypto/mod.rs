//! Cryptography of the event log: node signing keys (`keys`), the strict JSON reader for
//! received events (`strict_json`), event signatures (`signing`) and the Merkle tree that one
//! signature over a group of events uses (`merkle`).

pub mod keys;
pub mod merkle;
pub mod pii;
pub mod signing;
pub mod strict_json;

/// `bytes` as lower-case hex, as `hex::encode` writes it but into one buffer
/// (`hex::encode_to_slice`): `hex::encode` collects an iterator of `char`s, which showed in
/// the request thread's profile (ids, hashes, salts: several per report filed).
#[must_use]
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // The buffer has exactly the length the encoding needs, and hex digits are ASCII.
    match hex::encode_to_slice(bytes, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => hex::encode(bytes),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn to_hex_writes_what_hex_encode_writes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(super::to_hex(&bytes), hex::encode(&bytes));
        }
    }
}
