//! Identifiers and codes. Each type checks its rules in `parse` ("parse, don't validate"):
//! once you hold a `NodeId` or a `ProvinceCode`, it is well formed.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Why an identifier or code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {why}")]
pub struct IdError {
    /// Which kind of identifier.
    pub what: &'static str,
    /// The rejected input (codes and ids only: never personal data).
    pub value: String,
    /// The rule it broke.
    pub why: &'static str,
}

fn id_error(what: &'static str, value: &str, why: &'static str) -> IdError {
    let mut value = value.to_owned();
    value.truncate(80);
    IdError { what, value, why }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The identifier as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

/// A node's identity: a lower-case DNS name such as `prov-31.lapor.test`. It is also the DNS
/// SAN of the node's federation certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);
string_newtype!(NodeId);

impl NodeId {
    /// Parses a DNS name: 1–253 characters, at least two labels of `a-z0-9-`, no label longer
    /// than 63 or starting/ending with `-`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "node id";
        if s.is_empty() || s.len() > 253 {
            return Err(id_error(
                WHAT,
                s,
                "must be a DNS name of 1 to 253 characters",
            ));
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(id_error(
                WHAT,
                s,
                "must be a DNS name with a domain, e.g. prov-31.lapor.test",
            ));
        }
        for label in labels {
            let ok_chars = label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if label.is_empty() || label.len() > 63 || !ok_chars {
                return Err(id_error(
                    WHAT,
                    s,
                    "each label must be 1-63 characters of a-z, 0-9 or '-'",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(id_error(WHAT, s, "a label may not start or end with '-'"));
            }
        }
        Ok(Self(s.to_owned()))
    }
}

/// A two-digit Kemendagri province code (`11`..`99`). Whether the code exists is a matter of
/// the reference data (`domain::reference`), not of this type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProvinceCode(String);
string_newtype!(ProvinceCode);

impl ProvinceCode {
    /// Parses exactly two ASCII digits, the first not `0`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_digit) && b.first() != Some(&b'0') {
            Ok(Self(s.to_owned()))
        } else {
            Err(id_error("province code", s, "must be two digits, e.g. 31"))
        }
    }
}

/// A region: a province (`31`) or a regency/city inside it (`3171`: 01–69 kabupaten,
/// 71–99 kota).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);
string_newtype!(RegionCode);

impl RegionCode {
    /// Parses `PP` or `PPRR` where `RR` is 01–69 or 71–99.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "region code";
        match s.len() {
            2 => ProvinceCode::parse(s)
                .map(|_| Self(s.to_owned()))
                .map_err(|_| id_error(WHAT, s, "province part must be two digits")),
            4 => {
                let (p, r) = s.split_at(2);
                ProvinceCode::parse(p)
                    .map_err(|_| id_error(WHAT, s, "province part must be two digits"))?;
                let n: u8 = r
                    .parse()
                    .map_err(|_| id_error(WHAT, s, "regency part must be two digits"))?;
                if r.bytes().all(|c| c.is_ascii_digit())
                    && ((1..=69).contains(&n) || (71..=99).contains(&n))
                {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(id_error(
                        WHAT,
                        s,
                        "regency part must be 01-69 (kabupaten) or 71-99 (kota)",
                    ))
                }
            }
            _ => Err(id_error(
                WHAT,
                s,
                "must be a province (2 digits) or regency/city (4 digits)",
            )),
        }
    }

    /// The province this region belongs to.
    #[must_use]
    pub fn province(&self) -> ProvinceCode {
        ProvinceCode(self.0.chars().take(2).collect())
    }
}

/// An agency (*instansi*) code: 2–32 characters of `A-Z0-9-`, e.g. `DKI-DISHUB` or `KEMENKES`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgencyCode(String);
string_newtype!(AgencyCode);

impl AgencyCode {
    /// Parses an upper-case agency code.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = (2..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(id_error(
                "agency code",
                s,
                "must be 2-32 characters of A-Z, 0-9 or '-'",
            ))
        }
    }
}

