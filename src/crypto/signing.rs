//! Event signatures. The signed message is `"lapor-event-v1\n"` followed by the event's
//! canonical bytes (RFC 8785 of the event object without `id` and `sig`); the signature travels
//! in the event as `"sig": {"key": "<key id>", "value": "<base64 of the 64 bytes>"}`.
//! Events appended together may share one signature over the root of a Merkle tree of their ids
//! (`crypto::merkle`): the message is then `"lapor-event-group-v1\n"`, the tree's size as 8
//! big-endian bytes and its root, and each event's `sig` also carries
//! `"group": {"index": i, "size": n, "path": ["<hex>", …]}`, its place in the tree and its
//! inclusion path, so that it still verifies alone.
//! Verification works on the received JSON value itself (so fields a newer node added are
//! covered as they are), after a strict parse that refuses duplicate keys and floats, and uses
//! the origin's key that was valid at the event's own time — never "now". `sig` holds nothing
//! but `key`, `value` and `group` (and `group` nothing but `index`, `size` and `path`): no
//! signature covers it, so nothing else may ride along in it. Every signature is checked with
//! Ed25519 strict verification, each distinct one once ([`verify_many`] says why not in a
//! batch).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value, json};

use super::keys::{KeyId, NodeKey};
use super::merkle::{self, Hash};
use super::strict_json::{self, StrictJsonError};
use crate::domain::{Event, EventId, NodeId, Timestamp};
use crate::event_log::wire::{self, WireError};

/// Domain separation prefix of every event signature.
pub const DOMAIN: &[u8] = b"lapor-event-v1\n";

/// Domain separation prefix of a group signature.
pub const GROUP_DOMAIN: &[u8] = b"lapor-event-group-v1\n";

/// Most events one group signature may cover (a received `sig.group.size` above it is refused).
pub const MAX_GROUP_SIZE: u64 = 1 << 16;

/// The bytes a group signature covers: the domain, the tree's size and its root.
#[must_use]
pub fn group_message(size: u64, root: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(GROUP_DOMAIN.len() + 8 + root.len());
    m.extend_from_slice(GROUP_DOMAIN);
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(root);
    m
}

/// The Merkle leaf of an event id.
fn id_leaf(id: &EventId) -> Result<Hash, VerifyError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(id.as_str(), &mut bytes)
        .map_err(|_| VerifyError::Signature(format!("event id {id} is not 32 bytes of hex")))?;
    Ok(merkle::leaf(&bytes))
}

/// An event's `sig` object as this node writes it. Its members serialise in the order a JSON
/// object's members sort (`group`, `key`, `value`; `index`, `path`, `size`), so the stored text
/// is what the same object built as a [`Value`] would print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventSig {
    /// The event's place in a group signature's tree; absent for an event signed alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<SigGroup>,
    /// The signing key's id.
    pub key: String,
    /// Base64 of the 64 signature bytes.
    pub value: String,
}

/// `sig.group`: an event's place in the Merkle tree a group signature covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SigGroup {
    /// Its leaf's index.
    pub index: u64,
    /// Its inclusion path, as hex.
    pub path: Vec<String>,
    /// The tree's size.
    pub size: u64,
}

impl EventSig {
    /// The `sig` object as a JSON value (to put into an event built as a value).
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut sig = json!({"key": self.key, "value": self.value});
        if let Some(g) = &self.group {
            sig["group"] = json!({"index": g.index, "size": g.size, "path": g.path});
        }
        sig
    }
}

