//! Personal-data commitments (invariant 6). An event never carries the reporter's identity;
//! it carries `pii` = lower-case hex SHA-256 of (a random 32-byte salt ‖ the RFC 8785 bytes of
//! the personal data as a JSON object). The salt and the data are stored beside the event and
//! travel only to entitled nodes; erasing them leaves every signature valid.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A fresh random salt, hex: from the thread's CSPRNG (ChaCha, seeded and reseeded from the
/// operating system), which spares a system call per report.
#[must_use]
pub fn new_salt() -> String {
    use rand::RngCore as _;
    let mut salt = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salt);
    hex::encode(salt)
}

/// The commitment to `data` under `salt_hex`; `None` if the salt is not 32 bytes of hex or the
/// data cannot be canonicalised.
#[must_use]
pub fn commit(salt_hex: &str, data: &Value) -> Option<String> {
    let salt = hex::decode(salt_hex).ok().filter(|s| s.len() == 32)?;
    let canonical = serde_json_canonicalizer::to_vec(data).ok()?;
    let mut h = Sha256::new();
    h.update(&salt);
    h.update(&canonical);
    Some(hex::encode(h.finalize()))
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
    }
}
