//! The wire protocol (`docs/PROTOCOL.md`): event batches and their answers, per-event
//! outcomes, catch-up pages, node information, the personal-data part, compression and its
//! limits, batch ids. Pure data and functions: no database, no HTTP; the client and the server
//! both build on it.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use crate::config::NodeRole;
use crate::event_log::keys::KeyRow;

/// The personal-data part of a `created` event, sent beside it to an entitled node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiPart {
    /// The ticket of that event.
    pub ticket: String,
    /// The `created` event it belongs to.
    pub event: String,
    /// The commitment's salt (hex).
    pub salt: String,
    /// The data: `{name?, phone?, email?}`.
    pub contact: Value,
}

/// Defines a reason enum whose wire form is its code (a `snake_case` string); a code this
/// version does not know (a newer peer's) is kept as `Other`, never an unreadable answer.
macro_rules! reasons {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A code this version does not know.
            Other(String),
        }

        impl $name {
            /// Every known reason, in the order of `docs/PROTOCOL.md`.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The wire code.
            #[must_use]
            pub fn code(&self) -> &str {
                match self {
                    $(Self::$variant => $code,)+
                    Self::Other(c) => c,
                }
            }

            /// The reason of a wire code.
            #[must_use]
            pub fn from_code(code: &str) -> Self {
                match code {
                    $($code => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = String::deserialize(d)?;
                Ok(Self::from_code(&code))
            }
        }
    };
}

reasons! {
    /// Why an event cannot be judged yet: not stored, not acknowledged; the sender keeps it and
    /// sends it again.
    DeferReason {
        /// Its parents (earlier events of its ticket or chain) are not held here yet.
        MissingParents = "missing_parents",
        /// No signing key of its origin is pinned here yet.
        UnknownOriginKeys = "unknown_origin_keys",
        /// It dispatches to an agency this node does not know yet.
        UnknownAgency = "unknown_agency",
    }
}

reasons! {
    /// Why an event is refused (and quarantined).
    RejectReason {
        /// Not an event: unreadable JSON or wire form.
        Malformed = "malformed",
        /// An integer beyond ±(2^53 − 1), which canonical JSON cannot carry exactly.
        IntegerOutOfRange = "integer_out_of_range",
        /// Its id is not the hash of its content.
        IdMismatch = "id_mismatch",
        /// Its signature is not well formed.
        MalformedSignature = "malformed_signature",
        /// Its `sig` carries a member the protocol does not define (unsigned data).
        UnknownSigMember = "unknown_sig_member",
        /// A group signature's Merkle path does not fit its index and size.
        GroupPathMismatch = "group_path_mismatch",
        /// Signed with a key this node has not pinned.
        UnknownKey = "unknown_key",
        /// Signed with a key pinned for another node.
        KeyNotOwned = "key_not_owned",
        /// Signed with a key not valid at the event's time.
        KeyNotValidAtEventTime = "key_not_valid_at_event_time",
        /// The signature does not verify.
        BadSignature = "bad_signature",
        /// Another event already holds its place in the origin's chain.
        Equivocation = "equivocation",
        /// Claims to be this node's own event, which it never wrote.
        UnknownOwnEvent = "unknown_own_event",
        /// A report whose tracking code does not carry its origin's province.
        CodeNotOfOrigin = "code_not_of_origin",
        /// Does not link to the event before it in the origin's chain.
        BrokenChain = "broken_chain",
        /// Its origin has no authority for this change of the ticket.
        OutOfAuthority = "out_of_authority",
        /// Its actor may not make this change.
        Forbidden = "forbidden",
        /// Not a legal transition of the ticket.
        IllegalTransition = "illegal_transition",
        /// This node's database refused it for its content (a constraint).
        Unstorable = "unstorable",
    }
}