/// Signs the events with these ids together: one signature over the root of their Merkle
/// tree, and for each event (in order) its `sig` object with its place and inclusion path.
/// A group has 2 to [`MAX_GROUP_SIZE`] events (one event is signed alone, with [`sign`]).
pub fn sign_group(ids: &[EventId], key: &NodeKey) -> Result<Vec<EventSig>, VerifyError> {
    if !(2..=MAX_GROUP_SIZE).contains(&(ids.len() as u64)) {
        return Err(VerifyError::Signature(format!(
            "a group signature covers 2 to {MAX_GROUP_SIZE} events, not {}",
            ids.len()
        )));
    }
    let leaves = ids.iter().map(id_leaf).collect::<Result<Vec<_>, _>>()?;
    let (root, paths) =
        merkle::tree(&leaves).ok_or_else(|| VerifyError::Signature("no events".into()))?;
    let size = ids.len() as u64;
    let value = STANDARD.encode(key.sign(&group_message(size, &root)).to_bytes());
    Ok(paths
        .into_iter()
        .zip(0u64..)
        .map(|(path, index)| EventSig {
            group: Some(SigGroup {
                index,
                path: path.iter().map(|h| crate::crypto::to_hex(h)).collect(),
                size,
            }),
            key: key.id().as_str().to_owned(),
            value: value.clone(),
        })
        .collect())
}

/// The bytes an event signature covers.
#[must_use]
pub fn message(canonical: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + canonical.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(canonical);
    m
}

/// Signs canonical bytes: the `sig` object to put in the event.
#[must_use]
pub fn sign(canonical: &[u8], key: &NodeKey) -> EventSig {
    let sig = key.sign(&message(canonical));
    EventSig {
        group: None,
        key: key.id().as_str().to_owned(),
        value: STANDARD.encode(sig.to_bytes()),
    }
}

/// Something that signs events for the log: the node's key file today, an HSM tomorrow.
pub trait SignEvents: Send + Sync {
    /// The id of the key that signs.
    fn key_id(&self) -> &KeyId;
    /// The `sig` object for these canonical bytes.
    fn sign_event(&self, canonical: &[u8]) -> EventSig;
    /// The `sig` objects of events appended together, in order: one signature over their
    /// Merkle tree ([`sign_group`]).
    fn sign_events(&self, ids: &[EventId]) -> Result<Vec<EventSig>, VerifyError>;
}

impl SignEvents for NodeKey {
    fn key_id(&self) -> &KeyId {
        self.id()
    }

    fn sign_event(&self, canonical: &[u8]) -> EventSig {
        sign(canonical, self)
    }

    fn sign_events(&self, ids: &[EventId]) -> Result<Vec<EventSig>, VerifyError> {
        sign_group(ids, self)
    }
}

/// A public key of some node, with its validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The node that owns it.
    pub origin: NodeId,
    /// The key.
    pub key: VerifyingKey,
    /// Valid from (inclusive).
    pub valid_from: Timestamp,
    /// Valid until (exclusive); `None` while current.
    pub valid_until: Option<Timestamp>,
}

/// Known public keys by id.
pub type Keyring = HashMap<KeyId, PublicKey>;

/// Why an event did not verify. Each names the precise fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not strict JSON (duplicate keys, floats, malformed…).
    #[error(transparent)]
    Json(#[from] StrictJsonError),
    /// A field is missing or wrong, or the id does not match the content.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// No `sig` object, or it is malformed.
    #[error("signature missing or malformed: {0}")]
    Signature(String),
    /// `sig` (or `sig.group`) has a member other than those the protocol names: data no
    /// signature covers. Holds the member's path, such as `sig.note` or `sig.group.depth`.
    #[error("`{0}` is not a member of a signature; nothing unsigned may ride along with an event")]
    UnknownSigMember(String),
    /// `sig.group.path` does not have the length the event's place (`index`, `size`) in its
    /// tree requires, so it leads to no root.
    #[error("`sig.group.path` does not fit its index and size")]
    GroupPathMismatch,
    /// The key id is not known here.
    #[error("unknown signing key {0}")]
    UnknownKey(String),
    /// The key belongs to another node than the event's origin.
    #[error("key {key} belongs to {owner}, not to the event's origin {origin}")]
    KeyNotOwned {
        /// Key id.
        key: String,
        /// The key's owner.
        owner: String,
        /// The event's origin.
        origin: String,
    },
    /// The key was not valid at the event's time.
    #[error("key {key} was not valid at {at}")]
    KeyNotValidAt {
        /// Key id.
        key: String,
        /// The event's time.
        at: String,
    },
    /// The signature does not match.
    #[error("signature does not verify with key {0}")]
    BadSignature(String),
}

