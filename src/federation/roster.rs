//! The hub-signed roster: who belongs to the federation, where each member listens, the
//! signing keys it may use (with their windows), the agencies it owns, and the certificates
//! that are revoked. The wire format, its signature and the checks every copy must pass,
//! whoever passed it on (the signature is what counts, not the sender).
//!
//! ```text
//!   hub operator: roster.json ──► `roster sign` (roster key, never the hub's event key)
//!        │
//!        ▼  SignedRoster {roster, key, signature}
//!   any node: open (pinned `federation.roster_key`) ─► check ─► roster_store::accept (one tx)
//!                                                                  │
//!                                                 membership::Members::apply (live view)
//! ```
//!
//! The signature is Ed25519 over `"lapor-roster-v1\n"` ‖ RFC 8785 bytes of the `roster`
//! value as received (so a newer hub's extra fields still verify).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::NodeRole;
use crate::crypto::keys::{KeyId, NodeKey};
use crate::domain::reference::AgencyLevel;
use crate::domain::{AgencyCode, NodeId, ProvinceCode, RegionCode};

/// Domain separation of a roster signature.
pub const DOMAIN: &[u8] = b"lapor-roster-v1\n";

/// The header every federation answer carries: the roster version the answering node holds
/// (`0`: none), so a caller holding less fetches it from that node.
pub const VERSION_HEADER: &str = "lapor-roster-version";

/// The roster, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Increases with every roster the hub signs; the highest held wins.
    pub version: i64,
    /// When the hub signed it (ms since the epoch).
    pub issued_at_ms: i64,
    /// The members.
    pub nodes: Vec<RosterNode>,
    /// Revoked certificates.
    #[serde(default)]
    pub revoked: Vec<RevokedCert>,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterNode {
    /// Node id (the DNS SAN of its certificate).
    pub id: NodeId,
    /// Province node or hub.
    pub role: NodeRole,
    /// Its province.
    pub province: ProvinceCode,
    /// Its federation listener, `https://<node id>:<port>`.
    pub url: url::Url,
    /// Connect here instead of resolving the URL's host (no DNS; the certificate is still
    /// checked against the node id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    /// SHA-256 (hex) of the certificate it must present, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Its event-signing keys.
    pub keys: Vec<RosterKey>,
    /// The agencies it owns (handles the tickets of).
    #[serde(default)]
    pub agencies: Vec<RosterAgency>,
}

/// A signing key of a member, with its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterKey {
    /// Key id (`ed25519:…`, derived from the key).
    pub id: String,
    /// Public key (standard base64).
    pub public_key: String,
    /// Valid from (ms).
    pub valid_from_ms: i64,
    /// Valid until (ms, exclusive), when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until_ms: Option<i64>,
    /// Retired (compromised): events it signed at or after this time are refused everywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at_ms: Option<i64>,
}

impl RosterKey {
    /// The end of the window events may be signed in (`None`: open).
    #[must_use]
    pub fn end_ms(&self) -> Option<i64> {
        match (self.valid_until_ms, self.retired_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// An agency a member owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterAgency {
    /// Code.
    pub code: AgencyCode,
    /// Name.
    pub name: String,
    /// Level.
    pub level: AgencyLevel,
    /// The region it serves.
    pub region: RegionCode,
}

/// A revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedCert {
    /// SHA-256 (hex) of the certificate's DER bytes.
    pub certificate: String,
    /// The node it was issued to.
    pub node: String,
    /// Why.
    pub reason: String,
    /// Since when (ms).
    pub since_ms: i64,
}

/// A roster with its signature, as served at `GET /federation/v1/roster` and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRoster {
    /// The roster (kept as received: the signature is over this value).
    pub roster: Value,
    /// The roster key's id.
    pub key: String,
    /// Ed25519 signature (standard base64).
    pub signature: String,
}

/// Why a roster is refused (nothing of it is applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterRefusal {
    /// Not a signed roster.
    #[error("malformed roster: {0}")]
    Malformed(String),
    /// This node pins no roster key (`federation.roster_key`).
    #[error("no roster key is pinned (federation.roster_key)")]
    NoRosterKey,
    /// Signed by a key other than the pinned roster key.
    #[error("signed by {0}, not by the pinned roster key")]
    WrongKey(String),
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// Not newer than the roster held.
    #[error("version {offered} is not newer than version {held} held here")]
    NotNewer {
        /// Held.
        held: i64,
        /// Offered.
        offered: i64,
    },
    /// Two windows of one member's keys overlap.
    #[error("keys {first} and {second} of {node} have overlapping validity windows")]
    OverlappingKeys {
        /// The member.
        node: String,
        /// One key.
        first: String,
        /// The other.
        second: String,
    },
    /// The entry of a node does not match its certificate.
    #[error("{node}: {reason}")]
    CertificateMismatch {
        /// The member.
        node: String,
        /// What does not match.
        reason: String,
    },
    /// A key in it conflicts with a key held (another owner or other key material).
    #[error("key {key}: {reason}")]
    KeyConflict {
        /// The key id.
        key: String,
        /// The conflict.
        reason: String,
    },
    /// Otherwise inconsistent.
    #[error("invalid roster: {0}")]
    Invalid(String),
}

