//! Phone numbers: the sender Kannel reports, normalised to one spelling (`+62…`), and the
//! keyed hash the node counts a number by without keeping it (rate limits, the daily cap).

use sha2::{Digest, Sha256};

/// A sender that is not a phone number a reply could reach (an alphanumeric sender, a short
/// code, garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sender is not a phone number (8 to 15 digits, national or international)")]
pub struct NotANumber;

/// `raw` as `+<country><number>`: spaces, dashes, dots and brackets dropped; a national
/// number (`08…`) or one without its plus (`628…`) becomes `+628…`.
pub fn normalise(raw: &str) -> Result<String, NotANumber> {
    let trimmed = raw.trim();
    let plus = trimmed.starts_with('+') || trimmed.starts_with("00");
    let digits: String = trimmed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '+'))
        .collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NotANumber);
    }
    let international = if let Some(rest) = digits.strip_prefix("00").filter(|_| plus) {
        rest.to_owned()
    } else if plus || digits.starts_with("62") {
        digits
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("62{rest}")
    } else {
        return Err(NotANumber);
    };
    if !(8..=15).contains(&international.len()) || international.starts_with('0') {
        return Err(NotANumber);
    }
    Ok(format!("+{international}"))
}

/// Keys numbers with the node's secret (`sms_secrets`): the same number always gets the same
/// key here, and the key reveals nothing without the secret.
#[derive(Clone)]
pub struct NumberKey(String);

impl std::fmt::Debug for NumberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NumberKey(..)")
    }
}

impl NumberKey {
    /// With the secret `secret`.
    #[must_use]
    pub const fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The key of a normalised number (32 hex digits).
    #[must_use]
    pub fn of(&self, phone: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"lapor-sms-number\n");
        h.update(self.0.as_bytes());
        h.update(b"\n");
        h.update(phone.as_bytes());
        crate::crypto::to_hex(&h.finalize()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_international_spellings_are_one_number() {
        for raw in [
            "081234567890",
            "6281234567890",
            "+6281234567890",
            "+62 812-3456-7890",
            "006281234567890",
        ] {
            assert_eq!(normalise(raw).as_deref(), Ok("+6281234567890"), "{raw}");
        }
        assert_eq!(normalise("+6591234567").as_deref(), Ok("+6591234567"));
        for raw in [
            "TELKOMSEL",
            "1708",
            "",
            "+",
            "0",
            "12345678",
            "+62812345678901234",
        ] {
            assert_eq!(normalise(raw), Err(NotANumber), "{raw}");
        }
    }

    #[test]
    fn keys_depend_on_the_secret() {
        let (a, b) = (NumberKey::new("a".into()), NumberKey::new("b".into()));
        assert_eq!(a.of("+62811"), a.of("+62811"));
        assert_ne!(a.of("+62811"), b.of("+62811"));
        assert_ne!(a.of("+62811"), a.of("+62812"));
    }
}