/// A group signature's place of the event in its tree (`sig.group`).
struct GroupPlace {
    index: u64,
    size: u64,
    path: Vec<Hash>,
}

fn group_place(group: &Value) -> Result<GroupPlace, VerifyError> {
    let bad = |m: &str| VerifyError::Signature(format!("`sig.group`: {m}"));
    let obj = group.as_object().ok_or_else(|| bad("not an object"))?;
    let number = |name: &str| {
        obj.get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| bad(&format!("`{name}` is missing or not a whole number")))
    };
    let (index, size) = (number("index")?, number("size")?);
    if !(2..=MAX_GROUP_SIZE).contains(&size) {
        return Err(bad(&format!("`size` must be 2 to {MAX_GROUP_SIZE}")));
    }
    if index >= size {
        return Err(bad("`index` is not below `size`"));
    }
    let path = obj
        .get("path")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`path` is missing or not an array"))?;
    if path.len() > 64 {
        return Err(bad("`path` is too long"));
    }
    let path = path
        .iter()
        .map(|p| {
            let mut h = [0u8; 32];
            p.as_str()
                .filter(|s| !s.bytes().any(|b| b.is_ascii_uppercase()))
                .and_then(|s| hex::decode_to_slice(s, &mut h).ok())
                .map(|()| h)
                .ok_or_else(|| bad("a `path` entry is not 64 lower-case hex digits"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GroupPlace { index, size, path })
}

/// Refuses a member of `obj` (at `path`) that is not in `allowed`.
fn only_members(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), VerifyError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(other) => Err(VerifyError::UnknownSigMember(format!("{path}.{other}"))),
        None => Ok(()),
    }
}

fn sig_parts(
    obj: &Map<String, Value>,
) -> Result<(KeyId, Signature, Option<GroupPlace>), VerifyError> {
    let bad = |m: &str| VerifyError::Signature(m.to_owned());
    let sig = obj
        .get("sig")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no `sig` object"))?;
    // Before anything in it is read: nothing but these members may ride in `sig`.
    only_members(sig, &["key", "value", "group"], "sig")?;
    if let Some(group) = sig.get("group").and_then(Value::as_object) {
        only_members(group, &["index", "size", "path"], "sig.group")?;
    }
    let key = sig
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `sig.key`"))?;
    let key = KeyId::parse(key).map_err(|e| VerifyError::Signature(e.to_string()))?;
    let value = sig
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `sig.value`"))?;
    let bytes = STANDARD
        .decode(value)
        .map_err(|_| bad("`sig.value` is not base64"))?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| bad("`sig.value` is not 64 bytes"))?;
    let group = sig.get("group").map(group_place).transpose()?;
    Ok((key, Signature::from_bytes(&bytes), group))
}

/// Verifies a received event: strict JSON, fields, id = SHA-256 of the canonical bytes, the
/// signing key known, owned by the origin and valid at the event's time, and the signature.
pub fn verify(raw: &[u8], keys: &Keyring) -> Result<Event, VerifyError> {
    let value = strict_json::parse(raw)?;
    verify_value(&value, keys)
}

/// As [`verify`], on an already strictly parsed value.
pub fn verify_value(value: &Value, keys: &Keyring) -> Result<Event, VerifyError> {
    let mut events = verify_many(std::slice::from_ref(value), keys).map_err(|(_, e)| e)?;
    events
        .pop()
        .ok_or_else(|| VerifyError::Signature("nothing verified".into()))
}

/// The id an event's content gives.
pub fn id_of(unsigned: &Value) -> Result<EventId, WireError> {
    Ok(EventId::of_bytes(&wire::canonical_bytes(unsigned)?))
}