/// What happened to one received event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored and applied.
    Accepted {
        /// Event id.
        id: String,
    },
    /// Already held.
    Duplicate {
        /// Event id.
        id: String,
    },
    /// Not judged yet; send again later.
    Deferred {
        /// Event id (as claimed).
        id: String,
        /// Why.
        reason: DeferReason,
    },
    /// Refused and quarantined.
    Rejected {
        /// Event id (as claimed, may be empty for unreadable input).
        id: String,
        /// Machine-readable reason.
        reason: RejectReason,
        /// Human-readable detail.
        detail: String,
    },
}

impl Outcome {
    /// The event id the outcome is about.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::Accepted { id }
            | Self::Duplicate { id }
            | Self::Deferred { id, .. }
            | Self::Rejected { id, .. } => id,
        }
    }

    /// The result word.
    #[must_use]
    pub const fn word(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Duplicate { .. } => "duplicate",
            Self::Deferred { .. } => "deferred",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// Acknowledged: the sender may drop its outbox row.
    #[must_use]
    pub const fn acknowledged(&self) -> bool {
        matches!(self, Self::Accepted { .. } | Self::Duplicate { .. })
    }
}

/// `POST /federation/v1/events` body. Envelope fields this version does not know are ignored,
/// so that a newer node's additions (as `key_statements` was one) do not make an older node
/// refuse its batches; the events inside are checked strictly (their signatures cover every
/// field).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// Hex SHA-256 of the events' ids joined by `\n` (a retry reuses it).
    pub batch: String,
    /// Signed events.
    pub events: Vec<Value>,
    /// Personal-data parts for entitled `created` events.
    #[serde(default)]
    pub pii: Vec<PiiPart>,
    /// The key statements that introduce the keys signing these events (absent when they are
    /// signed with first keys): the receiver pins a rotated key before it checks them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_statements: Vec<crate::event_log::rotation::KeyStatement>,
}

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// The batch id.
    pub batch: String,
    /// One outcome per event, in order — or, in an answer of exceptions, only the events that
    /// were not acknowledged.
    pub results: Vec<Outcome>,
    /// In an answer of exceptions (asked for with [`ANSWER_EXCEPTIONS`]): how many events of
    /// the batch were acknowledged (`accepted` or `duplicate`) — every event `results` does not
    /// name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<usize>,
}

/// Request header asking for an answer of exceptions: an event id is 32 bytes of entropy
/// that no compression removes, and on a slow link an answer naming every acknowledged event
/// costs more than the rest of it (`x-lapor-answer: exceptions`).
pub const ANSWER_EXCEPTIONS: (&str, &str) = ("x-lapor-answer", "exceptions");

impl BatchAnswer {
    /// The answer to `batch` given `results` (one per event): whole, or of exceptions.
    #[must_use]
    pub fn new(batch: String, results: Vec<Outcome>, exceptions: bool) -> Self {
        if !exceptions {
            return Self {
                batch,
                results,
                acknowledged: None,
            };
        }
        let (acked, rest): (Vec<Outcome>, Vec<Outcome>) =
            results.into_iter().partition(Outcome::acknowledged);
        Self {
            batch,
            results: rest,
            acknowledged: Some(acked.len()),
        }
    }

    /// One outcome per event of `ids` (the batch's events, in order), from a whole answer or
    /// one of exceptions; `None` when the answer does not fit the batch.
    #[must_use]
    pub fn outcomes(self, ids: &[&str]) -> Option<Vec<Outcome>> {
        let Some(acknowledged) = self.acknowledged else {
            return Some(self.results);
        };
        if acknowledged + self.results.len() != ids.len() {
            return None;
        }
        let mut named: std::collections::HashMap<String, Outcome> = self
            .results
            .into_iter()
            .map(|o| (o.id().to_owned(), o))
            .collect();
        Some(
            ids.iter()
                .map(|id| {
                    named.remove(*id).unwrap_or_else(|| Outcome::Duplicate {
                        id: (*id).to_owned(),
                    })
                })
                .collect(),
        )
    }
}

