//! Password hashing: argon2id with the `argon2` crate's default parameters (19 MiB, 2 passes,
//! 1 lane) and a fresh random salt per hash, stored as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`). Verification reads the parameters from the
//! stored string, so hashes made with other parameters keep working.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A valid hash, with the default parameters, of a password nobody knows. `login` verifies
/// against it when the username does not exist, so both cases cost one argon2 run.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$vHIYamW1pCzWMddJp+Ir2Q$oPMC2QavFjtd2HnSvtQ9hAufCNjbXkbzYarbLubqa4I";

/// Hashing failed (only on internal argon2 errors, e.g. memory allocation).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash password: {0}")]
pub struct HashError(String);

/// Hashes a password with argon2id and a random salt; returns the PHC string.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `stored`. A malformed stored hash matches
/// nothing (and is logged: it means the row was damaged).
#[must_use]
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is malformed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterx", &h));
        assert_ne!(h, hash("correct horse battery").unwrap(), "salts differ");
    }

    #[test]
    fn dummy_hash_is_valid_with_default_params() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let default = argon2::Params::default();
        let params = argon2::Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (default.m_cost(), default.t_cost(), default.p_cost())
        );
        assert!(!verify("", DUMMY_HASH));
        assert!(!verify("x", "not a hash"));
    }
}