/// Verifies many events at once: the per-event checks of [`verify_value`] (fields, id, key
/// ownership and validity) one by one, then each distinct (message, signature, key) once with
/// Ed25519 strict verification (`verify_strict`) — the events of one group share theirs.
/// Returns the events in input order, or the index of the first bad one with its reason (for a
/// bad signature, the first event that carries it).
///
/// Batch verification (`ed25519_dalek::verify_batch`) is not used: it accepts signatures that
/// strict verification refuses — a small-order `R` or key, or an `R` with a torsion component
/// (this last with odds the signer can grind) — so two receivers, or one receiver given the same
/// event alone and in a batch, could disagree about it. Refusing those before a batch costs a
/// scalar multiplication per `R`, about what the strict check itself costs.
pub fn verify_many(values: &[Value], keys: &Keyring) -> Result<Vec<Event>, (usize, VerifyError)> {
    let mut events = Vec::with_capacity(values.len());
    let mut messages = Vec::with_capacity(values.len());
    let mut sigs = Vec::with_capacity(values.len());
    let mut pubkeys = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let checked = (|| {
            wire::check_numbers(value)?;
            let (event, canonical) = wire::from_value_with_canonical(value)?;
            let obj = value
                .as_object()
                .ok_or_else(|| VerifyError::Signature("not an object".into()))?;
            let (key_id, sig, group) = sig_parts(obj)?;
            let known = keys
                .get(&key_id)
                .ok_or_else(|| VerifyError::UnknownKey(key_id.to_string()))?;
            if known.origin != event.origin {
                return Err(VerifyError::KeyNotOwned {
                    key: key_id.to_string(),
                    owner: known.origin.to_string(),
                    origin: event.origin.to_string(),
                });
            }
            if event.at < known.valid_from || known.valid_until.is_some_and(|u| event.at >= u) {
                return Err(VerifyError::KeyNotValidAt {
                    key: key_id.to_string(),
                    at: event.at.to_string(),
                });
            }
            let msg = match group {
                None => message(&canonical),
                Some(g) => {
                    let root =
                        merkle::root_from_path(g.index, g.size, &id_leaf(&event.id)?, &g.path)
                            .ok_or(VerifyError::GroupPathMismatch)?;
                    group_message(g.size, &root)
                }
            };
            Ok((event, msg, sig, known.key))
        })();
        let (event, msg, sig, key) = checked.map_err(|e| (i, e))?;
        events.push(event);
        messages.push(msg);
        sigs.push(sig);
        pubkeys.push(key);
    }
    // Events of one group share their signature and message: each distinct one is checked once.
    let mut seen = std::collections::HashSet::new();
    for (i, key) in pubkeys.iter().enumerate() {
        if !seen.insert((messages[i].as_slice(), sigs[i].to_bytes(), key.to_bytes())) {
            continue;
        }
        if key.verify_strict(&messages[i], &sigs[i]).is_err() {
            return Err((i, VerifyError::BadSignature(KeyId::of(key).to_string())));
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text written for a `sig` object is the text of the same object as a JSON value
    /// (members sorted), so events stored before and after the typed form read the same.
    #[test]
    fn a_sig_object_is_written_as_its_json_value_prints() {
        let key = NodeKey::generate();
        let alone = sign(b"{}", &key);
        assert!(alone.group.is_none());
        assert_eq!(
            serde_json::to_string(&alone).unwrap(),
            alone.to_value().to_string()
        );
        let ids: Vec<EventId> = (0..5u8).map(|i| EventId::of_bytes(&[i])).collect();
        let group = sign_group(&ids, &key).unwrap();
        assert_eq!(group.len(), 5);
        for (i, sig) in group.iter().enumerate() {
            let g = sig.group.as_ref().unwrap();
            assert_eq!((g.index, g.size), (i as u64, 5));
            assert!(
                (1..=3).contains(&g.path.len()),
                "a tree of 5 is at most 3 deep"
            );
            assert_eq!(
                serde_json::to_string(sig).unwrap(),
                sig.to_value().to_string()
            );
        }
        assert!(group.windows(2).all(|w| w[0].value == w[1].value));
    }
}
