//! Node status: what a member node tells the hub about itself, signed with its event signing
//! key (`docs/PROTOCOL.md`, "Node status").
//!
//! ```text
//!  province: build (own head, outbox per peer, quarantine, cursors) ─► sign ─► zstd
//!        │  POST /federation/v1/status (its own task, short timeout; never in delivery's way)
//!        ▼
//!  hub: certificate ↔ membership ↔ node id ↔ pinned key ↔ signature ↔ newer than stored
//!        │ accepted                                   │ refused: status + code, log line,
//!        ▼                                            ▼ lapor_federation_status_refused_total
//!  node_status (latest per node) ──► hub::health (per-node view) ──► hub::alerts
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel::prelude::*;
use ed25519_dalek::Signature;
use serde_json::{Value, json};

use super::protocol::{self, NodeStatus, STATUS_DOMAIN, StatusCursor, StatusHead, StatusOutbox};
use crate::crypto::keys::{KeyId, NodeKey, parse_public_key};
use crate::db::schema::{chain_heads, node_keys, node_status, pull_cursors, quarantine};
use crate::db::{Db, DbConn, DbError};
use crate::domain::{NodeId, Timestamp};

/// Largest status body accepted as sent (compressed or not).
pub const MAX_STATUS_BYTES: usize = 64 * 1024;
/// Largest status body after decompression.
pub const MAX_STATUS_DECOMPRESSED: usize = 512 * 1024;
/// Most outbox entries, and most cursors, in a status (a federation has a few dozen members).
pub const MAX_ENTRIES: usize = 1000;
/// Longest text in a status (version, node ids, event id).
pub const MAX_TEXT: usize = 255;

/// Why a status is refused. Each has a stable code (the body's `error` and the metric's
/// `reason`) and an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StatusRefusal {
    /// No verified client certificate naming a node.
    #[error("federation routes need a client certificate from the federation CA naming a node")]
    NoPeerIdentity,
    /// A certificate of the federation CA, but not one of this node's peers.
    #[error("{0} is not a member of this node's federation (not among its peers)")]
    NotAMember(NodeId),
    /// This node is not the hub: statuses go to the hub.
    #[error("node statuses are sent to the hub; this node is a province")]
    NotTheHub,
    /// The body is larger than a status may be.
    #[error("a status body may hold at most {0} bytes")]
    TooLarge(usize),
    /// Unreadable body: compression, encoding or JSON.
    #[error("{0}")]
    Unreadable(String),
    /// JSON, but not a status (a member missing or of the wrong type).
    #[error("not a node status: {0}")]
    Malformed(String),
    /// The status names another node than the certificate.
    #[error("the status is of {claimed} but the client certificate names {certificate}")]
    NodeMismatch {
        /// As claimed in the status.
        claimed: String,
        /// The certificate's node.
        certificate: String,
    },
    /// Signed with a key not pinned here for that node (or not valid at its time).
    #[error("{0}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the status's signature does not verify with key {0}")]
    BadSignature(String),
    /// Not newer than the status already held from that node (a replay or a late copy).
    #[error("a status of {node} sent at {held_ms} ms is held; this one was sent at {sent_ms} ms")]
    Stale {
        /// The node.
        node: String,
        /// Its held status's time.
        held_ms: i64,
        /// This one's time.
        sent_ms: i64,
    },
    /// This node failed (the cause is logged, not shown).
    #[error("the hub cannot store statuses right now; retry later")]
    Unavailable(String),
}

impl StatusRefusal {
    /// The machine-readable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NoPeerIdentity => "no_peer_identity",
            Self::NotAMember(_) => "not_a_member",
            Self::NotTheHub => "not_the_hub",
            Self::TooLarge(_) => "body_too_large",
            Self::Unreadable(_) => "unreadable",
            Self::Malformed(_) => "malformed_status",
            Self::NodeMismatch { .. } => "node_mismatch",
            Self::UnknownKey(_) => "unknown_key",
            Self::BadSignature(_) => "bad_signature",
            Self::Stale { .. } => "stale_status",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The HTTP status.
    #[must_use]
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::NoPeerIdentity => 401,
            Self::NotAMember(_)
            | Self::NodeMismatch { .. }
            | Self::UnknownKey(_)
            | Self::BadSignature(_) => 403,
            Self::NotTheHub => 404,
            Self::TooLarge(_) => 413,
            Self::Unreadable(_) => 400,
            Self::Malformed(_) => 422,
            Self::Stale { .. } => 409,
            Self::Unavailable(_) => 503,
        }
    }
}

