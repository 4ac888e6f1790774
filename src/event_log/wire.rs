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
    /// A number that is not an integer within ±(2^53 − 1) (`crypto::strict_json` refuses
    /// them in received bytes; this catches them in a value built otherwise).
    #[error("number {text} at {path} is not an integer within ±(2^53 − 1)")]
    IntegerOutOfRange {
        /// Location, such as `$.body.rating`.
        path: String,
        /// The number as `serde_json` prints it.
        text: String,
    },
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

/// The canonical bytes of a `created` event's unsigned object (what
/// `canonical_bytes(&unsigned_value(e))` gives), written member by member in key order without
/// building a JSON tree: the intake's hot path. `None` for any other change, or a `seq` past
/// 2^53 (RFC 8785 writes numbers as doubles); those take the general path.
pub fn created_canonical(e: &Event) -> Option<Result<Vec<u8>, WireError>> {
    const EXACT: u64 = 1 << 53;
    let Change::Created(c) = &e.change else {
        return None;
    };
    if e.seq > EXACT {
        return None;
    }
    // Every member named, so that a new field of `Created` cannot be left out unnoticed.
    let crate::domain::Created {
        tracking_code,
        report_kind,
        title,
        text,
        category,
        region,
        suggested_agency,
        channel,
        privacy,
        verify_due,
        overall_due,
    } = c.as_ref();
    let crate::domain::Privacy {
        anonymous,
        confidential,
    } = privacy;
    let write = || -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(640 + title.len() + text.len());
        // Keys in RFC 8785 order (all ASCII: byte order).
        object(&mut out, |m| {
            m.put("at", &e.at)?;
            m.key("body");
            object(m.out, |b| {
                // A small struct: through a JSON tree, whose maps are sorted.
                b.put("actor", &serde_json::to_value(&e.actor)?)?;
                b.put("category", category)?;
                b.put("channel", channel)?;
                b.put("overall_due", overall_due)?;
                b.key("privacy");
                object(b.out, |p| {
                    p.put("anonymous", anonymous)?;
                    p.put("confidential", confidential)
                })?;
                b.put("region", region)?;
                b.put("report_kind", report_kind)?;
                if let Some(agency) = suggested_agency {
                    b.put("suggested_agency", agency)?;
                }
                b.put("text", text)?;
                b.put("title", title)?;
                b.put("tracking_code", tracking_code)?;
                b.put("verify_due", verify_due)
            })?;
            m.put("kind", e.change.kind())?;
            m.put("origin", &e.origin)?;
            m.put("parents", &e.parents)?;
            m.put("pii", &e.pii)?;
            m.put("prev", &e.prev)?;
            m.put("seq", &e.seq)?;
            m.put("ticket", &e.ticket)
        })?;
        Ok(out)
    };
    Some(write().map_err(|x| WireError::Canonical(x.to_string())))
}

/// The members of a JSON object being written, in the order the caller puts them.
struct Members<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Members<'_> {
    /// Writes the separator and `"key":`.
    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// Writes a member whose value serde_json writes compactly.
    fn put<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        self.key(key);
        serde_json::to_writer(&mut *self.out, value)
    }
}