impl RosterRefusal {
    /// The machine-readable reason (error code and metric label).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_roster",
            Self::NoRosterKey => "no_roster_key",
            Self::WrongKey(_) => "wrong_roster_key",
            Self::BadSignature(_) => "bad_signature",
            Self::NotNewer { .. } => "not_newer",
            Self::OverlappingKeys { .. } => "overlapping_key_windows",
            Self::CertificateMismatch { .. } => "node_certificate_mismatch",
            Self::KeyConflict { .. } => "key_conflict",
            Self::Invalid(_) => "invalid_roster",
        }
    }
}

fn canonical(v: &Value) -> Result<Vec<u8>, RosterRefusal> {
    serde_json_canonicalizer::to_vec(v).map_err(|e| RosterRefusal::Malformed(e.to_string()))
}

/// Signs `roster` with the roster key.
pub fn sign(roster: &Roster, key: &NodeKey) -> Result<SignedRoster, RosterRefusal> {
    let value =
        serde_json::to_value(roster).map_err(|e| RosterRefusal::Malformed(e.to_string()))?;
    let mut msg = DOMAIN.to_vec();
    msg.extend(canonical(&value)?);
    Ok(SignedRoster {
        roster: value,
        key: key.id().as_str().to_owned(),
        signature: STANDARD.encode(key.sign(&msg).to_bytes()),
    })
}

impl SignedRoster {
    /// Parses a signed roster from bytes (strict JSON).
    pub fn parse(bytes: &[u8]) -> Result<Self, RosterRefusal> {
        let v = crate::crypto::strict_json::parse(bytes)
            .map_err(|e| RosterRefusal::Malformed(e.to_string()))?;
        serde_json::from_value(v).map_err(|e| RosterRefusal::Malformed(e.to_string()))
    }

    /// The roster, once its signature by `pinned` verifies and it passes [`check`].
    pub fn open(&self, pinned: &VerifyingKey) -> Result<Roster, RosterRefusal> {
        let want = KeyId::of(pinned);
        if self.key != want.as_str() {
            return Err(RosterRefusal::WrongKey(self.key.chars().take(80).collect()));
        }
        let sig = STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(|| RosterRefusal::BadSignature("not 64 bytes of base64".into()))?;
        let mut msg = DOMAIN.to_vec();
        msg.extend(canonical(&self.roster)?);
        pinned
            .verify_strict(&msg, &Signature::from_bytes(&sig))
            .map_err(|_| {
                RosterRefusal::BadSignature("does not verify with the roster key".into())
            })?;
        let roster: Roster = serde_json::from_value(self.roster.clone())
            .map_err(|e| RosterRefusal::Malformed(e.to_string()))?;
        check(&roster)?;
        Ok(roster)
    }

    /// The version it claims, unverified (for logs and the held-version comparison).
    #[must_use]
    pub fn claimed_version(&self) -> Option<i64> {
        self.roster.get("version").and_then(Value::as_i64)
    }
}

