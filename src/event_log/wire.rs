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
    // Taken out of the tagged object, not copied (it holds the report's text).
    let mut body = match tagged {
        Value::Object(mut m) => match m.remove("body") {
            Some(Value::Object(b)) => b,
            _ => Map::new(),
        },
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
///
/// When every object key is ASCII (byte order is then UTF-16 order, which RFC 8785 sorts by)
/// and every number is an integer of magnitude at most 2^53 (written the same by both), the
/// compact output of `serde_json` — whose maps are sorted by key — is already canonical and is
/// used as is; any other value goes through the general canonicaliser. Event objects always
/// take the fast path.
pub fn canonical_bytes(v: &Value) -> Result<Vec<u8>, WireError> {
    if plain(v) {
        return serde_json::to_vec(v).map_err(|x| WireError::Canonical(x.to_string()));
    }
    serde_json_canonicalizer::to_vec(v).map_err(|x| WireError::Canonical(x.to_string()))
}

/// Canonical bytes of an event object without its `id` and `sig` members: what its id hashes
/// and its signature covers (same rules as [`canonical_bytes`], without copying the object).
pub fn unsigned_canonical(obj: &Map<String, Value>) -> Result<Vec<u8>, WireError> {
    let kept = |k: &str| k != "id" && k != "sig";
    if obj
        .iter()
        .all(|(k, v)| !kept(k) || (k.is_ascii() && plain(v)))
    {
        let err = |x: serde_json::Error| WireError::Canonical(x.to_string());
        let mut out = Vec::with_capacity(1024);
        out.push(b'{');
        for (i, (k, v)) in obj.iter().filter(|(k, _)| kept(k)).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, k).map_err(err)?;
            out.push(b':');
            serde_json::to_writer(&mut out, v).map_err(err)?;
        }
        out.push(b'}');
        return Ok(out);
    }
    let mut unsigned = obj.clone();
    unsigned.remove("id");
    unsigned.remove("sig");
    canonical_bytes(&Value::Object(unsigned))
}

/// Whether `serde_json`'s compact output of `v` is its RFC 8785 form (see [`canonical_bytes`]).
fn plain(v: &Value) -> bool {
    const EXACT: u64 = 1 << 53;
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => n
            .as_i64()
            .map(i64::unsigned_abs)
            .or_else(|| n.as_u64())
            .is_some_and(|m| m <= EXACT),
        Value::Array(a) => a.iter().all(plain),
        Value::Object(m) => m.iter().all(|(k, v)| k.is_ascii() && plain(v)),
    }
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
    from_value_with_canonical(v).map(|(e, _)| e)
}

/// [`from_value`], also returning the event's canonical bytes (what its signature covers).
pub fn from_value_with_canonical(v: &Value) -> Result<(Event, Vec<u8>), WireError> {
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
    let canonical = unsigned_canonical(obj)?;
    let actual = EventId::of_bytes(&canonical);
    if actual != event.id {
        return Err(WireError::IdMismatch {
            claimed: event.id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok((event, canonical))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::{canonical_bytes, unsigned_canonical};

    /// JSON values of the shapes events have: ASCII keys, integers, any text (controls,
    /// quotes, backslashes, non-ASCII, astral characters), nested arrays and objects.
    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(|n| json!(n)),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\/\\x7f\u{80}-\u{ff}\u{2028}\u{2029}\u{1F600}a-z]{0,12}"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[ -~]{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        #[test]
        fn fast_path_equals_the_general_canonicaliser(v in values()) {
            let general = serde_json_canonicalizer::to_vec(&v).unwrap();
            prop_assert_eq!(canonical_bytes(&v).unwrap(), general);
        }

        #[test]
        fn unsigned_canonical_drops_id_and_sig_only(
            m in prop::collection::btree_map("[a-z]{1,6}", values(), 0..8),
        ) {
            let mut obj: Map<String, Value> = m.into_iter().collect();
            let mut without = obj.clone();
            without.remove("id");
            without.remove("sig");
            obj.insert("id".into(), json!("x"));
            obj.insert("sig".into(), json!({"key": "k", "value": "v"}));
            let general = serde_json_canonicalizer::to_vec(&Value::Object(without)).unwrap();
            prop_assert_eq!(unsigned_canonical(&obj).unwrap(), general);
        }
    }

    #[test]
    fn values_outside_the_fast_path_are_still_canonical() {
        // Non-ASCII keys sort by UTF-16 code units; floats use the ECMAScript form.
        let v = json!({"\u{e9}": 1, "z": 1.5e300, "\u{1F600}": 2, "\u{FB33}": 3, "big": 9_007_199_254_740_993_u64});
        assert_eq!(
            canonical_bytes(&v).unwrap(),
            serde_json_canonicalizer::to_vec(&v).unwrap()
        );
    }
}