/// Writes `{`, the members `f` puts, and `}`.
fn object(
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut Members<'_>) -> Result<(), serde_json::Error>,
) -> Result<(), serde_json::Error> {
    out.push(b'{');
    f(&mut Members {
        out: &mut *out,
        first: true,
    })?;
    out.push(b'}');
    Ok(())
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

/// Refuses a value holding a number that is not an integer within ±(2^53 − 1)
/// (`crypto::strict_json::MAX_SAFE_INTEGER`): RFC 8785 writers disagree beyond it.
pub fn check_numbers(v: &Value) -> Result<(), WireError> {
    fn first_unsafe(v: &Value) -> Option<(String, &serde_json::Number)> {
        match v {
            Value::Null | Value::Bool(_) | Value::String(_) => None,
            Value::Number(n) => {
                let magnitude = n.as_i64().map(i64::unsigned_abs).or_else(|| n.as_u64());
                let max = crate::crypto::strict_json::MAX_SAFE_INTEGER;
                magnitude
                    .is_none_or(|m| m > max)
                    .then(|| (String::new(), n))
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| first_unsafe(x).map(|(p, n)| (format!("[{i}]{p}"), n))),
            Value::Object(m) => m
                .iter()
                .find_map(|(k, x)| first_unsafe(x).map(|(p, n)| (format!(".{k}{p}"), n))),
        }
    }
    match first_unsafe(v) {
        None => Ok(()),
        Some((path, n)) => Err(WireError::IntegerOutOfRange {
            path: format!("${path}"),
            text: n.to_string(),
        }),
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

    /// `created` events with any text, with and without the optional members.
    fn created_events() -> impl Strategy<Value = crate::domain::Event> {
        use crate::domain::{
            Actor, AgencyCode, Category, Change, Channel, Created, Event, EventId, NodeId, Privacy,
            RegionCode, ReportKind, Role, TicketId, Timestamp, TrackingCode,
        };
        let text = "[\\x00-\\x1f\"\\\\/\\x7f\u{80}-\u{ff}\u{2028}\u{1F600}a-z ]{0,40}";
        (
            (
                any::<String>(),
                text,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
            (
                1u64..=(1u64 << 53),
                any::<bool>(),
                0usize..3,
                any::<bool>(),
                any::<bool>(),
            ),
            (
                0i64..4_000_000_000_000,
                prop::sample::select(vec![Channel::Web, Channel::Sms, Channel::Api]),
            ),
        )
            .prop_map(
                |(
                    (title, body, anonymous, confidential, agency),
                    (seq, first, parents, pii, officer),
                    (ms, channel),
                )| {
                    let id = |s: &str| EventId::of_bytes(s.as_bytes());
                    Event {
                        id: id("unset"),
                        origin: NodeId::parse("prov-31.lapor.test").unwrap(),
                        seq,
                        prev: (!first).then(|| id("prev")),
                        ticket: TicketId::new(),
                        parents: (0..parents).map(|i| id(&i.to_string())).collect(),
                        at: Timestamp::from_millis(ms),
                        actor: Actor {
                            role: if officer {
                                Role::Verifier
                            } else {
                                Role::Citizen
                            },
                            officer: officer.then(|| "siti".to_owned()),
                            agency: None,
                        },
                        change: Change::Created(Box::new(Created {
                            tracking_code: TrackingCode::parse("31-K7QX-9F2M").unwrap(),
                            report_kind: ReportKind::Pengaduan,
                            title,
                            text: body,
                            category: Category::parse("transportasi").unwrap(),
                            region: RegionCode::parse("3171").unwrap(),
                            suggested_agency: agency
                                .then(|| AgencyCode::parse("DKI-DISHUB").unwrap()),
                            channel,
                            privacy: Privacy {
                                anonymous,
                                confidential,
                            },
                            verify_due: Timestamp::from_millis(ms + 1),
                            overall_due: Timestamp::from_millis(ms + 2),
                        })),
                        pii: pii.then(|| "ab".repeat(32)),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn created_bytes_written_directly_equal_the_general_path(e in created_events()) {
            let general = serde_json_canonicalizer::to_vec(&super::unsigned_value(&e).unwrap()).unwrap();
            prop_assert_eq!(super::created_canonical(&e).unwrap().unwrap(), general);
        }
    }

    #[test]
    fn other_changes_and_huge_seqs_take_the_general_path() {
        use crate::domain::{Actor, Change, Event, EventId, NodeId, TicketId, Timestamp};
        let mut e = Event {
            id: EventId::of_bytes(b"x"),
            origin: NodeId::parse("prov-31.lapor.test").unwrap(),
            seq: 2,
            prev: Some(EventId::of_bytes(b"p")),
            ticket: TicketId::new(),
            parents: vec![],
            at: Timestamp::from_millis(1),
            actor: Actor::citizen(),
            change: Change::Verified {},
            pii: None,
        };
        assert!(super::created_canonical(&e).is_none());
        e.seq = (1 << 53) + 1;
        assert!(super::created_canonical(&e).is_none());
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
