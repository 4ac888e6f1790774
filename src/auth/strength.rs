//! Password rules for officer accounts (`officer add`, `officer reset` and every other path
//! that sets a password goes through [`check`]). Each refusal names its rule:
//!
//! - at least [`MIN_CHARS`] and at most [`MAX_CHARS`] characters;
//! - at least [`MIN_DISTINCT`] different characters (no `aaaaaaaaaaaa`, `121212121212`);
//! - not containing the username (case-insensitive);
//! - not a common password: the built-in list (`src/auth/common_passwords.txt`, about 430
//!   entries), compared lower-cased, also once trailing digits and symbols are removed
//!   (`Password2024!` is `password`).

use std::collections::HashSet;
use std::sync::LazyLock;

/// Minimum length, in characters.
pub const MIN_CHARS: usize = 12;
/// Maximum length, in characters.
pub const MAX_CHARS: usize = 1024;
/// Minimum number of different characters.
pub const MIN_DISTINCT: usize = 5;

const COMMON_TEXT: &str = include_str!("common_passwords.txt");

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_TEXT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Why a password is refused: the rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Weak {
    /// Shorter than [`MIN_CHARS`].
    #[error("must be at least {MIN_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_CHARS`].
    #[error("must be at most {MAX_CHARS} characters")]
    TooLong,
    /// Fewer than [`MIN_DISTINCT`] different characters.
    #[error("must use at least {MIN_DISTINCT} different characters")]
    TooRepetitive,
    /// Contains the username.
    #[error("must not contain the username")]
    ContainsUsername,
    /// A common password.
    #[error("is a common password (on the built-in list of common passwords); choose another")]
    Common,
}

/// Checks `password` for the account `username`.
///
/// # Errors
///
/// The first rule the password breaks.
pub fn check(username: &str, password: &str) -> Result<(), Weak> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(Weak::TooShort);
    }
    if n > MAX_CHARS {
        return Err(Weak::TooLong);
    }
    let lower = password.to_lowercase();
    if lower.chars().collect::<HashSet<_>>().len() < MIN_DISTINCT {
        return Err(Weak::TooRepetitive);
    }
    let user = username.trim().to_lowercase();
    if !user.is_empty() && lower.contains(&user) {
        return Err(Weak::ContainsUsername);
    }
    let base = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    if COMMON.contains(lower.as_str()) || COMMON.contains(base) {
        return Err(Weak::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_is_named() {
        assert_eq!(check("budi", "short"), Err(Weak::TooShort));
        assert_eq!(check("budi", &"x".repeat(1025)), Err(Weak::TooLong));
        assert_eq!(check("budi", "aaaaaaaaaaaaaaaa"), Err(Weak::TooRepetitive));
        assert_eq!(check("budi", "121212121212"), Err(Weak::TooRepetitive));
        assert_eq!(
            check("budi.s", "my name is Budi.S ok"),
            Err(Weak::ContainsUsername)
        );
        for common in [
            "password1234",
            "Password2024!",
            "qwertyuiop123",
            "Bismillah12345",
            "indonesia2026",
            "1q2w3e4r5t6y",
            "correct horse battery staple",
        ] {
            assert_eq!(check("budi", common), Err(Weak::Common), "{common}");
        }
        assert!(Weak::Common.to_string().contains("common password"));
        assert!(Weak::TooShort.to_string().contains("12 characters"));
    }

    #[test]
    fn good_passwords_pass() {
        for good in [
            "correct horse battery",
            "demo password 2026",
            "Kuningan-lampu-7-mati",
            "23456789abcdefghjkmn",
        ] {
            assert_eq!(check("budi", good), Ok(()), "{good}");
        }
    }

    #[test]
    fn the_list_is_loaded_lower_case_without_comments() {
        assert!(COMMON.len() > 300, "{}", COMMON.len());
        assert!(COMMON.iter().all(|p| *p == p.to_lowercase()));
        assert!(!COMMON.iter().any(|p| p.starts_with('#')));
    }
}