/// A ticket's global id: a UUIDv7 (time-ordered), chosen by the origin node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketId(Uuid);

impl TicketId {
    /// A fresh UUIDv7.
    #[must_use]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses a UUID in its hyphenated form; only version 7 is accepted.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let u = Uuid::try_parse(s).map_err(|_| id_error("ticket id", s, "must be a UUID"))?;
        if u.get_version_num() != 7 || u.hyphenated().to_string() != s {
            return Err(id_error(
                "ticket id",
                s,
                "must be a lower-case hyphenated UUIDv7",
            ));
        }
        Ok(Self(u))
    }
}

impl Default for TicketId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}
impl TryFrom<String> for TicketId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<TicketId> for String {
    fn from(value: TicketId) -> String {
        value.to_string()
    }
}

/// The alphabet of tracking codes: digits and upper-case letters without `0 O 1 I L U`,
/// so a code read aloud or typed from an SMS is unambiguous.
pub const TRACKING_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A citizen-facing tracking code: the province code, then two groups of four characters
/// from [`TRACKING_ALPHABET`], e.g. `31-K7QX-9F2M` (30^8 ≈ 6.6e11 codes per province).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackingCode(String);
string_newtype!(TrackingCode);

impl TrackingCode {
    /// The code of a province made of eight symbols, each an index into
    /// [`TRACKING_ALPHABET`] (taken modulo its length).
    #[must_use]
    pub fn from_symbols(province: &ProvinceCode, symbols: [u8; 8]) -> Self {
        let mut s = String::with_capacity(12);
        s.push_str(province.as_str());
        for (i, sym) in symbols.into_iter().enumerate() {
            if i % 4 == 0 {
                s.push('-');
            }
            let idx = usize::from(sym) % TRACKING_ALPHABET.len();
            s.push(char::from(
                TRACKING_ALPHABET.get(idx).copied().unwrap_or(b'2'),
            ));
        }
        Self(s)
    }

    /// The province part and the eight symbols (indexes into [`TRACKING_ALPHABET`]) of a
    /// well-formed code.
    #[must_use]
    pub fn symbols(&self) -> Option<(&str, [u8; 8])> {
        let (province, rest) = self.0.split_once('-')?;
        let mut out = [0u8; 8];
        let mut n = 0;
        for c in rest.bytes().filter(|c| *c != b'-') {
            let idx = TRACKING_ALPHABET.iter().position(|a| *a == c)?;
            *out.get_mut(n)? = u8::try_from(idx).ok()?;
            n += 1;
        }
        (n == 8).then_some((province, out))
    }

    /// Whether the code was issued in `province`: its prefix is the province code. A node
    /// issues codes of its own province only, so a received report whose code names another
    /// province is a forgery that would squat the code of that province's real report.
    #[must_use]
    pub fn belongs_to(&self, province: &ProvinceCode) -> bool {
        self.0
            .split_once('-')
            .is_some_and(|(p, _)| p == province.as_str())
    }

    /// Parses a code, accepting lower case and surrounding spaces (citizens type these).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let up = s.trim().to_ascii_uppercase();
        let parts: Vec<&str> = up.split('-').collect();
        let ok = match parts.as_slice() {
            [p, a, b] => {
                ProvinceCode::parse(p).is_ok()
                    && [a, b]
                        .iter()
                        .all(|g| g.len() == 4 && g.bytes().all(|c| TRACKING_ALPHABET.contains(&c)))
            }
            _ => false,
        };
        if ok {
            Ok(Self(up))
        } else {
            Err(id_error("tracking code", s, "must look like 31-K7QX-9F2M"))
        }
    }
}

/// An event id: lower-case hex SHA-256 of the event's canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);
string_newtype!(EventId);

impl EventId {
    /// Parses 64 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(id_error("event id", s, "must be 64 lower-case hex digits"))
        }
    }

    /// The id of some canonical bytes.
    #[must_use]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(crate::crypto::to_hex(&Sha256::digest(bytes)))
    }
}
