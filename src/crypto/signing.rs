//! Event signatures. The signed message is `"lapor-event-v1\n"` followed by the event's
//! canonical bytes (RFC 8785 of the event object without `id` and `sig`); the signature travels
//! in the event as `"sig": {"key": "<key id>", "value": "<base64 of the 64 bytes>"}`.
//! Verification works on the received JSON value itself (so fields a newer node added are
//! covered as they are), after a strict parse that refuses duplicate keys and floats, and uses
//! the origin's key that was valid at the event's own time — never "now".

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value, json};

use super::keys::{KeyId, NodeKey};
use super::strict_json::{self, StrictJsonError};
use crate::domain::{Event, EventId, NodeId, Timestamp};
use crate::event_log::wire::{self, WireError};

/// Domain separation prefix of every event signature.
pub const DOMAIN: &[u8] = b"lapor-event-v1\n";

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
pub fn sign(canonical: &[u8], key: &NodeKey) -> Value {
    let sig = key.sign(&message(canonical));
    json!({"key": key.id().as_str(), "value": STANDARD.encode(sig.to_bytes())})
}

/// Something that signs events for the log: the node's key file today, an HSM tomorrow.
pub trait SignEvents: Send + Sync {
    /// The id of the key that signs.
    fn key_id(&self) -> &KeyId;
    /// The `sig` object for these canonical bytes.
    fn sign_event(&self, canonical: &[u8]) -> Value;
}

impl SignEvents for NodeKey {
    fn key_id(&self) -> &KeyId {
        self.id()
    }

    fn sign_event(&self, canonical: &[u8]) -> Value {
        sign(canonical, self)
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

fn sig_parts(obj: &Map<String, Value>) -> Result<(KeyId, Signature), VerifyError> {
    let bad = |m: &str| VerifyError::Signature(m.to_owned());
    let sig = obj
        .get("sig")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no `sig` object"))?;
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
    Ok((key, Signature::from_bytes(&bytes)))
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
/// ownership and validity) one by one, the signatures together with `ed25519_dalek`'s batch
/// verification. When the batch fails, each signature is checked alone so the faulty event is
/// named. Returns the events in input order, or the index of the first bad one with its reason.
pub fn verify_many(values: &[Value], keys: &Keyring) -> Result<Vec<Event>, (usize, VerifyError)> {
    let mut events = Vec::with_capacity(values.len());
    let mut messages = Vec::with_capacity(values.len());
    let mut sigs = Vec::with_capacity(values.len());
    let mut pubkeys = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let checked = (|| {
            let (event, canonical) = wire::from_value_with_canonical(value)?;
            let obj = value
                .as_object()
                .ok_or_else(|| VerifyError::Signature("not an object".into()))?;
            let (key_id, sig) = sig_parts(obj)?;
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
            Ok((event, message(&canonical), sig, known.key))
        })();
        let (event, msg, sig, key) = checked.map_err(|e| (i, e))?;
        events.push(event);
        messages.push(msg);
        sigs.push(sig);
        pubkeys.push(key);
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    // One event: strict single verification. Several: one batch check, and on failure a strict
    // check of each to name the culprit.
    let batch_ok = refs.len() > 1 && ed25519_dalek::verify_batch(&refs, &sigs, &pubkeys).is_ok();
    if !batch_ok {
        for (i, ((m, s), k)) in messages.iter().zip(&sigs).zip(&pubkeys).enumerate() {
            if k.verify_strict(m, s).is_err() {
                let key = KeyId::of(k).to_string();
                return Err((i, VerifyError::BadSignature(key)));
            }
        }
    }
    Ok(events)
}
