//! The JSON form of an event and its canonical bytes.
//!
//! ```text
//! {"id": hex, "origin": node, "seq": n, "prev": hex|null, "ticket": uuid, "parents": [hex],
//!  "kind": change, "at": "…Z", "body": {"actor": {...}, ...change fields}, "pii": hex|null}
//! ```
//! Canonical bytes = RFC 8785 (JCS) of that object without `id` (and without `sig`, which the
//! signed-log layer adds). `id` = lower-case hex SHA-256 of the canonical bytes.

use serde_json::{Map, Value, json};

use crate::domain::{Actor, Change, Event, EventId, NodeId, TicketId, Timestamp};

/// Why a JSON value is not a valid event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A field is missing or has the wrong type or value.
    #[error("field `{field}`: {message}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The object could not be made canonical.
    #[error("cannot canonicalise event: {0}")]
    Canonical(String),
    /// `id` does not match the content.
    #[error("event id {claimed} does not match its content (expected {actual})")]
    IdMismatch {
        /// The id in the object.
        claimed: String,
        /// The id of the canonical bytes.
        actual: String,
    },
}

fn field_err(field: &'static str, message: impl std::fmt::Display) -> WireError {
    WireError::Field {
        field,
        message: message.to_string(),
    }
}

/// The event as a JSON object without `id`: what the id (and later the signature) covers.
pub fn unsigned_value(e: &Event) -> Result<Value, WireError> {
    let tagged =
        serde_json::to_value(&e.change).map_err(|x| WireError::Canonical(x.to_string()))?;
    let mut body = match tagged.get("body") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    body.insert(
        "actor".into(),
        serde_json::to_value(&e.actor).map_err(|x| WireError::Canonical(x.to_string()))?,
    );
    Ok(json!({
        "origin": e.origin,
        "seq": e.seq,
        "prev": e.prev,
        "ticket": e.ticket,
        "parents": e.parents,
        "kind": e.change.kind(),
        "at": e.at,
        "body": body,
        "pii": e.pii,
    }))
}

/// RFC 8785 canonical bytes of a JSON value.
pub fn canonical_bytes(v: &Value) -> Result<Vec<u8>, WireError> {
    serde_json_canonicalizer::to_vec(v).map_err(|x| WireError::Canonical(x.to_string()))
}

/// The id of an event's content.
pub fn compute_id(e: &Event) -> Result<EventId, WireError> {
    Ok(EventId::of_bytes(&canonical_bytes(&unsigned_value(e)?)?))
}

/// The full JSON object, with `id`.
pub fn to_value(e: &Event) -> Result<Value, WireError> {
    let mut v = unsigned_value(e)?;
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), Value::String(e.id.to_string()));
    }
    Ok(v)
}

fn take<T: serde::de::DeserializeOwned>(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<T, WireError> {
    let v = obj.get(field).ok_or_else(|| field_err(field, "missing"))?;
    serde_json::from_value(v.clone()).map_err(|e| field_err(field, e))
}

/// Reads an event from its JSON object and checks that `id` matches the content. Unknown
/// top-level fields (from a newer node) are ignored here; the id and signature checks of the
/// signed-log layer work on the received value itself.
pub fn from_value(v: &Value) -> Result<Event, WireError> {
    let obj = v
        .as_object()
        .ok_or_else(|| field_err("event", "must be a JSON object"))?;
    let kind: String = take(obj, "kind")?;
    let body = obj
        .get("body")
        .ok_or_else(|| field_err("body", "missing"))?;
    let actor: Actor = serde_json::from_value(body.get("actor").cloned().unwrap_or(Value::Null))
        .map_err(|e| field_err("body.actor", e))?;
    let change: Change = serde_json::from_value(json!({"kind": kind, "body": body}))
        .map_err(|e| field_err("body", e))?;
    let seq: u64 = take(obj, "seq")?;
    if seq == 0 {
        return Err(field_err("seq", "must be at least 1"));
    }
    let event = Event {
        id: take(obj, "id")?,
        origin: take::<NodeId>(obj, "origin")?,
        seq,
        prev: take(obj, "prev")?,
        ticket: take::<TicketId>(obj, "ticket")?,
        parents: take(obj, "parents")?,
        at: take::<Timestamp>(obj, "at")?,
        actor,
        change,
        pii: take(obj, "pii")?,
    };
    let mut unsigned = obj.clone();
    unsigned.remove("id");
    unsigned.remove("sig");
    let actual = EventId::of_bytes(&canonical_bytes(&Value::Object(unsigned))?);
    if actual != event.id {
        return Err(WireError::IdMismatch {
            claimed: event.id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(event)
}
