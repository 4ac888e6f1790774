//! Federation message bodies: event batches and their answers, catch-up pages, node
//! information; batch building from the outbox; compression limits.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use super::FedError;
use crate::config::NodeRole;
use crate::db::Db;
use crate::event_log::keys::KeyRow;
use crate::inbox::{Outcome, PiiPart};
use crate::outbox::store as outbox;

/// `POST /federation/v1/events` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Hex SHA-256 of the events' ids joined by `\n` (a retry reuses it).
    pub batch: String,
    /// Signed events.
    pub events: Vec<Value>,
    /// Personal-data parts for entitled `created` events.
    #[serde(default)]
    pub pii: Vec<PiiPart>,
}

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// The batch id.
    pub batch: String,
    /// One outcome per event, in order.
    pub results: Vec<Outcome>,
}

/// `GET /federation/v1/events` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeedPage {
    /// Events, in the origin's order (or causal order for a ticket).
    pub events: Vec<Value>,
    /// Personal-data parts the requester is entitled to.
    #[serde(default)]
    pub pii: Vec<PiiPart>,
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

/// A batch ready to send.
#[derive(Debug, Clone)]
pub struct Built {
    /// Batch id.
    pub id: String,
    /// (outbox row, event id) per event.
    pub rows: Vec<(i64, String)>,
    /// The zstd-compressed JSON body.
    pub body: Vec<u8>,
}

/// Builds batches for `dest` from its oldest pending outbox rows after row `after`: at most
/// `max_events` events and about `max_bytes` of JSON each (a single larger event still goes
/// alone).
pub fn build_batches(
    db: &Db,
    dest: &str,
    after: i64,
    limit: i64,
    max_events: usize,
    max_bytes: usize,
) -> Result<Vec<Built>, FedError> {
    let mut conn = db.read()?;
    let rows = outbox::pending(&mut conn, dest, after, limit)?;
    let mut out = Vec::new();
    let mut cur: Vec<outbox::Claimed> = Vec::new();
    let mut bytes = 0usize;
    for r in rows {
        if !cur.is_empty() && (cur.len() >= max_events || bytes + r.raw.len() > max_bytes) {
            out.push(finish(&mut conn, std::mem::take(&mut cur))?);
            bytes = 0;
        }
        bytes += r.raw.len();
        cur.push(r);
    }
    if !cur.is_empty() {
        out.push(finish(&mut conn, cur)?);
    }
    Ok(out)
}

fn finish(conn: &mut crate::db::DbConn, rows: Vec<outbox::Claimed>) -> Result<Built, FedError> {
    let mut events = Vec::with_capacity(rows.len());
    let mut pii = Vec::new();
    for r in &rows {
        let v: Value = serde_json::from_str(&r.raw).map_err(|e| FedError::BadAnswer {
            peer: "local outbox".into(),
            cause: format!("stored event {} unreadable: {e}", r.event_id),
        })?;
        events.push(v);
        if r.with_pii {
            if let Some(p) = pii_part(conn, &r.ticket, &r.event_id)? {
                pii.push(p);
            }
        }
    }
    let batch = Batch {
        batch: batch_id(&events),
        events,
        pii,
    };
    let json = serde_json::to_vec(&batch).map_err(|e| FedError::BadAnswer {
        peer: "local outbox".into(),
        cause: e.to_string(),
    })?;
    Ok(Built {
        id: batch.batch,
        rows: rows.into_iter().map(|r| (r.row, r.event_id)).collect(),
        body: super::compress(&json),
    })
}

/// The personal-data part of a ticket's `created` event, when this node holds it.
pub fn pii_part(
    conn: &mut crate::db::DbConn,
    ticket: &str,
    event_id: &str,
) -> Result<Option<PiiPart>, FedError> {
    let Ok(tid) = crate::domain::TicketId::parse(ticket) else {
        return Ok(None);
    };
    let Some(c) = crate::tickets::store::contact(conn, &tid)? else {
        return Ok(None);
    };
    let Some(salt) = c.salt.clone() else {
        return Ok(None);
    };
    let contact = crate::tickets::contact_value(&crate::tickets::Contact {
        name: c.name,
        phone: c.phone,
        email: c.email,
    });
    Ok(Some(PiiPart {
        ticket: ticket.to_owned(),
        event: event_id.to_owned(),
        salt,
        contact,
    }))
}

/// Decompresses zstd `bytes`, refusing output over `max` bytes (decompression bombs).
pub fn decompress(bytes: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let decoder =
        zstd::stream::read::Decoder::new(bytes).map_err(|e| format!("not zstd data: {e}"))?;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("corrupt zstd data: {e}"))?;
    if out.len() > max {
        return Err(format!("decompresses to more than {max} bytes"));
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