/// The consistency rules of a roster: a positive version; unique node ids, at most one hub;
/// each node's URL names the node (its certificate is checked against that name); well-formed
/// keys whose id matches their material, unique across the roster, with windows that do not
/// overlap within a node; unique agency codes; fingerprints of 64 hex digits; no member's
/// pinned certificate also revoked.
pub fn check(r: &Roster) -> Result<(), RosterRefusal> {
    let invalid = |m: String| Err(RosterRefusal::Invalid(m));
    if r.version <= 0 {
        return invalid(format!("version {} must be positive", r.version));
    }
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    let mut agencies = HashSet::new();
    let revoked: HashSet<&str> = r.revoked.iter().map(|c| c.certificate.as_str()).collect();
    for c in &r.revoked {
        if !is_fingerprint(&c.certificate) {
            return invalid(format!(
                "revoked certificate {:?} is not a SHA-256 hex fingerprint",
                c.certificate
            ));
        }
    }
    if r.nodes.iter().filter(|n| n.role == NodeRole::Hub).count() > 1 {
        return invalid("more than one hub".into());
    }
    for n in &r.nodes {
        if !ids.insert(n.id.as_str()) {
            return invalid(format!("node {} is listed twice", n.id));
        }
        if n.url.scheme() != "https" || n.url.host_str() != Some(n.id.as_str()) {
            return Err(RosterRefusal::CertificateMismatch {
                node: n.id.to_string(),
                reason: format!(
                    "url {} must be https://{}:<port> (its certificate names the node)",
                    n.url, n.id
                ),
            });
        }
        if let Some(fp) = &n.certificate {
            if !is_fingerprint(fp) {
                return invalid(format!(
                    "{}: certificate {fp:?} is not a SHA-256 hex fingerprint",
                    n.id
                ));
            }
            if revoked.contains(fp.as_str()) {
                return invalid(format!("{}: its pinned certificate is also revoked", n.id));
            }
        }
        for k in &n.keys {
            let public = crate::crypto::keys::parse_public_key(&k.public_key)
                .map_err(|e| RosterRefusal::Invalid(format!("{}: key {}: {e}", n.id, k.id)))?;
            if KeyId::of(&public).as_str() != k.id {
                return invalid(format!("{}: key id {} does not match its key", n.id, k.id));
            }
            if !keys.insert(k.id.as_str()) {
                return invalid(format!("key {} is listed twice", k.id));
            }
            if k.end_ms().is_some_and(|end| end < k.valid_from_ms) {
                return invalid(format!("{}: key {} ends before it starts", n.id, k.id));
            }
        }
        overlapping(n)?;
        for a in &n.agencies {
            if !agencies.insert(a.code.as_str()) {
                return invalid(format!("agency {} is listed twice", a.code.as_str()));
            }
        }
    }
    Ok(())
}

/// Refuses two keys of `n` whose windows `[valid_from, valid_until)` overlap (a retirement
/// does not shorten the window for this rule: it is when the key was meant to be valid).
fn overlapping(n: &RosterNode) -> Result<(), RosterRefusal> {
    let mut ks: Vec<&RosterKey> = n.keys.iter().collect();
    ks.sort_by_key(|k| k.valid_from_ms);
    for w in ks.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.valid_until_ms.is_none_or(|end| end > b.valid_from_ms) {
            return Err(RosterRefusal::OverlappingKeys {
                node: n.id.to_string(),
                first: a.id.clone(),
                second: b.id.clone(),
            });
        }
    }
    Ok(())
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What changed from `old` to `new`, one line per change (for `roster diff` and the log).
#[must_use]
pub fn diff(old: &Roster, new: &Roster) -> Vec<String> {
    let mut out = vec![format!("version {} -> {}", old.version, new.version)];
    let before: BTreeMap<&str, &RosterNode> =
        old.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let after: BTreeMap<&str, &RosterNode> = new.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    for (id, n) in &after {
        match before.get(id) {
            None => out.push(format!(
                "+ node {id} ({:?}, province {}, {})",
                n.role, n.province, n.url
            )),
            Some(o) if o != n => {
                if o.url != n.url || o.address != n.address {
                    out.push(format!("~ node {id}: url {} -> {}", o.url, n.url));
                }
                if o.certificate != n.certificate {
                    out.push(format!(
                        "~ node {id}: certificate {:?} -> {:?}",
                        o.certificate, n.certificate
                    ));
                }
                for k in &n.keys {
                    match o.keys.iter().find(|x| x.id == k.id) {
                        None => out.push(format!("+ key {} of {id}", k.id)),
                        Some(x) if x != k => out.push(format!(
                            "~ key {} of {id}: until {:?} -> {:?}, retired {:?} -> {:?}",
                            k.id,
                            x.valid_until_ms,
                            k.valid_until_ms,
                            x.retired_at_ms,
                            k.retired_at_ms
                        )),
                        Some(_) => {}
                    }
                }
                for k in o
                    .keys
                    .iter()
                    .filter(|x| !n.keys.iter().any(|k| k.id == x.id))
                {
                    out.push(format!("- key {} of {id}", k.id));
                }
                let codes = |v: &RosterNode| {
                    v.agencies
                        .iter()
                        .map(|a| a.code.as_str().to_owned())
                        .collect::<HashSet<_>>()
                };
                let (oa, na) = (codes(o), codes(n));
                for a in na.difference(&oa) {
                    out.push(format!("+ agency {a} owned by {id}"));
                }
                for a in oa.difference(&na) {
                    out.push(format!("- agency {a} of {id}"));
                }
            }
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        out.push(format!("- node {id}"));
    }
    for c in new
        .revoked
        .iter()
        .filter(|c| !old.revoked.iter().any(|o| o.certificate == c.certificate))
    {
        out.push(format!(
            "+ revoked {} ({}): {}",
            c.certificate, c.node, c.reason
        ));
    }
    for c in old
        .revoked
        .iter()
        .filter(|c| !new.revoked.iter().any(|o| o.certificate == c.certificate))
    {
        out.push(format!("- revoked {} ({})", c.certificate, c.node));
    }
    out
}