impl From<DbError> for StatusRefusal {
    fn from(e: DbError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<diesel::result::Error> for StatusRefusal {
    fn from(e: diesel::result::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// This node's status now, read from its database: its own chain head, its queue towards each
/// of `peers`, its quarantine and its catch-up cursors.
///
/// # Errors
///
/// The database could not be read.
pub fn build(
    conn: &mut DbConn,
    me: &NodeId,
    peers: &[NodeId],
    now: Timestamp,
) -> QueryResult<NodeStatus> {
    let head: Option<(i64, String)> = chain_heads::table
        .find(me.as_str())
        .select((chain_heads::seq, chain_heads::last_id))
        .first(conn)
        .optional()?;
    let mut outbox = Vec::with_capacity(peers.len());
    for p in peers {
        let s = super::outbox::stats(conn, p.as_str())?;
        outbox.push(StatusOutbox {
            peer: p.to_string(),
            depth: s.depth,
            oldest_age_ms: s.oldest_ms.map(|o| (now.millis() - o).max(0)),
        });
    }
    let quarantined: i64 = quarantine::table.count().get_result(conn)?;
    let cursors: Vec<(String, i64)> = pull_cursors::table
        .order(pull_cursors::origin.asc())
        .select((pull_cursors::origin, pull_cursors::after_seq))
        .load(conn)?;
    Ok(NodeStatus {
        node: me.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        sent_at_ms: now.millis(),
        head: match head {
            Some((seq, id)) => StatusHead {
                seq,
                event: Some(id),
            },
            None => StatusHead {
                seq: 0,
                event: None,
            },
        },
        outbox,
        quarantined,
        cursors: cursors
            .into_iter()
            .map(|(origin, after)| StatusCursor { origin, after })
            .collect(),
    })
}

/// The bytes a status signature covers: the domain and the canonical bytes of the status
/// object without `sig`.
///
/// # Errors
///
/// The value cannot be made canonical (a float in it).
pub fn message(unsigned: &Value) -> Result<Vec<u8>, String> {
    let canonical = serde_json_canonicalizer::to_vec(unsigned).map_err(|e| e.to_string())?;
    let mut m = Vec::with_capacity(STATUS_DOMAIN.len() + canonical.len());
    m.extend_from_slice(STATUS_DOMAIN);
    m.extend_from_slice(&canonical);
    Ok(m)
}

/// The status as signed JSON (`sig` added).
///
/// # Errors
///
/// The status could not be made canonical (it holds no floats, so this does not happen).
pub fn sign(status: &NodeStatus, key: &NodeKey) -> Result<Value, String> {
    let mut v = serde_json::to_value(status).map_err(|e| e.to_string())?;
    let sig = key.sign(&message(&v)?);
    v["sig"] = json!({"key": key.id().as_str(), "value": STANDARD.encode(sig.to_bytes())});
    Ok(v)
}

/// Checks a received status value: a status of `from` (the certificate's node), signed by a
/// key pinned here for `from` and valid at its time.
///
/// # Errors
///
/// Why it is refused.
pub fn verify(conn: &mut DbConn, from: &NodeId, mut v: Value) -> Result<NodeStatus, StatusRefusal> {
    let sig = v
        .as_object_mut()
        .and_then(|o| o.remove("sig"))
        .ok_or_else(|| StatusRefusal::Malformed("no `sig` object".into()))?;
    let status: NodeStatus =
        serde_json::from_value(v.clone()).map_err(|e| StatusRefusal::Malformed(e.to_string()))?;
    if status.version.chars().count() > MAX_TEXT
        || status.outbox.len() > MAX_ENTRIES
        || status.cursors.len() > MAX_ENTRIES
        || status
            .outbox
            .iter()
            .map(|o| &o.peer)
            .chain(status.cursors.iter().map(|c| &c.origin))
            .chain(&status.head.event)
            .any(|t| t.chars().count() > MAX_TEXT)
    {
        return Err(StatusRefusal::Malformed(format!(
            "at most {MAX_ENTRIES} outbox entries and cursors, each text at most {MAX_TEXT} characters"
        )));
    }
    if status.node != from.as_str() {
        return Err(StatusRefusal::NodeMismatch {
            claimed: status.node.chars().take(100).collect(),
            certificate: from.to_string(),
        });
    }
    let sig = sig
        .as_object()
        .filter(|o| o.len() == 2)
        .ok_or_else(|| StatusRefusal::Malformed("`sig` must be {key, value}".into()))?;
    let field = |name: &str| {
        sig.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| StatusRefusal::Malformed(format!("`sig.{name}` is missing")))
    };
    let key_id = KeyId::parse(field("key")?)
        .map_err(|e| StatusRefusal::Malformed(format!("`sig.key`: {e}")))?;
    let bytes: [u8; 64] = STANDARD
        .decode(field("value")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StatusRefusal::Malformed("`sig.value` is not 64 bytes of base64".into()))?;
    type Row = (String, String, i64, Option<i64>);
    let pinned: Option<Row> = node_keys::table
        .find(key_id.as_str())
        .select((
            node_keys::origin,
            node_keys::public_key,
            node_keys::valid_from_ms,
            node_keys::valid_until_ms,
        ))
        .first(conn)
        .optional()?;
    let Some((owner, public, from_ms, until_ms)) = pinned.filter(|(o, ..)| o == from.as_str())
    else {
        return Err(StatusRefusal::UnknownKey(format!(
            "key {key_id} is not pinned here for {from}"
        )));
    };
    let at = status.sent_at_ms;
    if at < from_ms || until_ms.is_some_and(|u| at >= u) {
        return Err(StatusRefusal::UnknownKey(format!(
            "key {key_id} of {owner} was not valid at {at} ms"
        )));
    }
    let public = parse_public_key(&public)
        .map_err(|e| StatusRefusal::Unavailable(format!("stored key {key_id}: {e}")))?;
    let message = message(&v).map_err(StatusRefusal::Malformed)?;
    public
        .verify_strict(&message, &Signature::from_bytes(&bytes))
        .map_err(|_| StatusRefusal::BadSignature(key_id.to_string()))?;
    Ok(status)
}

/// Reads a status body (`encoding`: the `content-encoding`, `zstd` or none) into strict JSON.
///
/// # Errors
///
/// The body is too large or unreadable.
pub fn parse(raw: &[u8], encoding: Option<&[u8]>) -> Result<Value, StatusRefusal> {
    let body = match encoding {
        None | Some(b"identity") => raw.to_vec(),
        Some(b"zstd") => {
            protocol::decompress(raw, MAX_STATUS_DECOMPRESSED).map_err(|e| match e {
                protocol::DecompressError::TooLarge(n) => StatusRefusal::TooLarge(n),
                other => StatusRefusal::Unreadable(other.to_string()),
            })?
        }
        Some(other) => {
            return Err(StatusRefusal::Unreadable(format!(
                "content-encoding {:?} is not supported; use zstd or none",
                String::from_utf8_lossy(other)
            )));
        }
    };
    crate::crypto::strict_json::parse(&body).map_err(|e| StatusRefusal::Unreadable(e.to_string()))
}

/// Verifies a status from `from` and stores it as that node's latest, in one transaction: a
/// status not newer than the held one is refused and changes nothing. Returns the status.
///
/// # Errors
///
/// Why it is refused.
pub fn receive(
    db: &Db,
    from: &NodeId,
    value: Value,
    now: Timestamp,
) -> Result<NodeStatus, StatusRefusal> {
    let raw = value.to_string();
    let status = {
        let mut conn = db.read()?;
        verify(&mut conn, from, value)?
    };
    let row = status.clone();
    db.write(move |c| {
        let held: Option<i64> = node_status::table
            .find(&row.node)
            .select(node_status::sent_at_ms)
            .first(c)
            .optional()?;
        if let Some(held_ms) = held.filter(|h| *h >= row.sent_at_ms) {
            return Err(StatusRefusal::Stale {
                node: row.node.clone(),
                held_ms,
                sent_ms: row.sent_at_ms,
            });
        }
        let values = (
            node_status::sent_at_ms.eq(row.sent_at_ms),
            node_status::received_ms.eq(now.millis()),
            node_status::version.eq(row.version.chars().take(64).collect::<String>()),
            node_status::head_seq.eq(row.head.seq),
            node_status::head_event.eq(row.head.event.clone()),
            node_status::quarantined.eq(row.quarantined),
            node_status::status.eq(&raw),
        );
        if held.is_some() {
            diesel::update(node_status::table.find(&row.node))
                .set(values)
                .execute(c)?;
        } else {
            diesel::insert_into(node_status::table)
                .values((node_status::node_id.eq(&row.node), values))
                .execute(c)?;
        }
        Ok(())
    })?;
    Ok(status)
}