/// `GET /federation/v1/events` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeedPage {
    /// Events, in the origin's order (or causal order for a ticket).
    pub events: Vec<Value>,
    /// Personal-data parts the requester is entitled to.
    #[serde(default)]
    pub pii: Vec<PiiPart>,
    /// The key statements that introduce the keys signing these events (as in a batch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_statements: Vec<crate::event_log::rotation::KeyStatement>,
    /// The seq scanned up to: the requester's next `after`.
    pub next_after: i64,
    /// The origin's head as held by the answering node.
    pub head: i64,
}

/// A public key in the node information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Key id.
    pub id: String,
    /// Public key (base64).
    pub public_key: String,
    /// Valid from (ms).
    pub valid_from_ms: i64,
    /// Valid until (ms, exclusive).
    pub valid_until_ms: Option<i64>,
}

impl From<KeyRow> for KeyInfo {
    fn from(r: KeyRow) -> Self {
        Self {
            id: r.key_id,
            public_key: r.public_key,
            valid_from_ms: r.valid_from_ms,
            valid_until_ms: r.valid_until_ms,
        }
    }
}

/// `GET /federation/v1/node` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// Role.
    pub role: NodeRole,
    /// Province code.
    pub province: String,
    /// Software version.
    pub version: String,
    /// Signing keys, oldest first.
    pub keys: Vec<KeyInfo>,
    /// Key statements this node holds — its own rotations and those of peers it accepted —
    /// oldest first (absent when none; see `event_log::rotation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_statements: Vec<crate::event_log::rotation::KeyStatement>,
}

/// Domain separation prefix of a node status signature (`POST /federation/v1/status`).
pub const STATUS_DOMAIN: &[u8] = b"lapor-status-v1\n";

/// `POST /federation/v1/status` body: what a member node tells the hub about itself, signed
/// with its event signing key over `STATUS_DOMAIN` ‖ RFC 8785 of the object without `sig`
/// (`sig` = `{"key": id, "value": base64}`, as an event's). Members a newer node adds are
/// covered by the signature and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The sending node (must be the certificate's node).
    pub node: String,
    /// Its software version.
    pub version: String,
    /// Its clock when it sent this (ms since the epoch): orders statuses and shows skew.
    pub sent_at_ms: i64,
    /// Its own chain's head.
    pub head: StatusHead,
    /// Its delivery queue towards each peer.
    pub outbox: Vec<StatusOutbox>,
    /// Events it holds in quarantine.
    pub quarantined: i64,
    /// Its catch-up cursors: per origin, the seq it has pulled up to.
    pub cursors: Vec<StatusCursor>,
}

/// A node's own chain head in its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusHead {
    /// Highest seq written (0: none yet).
    pub seq: i64,
    /// That event's id (absent with seq 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// One peer's delivery queue in a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusOutbox {
    /// The peer.
    pub peer: String,
    /// Events not yet acknowledged by it.
    pub depth: i64,
    /// Age of the oldest of them when the status was sent (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_age_ms: Option<i64>,
}

/// One catch-up cursor in a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCursor {
    /// The origin pulled from.
    pub origin: String,
    /// Seq pulled up to.
    pub after: i64,
}

/// The answer to an accepted status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAnswer {
    /// The hub's clock on receipt (ms): the sender sees its own skew.
    pub received_ms: i64,
}

/// The id of a batch of events: hex SHA-256 of their claimed ids joined by `\n`.
#[must_use]
pub fn batch_id(events: &[Value]) -> String {
    let mut h = sha2::Sha256::new();
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(e.get("id").and_then(Value::as_str).unwrap_or("").as_bytes());
    }
    crate::crypto::to_hex(&h.finalize())
}

/// zstd-compresses a body.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    compress_at(bytes, FAST)
}

/// zstd level for fast links: cheap on the CPU.
pub const FAST: i32 = 3;
/// zstd level for slow links: a link under 1 MB/s is slower than level 19 compresses.
pub const THOROUGH: i32 = 19;

/// zstd-compresses a body at `level`.
pub fn compress_at(bytes: &[u8], level: i32) -> Vec<u8> {
    zstd::bulk::compress(bytes, level).unwrap_or_else(|_| bytes.to_vec())
}

