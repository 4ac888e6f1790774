//! Personal-data commitments (invariant 6). An event never carries the reporter's identity;
//! it carries `pii` = lower-case hex SHA-256 of (a random 32-byte salt ‖ the RFC 8785 bytes of
//! the personal data as a JSON object). The salt and the data are stored beside the event and
//! travel only to entitled nodes; erasing them leaves every signature valid.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A fresh random salt, hex ([`new_salt_bytes`]).
#[must_use]
pub fn new_salt() -> String {
    crate::crypto::to_hex(&new_salt_bytes())
}

/// The commitment to `data` under `salt_hex`; `None` if the salt is not 32 bytes of lower-case
/// hex (64 digits: one spelling per salt) or the data cannot be canonicalised.
#[must_use]
pub fn commit(salt_hex: &str, data: &Value) -> Option<String> {
    if salt_hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let salt = hex::decode(salt_hex).ok().filter(|s| s.len() == 32)?;
    let canonical = serde_json_canonicalizer::to_vec(data).ok()?;
    let mut h = Sha256::new();
    h.update(&salt);
    h.update(&canonical);
    Some(crate::crypto::to_hex(&h.finalize()))
}

/// [`commit`] for a JSON object whose members are all strings, given as `(key, value)` pairs
/// in RFC 8785 key order (ASCII keys, sorted), without building a JSON tree: the canonical
/// bytes of such an object are its members in that order, each string with JSON's short
/// escapes and `\u00xx` for the other control characters, which is how `serde_json` writes
/// strings. Returns `None` if the keys are not in order.
#[must_use]
pub fn commit_strings(salt: &[u8; 32], members: &[(&str, &str)]) -> Option<String> {
    let ordered = members.windows(2).all(|w| w[0].0 < w[1].0);
    if !ordered || !members.iter().all(|(k, _)| k.is_ascii()) {
        return None;
    }
    let mut canonical = Vec::with_capacity(
        16 + members
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>(),
    );
    canonical.push(b'{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(b',');
        }
        serde_json::to_writer(&mut canonical, k).ok()?;
        canonical.push(b':');
        serde_json::to_writer(&mut canonical, v).ok()?;
    }
    canonical.push(b'}');
    let mut h = Sha256::new();
    h.update(salt);
    h.update(&canonical);
    Some(crate::crypto::to_hex(&h.finalize()))
}

/// A fresh random salt: from the thread's CSPRNG (ChaCha, seeded and reseeded from the
/// operating system), which spares a system call per report.
#[must_use]
pub fn new_salt_bytes() -> [u8; 32] {
    use rand::RngCore as _;
    let mut salt = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// Whether `data` and `salt_hex` open `commitment`.
#[must_use]
pub fn opens(commitment: &str, salt_hex: &str, data: &Value) -> bool {
    commit(salt_hex, data).is_some_and(|c| c == commitment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commitment_opens_only_with_its_salt_and_data() {
        let data = serde_json::json!({"name": "Siti", "phone": "+628111222333"});
        let salt = new_salt();
        let c = commit(&salt, &data).unwrap();
        assert!(opens(&c, &salt, &data));
        assert!(!opens(&c, &new_salt(), &data));
        assert!(!opens(
            &c,
            &salt,
            &serde_json::json!({"name": "Siti", "phone": "+628111222334"})
        ));
        // Member order does not matter (canonical bytes).
        let reordered: Value =
            serde_json::from_str(r#"{"phone":"+628111222333","name":"Siti"}"#).unwrap();
        assert!(opens(&c, &salt, &reordered));
        assert_eq!(commit("zz", &data), None);
        // The salt is lower-case hex: the same bytes spelt in upper case open nothing.
        assert!(!opens(&c, &salt.to_uppercase(), &data));
    }

    proptest::proptest! {
        /// The commitment written without a JSON tree equals the canonicaliser's, for any
        /// text (control characters, quotes, backslashes, non-ASCII, U+2028) and any subset
        /// of the members.
        #[test]
        fn string_members_commit_as_the_canonical_form_does(
            salt in proptest::array::uniform32(proptest::num::u8::ANY),
            name in proptest::option::of("(?s).{0,12}"),
            phone in proptest::option::of("[\\u{0}-\\u{7f}\\u{2028}é😀]{0,12}"),
            email in proptest::option::of("(?s).{0,12}"),
        ) {
            let members: Vec<(&str, &str)> = [("email", &email), ("name", &name), ("phone", &phone)]
                .into_iter()
                .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
                .collect();
            let object: serde_json::Map<String, Value> = members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                .collect();
            proptest::prop_assert_eq!(
                commit_strings(&salt, &members),
                commit(&crate::crypto::to_hex(&salt), &Value::Object(object))
            );
        }
    }

    #[test]
    fn string_members_out_of_key_order_are_refused() {
        let salt = [1u8; 32];
        assert!(commit_strings(&salt, &[("email", "a"), ("name", "b")]).is_some());
        assert_eq!(
            commit_strings(&salt, &[("name", "b"), ("email", "a")]),
            None
        );
        assert_eq!(commit_strings(&salt, &[("name", "b"), ("name", "c")]), None);
        assert_eq!(commit_strings(&salt, &[("nâme", "b")]), None);
    }
}
