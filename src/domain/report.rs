//! What a citizen files: kind, channel, category and privacy flags.

use serde::{Deserialize, Serialize};

/// The three kinds of report LAPOR! accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A complaint about a public service.
    Pengaduan,
    /// A suggestion.
    Aspirasi,
    /// A request for public information.
    PermintaanInformasi,
}

/// How the report reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The web form.
    Web,
    /// SMS to the short number.
    Sms,
    /// The JSON API (mobile apps).
    Api,
    /// An Open311 client.
    Open311,
    /// Filed by an officer for a citizen at a service desk.
    WalkIn,
}

/// A report category: a short lower-case slug such as `transportasi` or `kesehatan`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    /// Parses 2–40 characters of `a-z0-9_-`.
    pub fn parse(s: &str) -> Result<Self, super::IdError> {
        let ok = (2..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(super::IdError {
                what: "category",
                value: s.chars().take(80).collect(),
                why: "must be 2-40 characters of a-z, 0-9, '_' or '-'",
            })
        }
    }

    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = super::IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Category> for String {
    fn from(value: Category) -> String {
        value.0
    }
}

/// Privacy flags, set by the citizen at intake and enforced by the software.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Privacy {
    /// *Anonim*: the report may be public, but the reporter's identity is hidden from everyone
    /// except the origin node's verifiers (also from the agency).
    pub anonymous: bool,
    /// *Rahasia*: the report itself is not public.
    pub confidential: bool,
}