/// Why a compressed body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// Not zstd data.
    #[error("not zstd data: {0}")]
    NotZstd(String),
    /// zstd data that does not decode.
    #[error("corrupt zstd data: {0}")]
    Corrupt(String),
    /// It decodes to more than the limit (a decompression bomb, or just too much).
    #[error("decompresses to more than {0} bytes")]
    TooLarge(usize),
    /// It was compressed with a dictionary this node does not hold.
    #[error(
        "compressed with zstd dictionary {0}, which this node does not hold (it holds {held})",
        held = super::dictionary::id()
    )]
    UnknownDictionary(u32),
}

/// Decompresses zstd `bytes` (plain, or made with the shipped dictionary), refusing output over
/// `max` bytes (decompression bombs).
pub fn decompress(bytes: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    let dict: &[u8] = match super::dictionary::needed_by(bytes) {
        0 => &[],
        n if n == super::dictionary::id() => super::dictionary::BYTES,
        n => return Err(DecompressError::UnknownDictionary(n)),
    };
    let decoder = zstd::stream::read::Decoder::with_dictionary(bytes, dict)
        .map_err(|e| DecompressError::NotZstd(e.to_string()))?;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    if out.len() > max {
        return Err(DecompressError::TooLarge(max));
    }
    Ok(out)
}

/// Orders raw events parents-first (readable ones; unreadable ones go last, to be judged).
#[must_use]
pub fn causal_order(values: Vec<Value>) -> Vec<Value> {
    let mut events = Vec::new();
    let mut rest = Vec::new();
    for v in values {
        match crate::event_log::wire::from_value(&v) {
            Ok(e) => events.push((e, v)),
            Err(_) => rest.push(v),
        }
    }
    let plain: Vec<crate::domain::Event> = events.iter().map(|(e, _)| e.clone()).collect();
    let order: Vec<String> = crate::domain::fold::order(&plain)
        .into_iter()
        .map(|e| e.id.to_string())
        .collect();
    let mut by_id: std::collections::HashMap<String, Value> = events
        .into_iter()
        .map(|(e, v)| (e.id.to_string(), v))
        .collect();
    let mut out: Vec<Value> = order.iter().filter_map(|id| by_id.remove(id)).collect();
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(id: &str) -> Outcome {
        Outcome::Accepted { id: id.into() }
    }

    #[test]
    fn an_answer_of_exceptions_names_only_what_was_not_acknowledged_and_must_add_up() {
        let deferred = Outcome::Deferred {
            id: "b".into(),
            reason: DeferReason::UnknownAgency,
        };
        let results = vec![accepted("a"), deferred.clone(), accepted("c")];
        let short = BatchAnswer::new("x".into(), results.clone(), true);
        assert_eq!(short.acknowledged, Some(2));
        assert_eq!(short.results, vec![deferred.clone()]);
        let json = serde_json::to_string(&short).unwrap();
        assert!(!json.contains("\"a\""), "{json}");
        let back: BatchAnswer = serde_json::from_str(&json).unwrap();
        let outcomes = back.clone().outcomes(&["a", "b", "c"]).unwrap();
        assert!(outcomes[0].acknowledged() && outcomes[2].acknowledged());
        assert_eq!(outcomes[1], deferred);
        // An answer that does not fit the batch is not guessed at.
        assert!(back.outcomes(&["a", "b"]).is_none());
        // A whole answer passes through; unknown reason codes survive a round trip.
        let whole = BatchAnswer::new("x".into(), results.clone(), false);
        assert_eq!(whole.outcomes(&["a", "b", "c"]).unwrap(), results);
        let newer: Outcome =
            serde_json::from_str(r#"{"result":"deferred","id":"d","reason":"roster_pending"}"#)
                .unwrap();
        assert_eq!(
            newer,
            Outcome::Deferred {
                id: "d".into(),
                reason: DeferReason::Other("roster_pending".into())
            }
        );
    }
}
