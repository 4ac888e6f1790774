//! Cryptography of the event log: node signing keys (`keys`), the strict JSON reader for
//! received events (`strict_json`), event signatures (`signing`) and the Merkle tree that one
//! signature over a group of events uses (`merkle`).

pub mod keys;
pub mod merkle;
pub mod pii;
pub mod signing;
pub mod strict_json;

/// `bytes` as lower-case hex, as `hex::encode` writes it but from a table into one buffer:
/// `hex::encode` collects an iterator of `char`s, which showed in the request thread's
/// profile (ids, hashes, salts: several per report filed).
#[must_use]
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    // Only ASCII digits were written.
    String::from_utf8(out).unwrap_or_default()
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
