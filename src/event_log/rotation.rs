//! Signed key rotation (issue 25, item 2): a *key statement* says "key `retiring` of `node`
//! hands over to key `key_id` (this material) from `valid_from_ms`", signed by the retiring key
//! and by the new one. `keys rotate` writes it with the new key; node information offers every
//! statement a node holds (its own and the ones it accepted from peers); a peer that has the
//! retiring key pinned accepts the new key from the statement alone, without an operator.
//!
//! ```text
//!  keys rotate ─► statement (signed by old + new) ─► key_statements + node_keys, one tx
//!                                                        │ GET /federation/v1/node
//!                                                        ▼
//!  peer: accept ─ retiring key pinned for node? current? both signatures? ─► pin new key,
//!                                                          close the old key's window
//! ```
//!
//! A statement not signed by the retiring key, naming a key that is not the node's current
//! one, or whose new key id does not match its material is refused with a [`Refusal`] and
//! changes nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel::prelude::*;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::crypto::keys::{KeyId, NodeKey, parse_public_key, public_key_text};
use crate::db::DbConn;
use crate::db::schema::{key_statements, node_keys};
use crate::event_log::keys::KeyRow;

/// Domain separation of a key statement's signatures.
pub const DOMAIN: &[u8] = b"lapor-key-statement-v1\n";

/// Most statements a node offers or takes from one answer (a node rotates rarely).
pub const MAX_STATEMENTS: usize = 256;

/// What a key statement states (the signed part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    /// The node whose key rotates.
    pub node: String,
    /// The key that retires (the node's current key).
    pub retiring: String,
    /// The new key's id.
    pub key_id: String,
    /// The new key's public key (base64).
    pub public_key: String,
    /// From when the new key signs (ms); the retiring key's window closes here.
    pub valid_from_ms: i64,
}

/// A key statement: the handover and its two signatures (base64 Ed25519 over [`DOMAIN`] ‖
/// RFC 8785 bytes of the handover).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyStatement {
    /// The node whose key rotates.
    pub node: String,
    /// The key that retires.
    pub retiring: String,
    /// The new key's id.
    pub key_id: String,
    /// The new key's public key (base64).
    pub public_key: String,
    /// From when the new key signs (ms).
    pub valid_from_ms: i64,
    /// Signature by the retiring key.
    pub retiring_sig: String,
    /// Signature by the new key.
    pub new_sig: String,
}

/// Why a statement is refused. Nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A field is malformed (key material, id, signature encoding).
    #[error("malformed statement: {0}")]
    Malformed(String),
    /// The retiring key is not pinned here for that node.
    #[error("retiring key {retiring} is not a key of {node} held here")]
    UnknownRetiring {
        /// Node.
        node: String,
        /// Retiring key id.
        retiring: String,
    },
    /// The retiring key is not the node's current key here (its window closed already, or the
    /// statement starts before it).
    #[error("key {0} is not the node's current key")]
    NotCurrent(String),
    /// A signature does not verify.
    #[error("not signed by the {0} key")]
    BadSignature(&'static str),
    /// The new key id is already held for another node, or with other material.
    #[error("key {0} is already held with other material or for another node")]
    KeyTaken(String),
}

impl Refusal {
    /// A stable code (metric label, logs).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnknownRetiring { .. } => "unknown_retiring_key",
            Self::NotCurrent(_) => "not_current_key",
            Self::BadSignature(_) => "bad_signature",
            Self::KeyTaken(_) => "key_taken",
        }
    }
}

impl KeyStatement {
    /// The signed part.
    #[must_use]
    pub fn handover(&self) -> Handover {
        Handover {
            node: self.node.clone(),
            retiring: self.retiring.clone(),
            key_id: self.key_id.clone(),
            public_key: self.public_key.clone(),
            valid_from_ms: self.valid_from_ms,
        }
    }

    /// Signs `handover` with both keys.
    pub fn sign(
        handover: Handover,
        retiring: &NodeKey,
        new: &NodeKey,
    ) -> Result<Self, serde_json::Error> {
        let msg = message(&handover)?;
        let sig = |k: &NodeKey| STANDARD.encode(k.sign(&msg).to_bytes());
        Ok(Self {
            retiring_sig: sig(retiring),
            new_sig: sig(new),
            node: handover.node,
            retiring: handover.retiring,
            key_id: handover.key_id,
            public_key: handover.public_key,
            valid_from_ms: handover.valid_from_ms,
        })
    }

    /// Checks the new key's id against its material and the new key's signature; the retiring
    /// key's signature is checked against `retiring` (its material as held here).
    pub fn verify(&self, retiring: &str) -> Result<(), Refusal> {
        let new = parse_public_key(&self.public_key)
            .map_err(|e| Refusal::Malformed(format!("public_key: {e}")))?;
        if KeyId::of(&new).as_str() != self.key_id {
            return Err(Refusal::Malformed(format!(
                "key_id {} does not match its public key",
                self.key_id
            )));
        }
        let old = parse_public_key(retiring)
            .map_err(|e| Refusal::Malformed(format!("retiring key: {e}")))?;
        let msg = message(&self.handover()).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let sig = |text: &str, which: &'static str| -> Result<Signature, Refusal> {
            let bytes = STANDARD
                .decode(text)
                .map_err(|_| Refusal::Malformed(format!("{which} signature is not base64")))?;
            Signature::from_slice(&bytes)
                .map_err(|_| Refusal::Malformed(format!("{which} signature has a wrong length")))
        };
        old.verify_strict(&msg, &sig(&self.retiring_sig, "retiring")?)
            .map_err(|_| Refusal::BadSignature("retiring"))?;
        new.verify_strict(&msg, &sig(&self.new_sig, "new")?)
            .map_err(|_| Refusal::BadSignature("new"))?;
        Ok(())
    }
}

fn message(h: &Handover) -> Result<Vec<u8>, serde_json::Error> {
    let mut m = DOMAIN.to_vec();
    m.extend(serde_json_canonicalizer::to_vec(h)?);
    Ok(m)
}

/// Builds the statement for a rotation of `node` from `old` to `new` at `at_ms`.
pub fn statement_for(
    node: &str,
    old: &NodeKey,
    new: &NodeKey,
    at_ms: i64,
) -> Result<KeyStatement, serde_json::Error> {
    KeyStatement::sign(
        Handover {
            node: node.to_owned(),
            retiring: old.id().to_string(),
            key_id: new.id().to_string(),
            public_key: public_key_text(&new.verifying_key()),
            valid_from_ms: at_ms,
        },
        old,
        new,
    )
}

/// Stores `s` (once per new key id).
pub fn record(conn: &mut DbConn, s: &KeyStatement, now_ms: i64) -> QueryResult<()> {
    let known: i64 = key_statements::table
        .find(&s.key_id)
        .count()
        .get_result(conn)?;
    if known == 0 {
        let text = serde_json::to_string(s).unwrap_or_default();
        diesel::insert_into(key_statements::table)
            .values((
                key_statements::key_id.eq(&s.key_id),
                key_statements::node.eq(&s.node),
                key_statements::retiring.eq(&s.retiring),
                key_statements::valid_from_ms.eq(s.valid_from_ms),
                key_statements::statement.eq(text),
                key_statements::recorded_at_ms.eq(now_ms),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Every statement held, oldest first (at most [`MAX_STATEMENTS`], the newest kept).
pub fn held(conn: &mut DbConn) -> QueryResult<Vec<KeyStatement>> {
    let mut rows: Vec<String> = key_statements::table
        .order(key_statements::valid_from_ms.desc())
        .limit(i64::try_from(MAX_STATEMENTS).unwrap_or(i64::MAX))
        .select(key_statements::statement)
        .load(conn)?;
    rows.reverse();
    Ok(rows
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect())
}

/// What [`accept`] did with a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The new key is now pinned and the retiring key's window closed.
    Pinned,
    /// Already applied here.
    Known,
    /// The node has no key pinned here (first contact pins its keys as a whole): nothing to do.
    NotApplicable,
}

/// Judges `s` against the keys held here and applies it when it holds: the new key pinned from
/// `valid_from_ms`, the retiring key's window closed there, the statement stored (to be passed
/// on). Call inside a transaction; a refusal changes nothing.
pub fn accept(conn: &mut DbConn, s: &KeyStatement, now_ms: i64) -> Result<Accepted, AcceptError> {
    let held: Vec<KeyRow> = node_keys::table
        .filter(node_keys::origin.eq(&s.node))
        .select(KeyRow::as_select())
        .load(conn)?;
    if held.is_empty() {
        return Ok(Accepted::NotApplicable);
    }
    let Some(old) = held.iter().find(|k| k.key_id == s.retiring) else {
        return Err(Refusal::UnknownRetiring {
            node: s.node.clone(),
            retiring: s.retiring.clone(),
        }
        .into());
    };
    s.verify(&old.public_key)?;
    let existing: Option<KeyRow> = node_keys::table
        .find(&s.key_id)
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?;
    match existing {
        Some(k) if k.origin == s.node && k.public_key == s.public_key => {
            record(conn, s, now_ms)?;
            return Ok(Accepted::Known);
        }
        Some(_) => return Err(Refusal::KeyTaken(s.key_id.clone()).into()),
        None => {}
    }
    let current = old.valid_until_ms.is_none_or(|u| u == s.valid_from_ms);
    let newer_key = held
        .iter()
        .any(|k| k.key_id != old.key_id && k.valid_from_ms > old.valid_from_ms);
    if !current || newer_key || s.valid_from_ms <= old.valid_from_ms {
        return Err(Refusal::NotCurrent(s.retiring.clone()).into());
    }
    diesel::update(node_keys::table.find(&old.key_id))
        .set(node_keys::valid_until_ms.eq(Some(s.valid_from_ms)))
        .execute(conn)?;
    diesel::insert_into(node_keys::table)
        .values(&KeyRow {
            key_id: s.key_id.clone(),
            origin: s.node.clone(),
            public_key: s.public_key.clone(),
            valid_from_ms: s.valid_from_ms,
            valid_until_ms: None,
        })
        .execute(conn)?;
    record(conn, s, now_ms)?;
    Ok(Accepted::Pinned)
}

/// [`accept`]'s failure: the statement's fault, or the database's.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Refused for what it says.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Database problem.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// A statement's outcome: applied (or nothing to do), or refused with its reason.
pub type Judged = (KeyStatement, Result<Accepted, Refusal>);

/// Judges `statements` (at most [`MAX_STATEMENTS`], oldest first so a chain of rotations
/// applies in order), each in its own savepoint: one refused statement changes nothing and does
/// not stop the others.
pub fn accept_all(
    db: &crate::db::Db,
    mut statements: Vec<KeyStatement>,
    now_ms: i64,
) -> Result<Vec<Judged>, crate::db::DbError> {
    statements.truncate(MAX_STATEMENTS);
    statements.sort_by_key(|s| s.valid_from_ms);
    db.write(move |c| {
        let mut out = Vec::with_capacity(statements.len());
        for s in statements {
            match c.transaction(|tx| accept(tx, &s, now_ms)) {
                Ok(a) => out.push((s, Ok(a))),
                Err(AcceptError::Refused(r)) => out.push((s, Err(r))),
                Err(AcceptError::Db(e)) => return Err(crate::db::DbError::Query(e)),
            }
        }
        Ok(out)
    })
}

/// The statements that introduce the keys signing `events` (their `sig.key`), with the
/// statements before them back to a key the receiver may hold (a chain of rotations), oldest
/// first; at most [`MAX_STATEMENTS`]. Empty for events signed with a node's first key.
pub fn introducing(
    conn: &mut DbConn,
    events: &[serde_json::Value],
) -> QueryResult<Vec<KeyStatement>> {
    let mut wanted: Vec<String> = events
        .iter()
        .filter_map(|e| e.get("sig")?.get("key")?.as_str().map(str::to_owned))
        .collect();
    wanted.sort();
    wanted.dedup();
    let mut found: Vec<KeyStatement> = Vec::new();
    while !wanted.is_empty() && found.len() < MAX_STATEMENTS {
        let rows: Vec<String> = key_statements::table
            .filter(key_statements::key_id.eq_any(&wanted))
            .select(key_statements::statement)
            .load(conn)?;
        let new: Vec<KeyStatement> = rows
            .iter()
            .filter_map(|t| serde_json::from_str::<KeyStatement>(t).ok())
            .filter(|s| !found.iter().any(|f| f.key_id == s.key_id))
            .collect();
        wanted = new.iter().map(|s| s.retiring.clone()).collect();
        found.extend(new);
    }
    found.truncate(MAX_STATEMENTS);
    found.sort_by_key(|s| s.valid_from_ms);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    const NODE: &str = "prov-53.lapor.test";

    fn db(dir: &std::path::Path) -> Db {
        let url = crate::config::DatabaseUrl::Sqlite(dir.join("t.db"));
        let db = Db::open(&url, 1).unwrap();
        db.with_writer(crate::db::migrations::run_pending)
            .unwrap()
            .unwrap();
        db
    }

    fn pin(db: &Db, key: &NodeKey, from: i64) {
        let row = KeyRow {
            key_id: key.id().to_string(),
            origin: NODE.into(),
            public_key: public_key_text(&key.verifying_key()),
            valid_from_ms: from,
            valid_until_ms: None,
        };
        db.write(move |c| {
            crate::event_log::keys::register(c, &row).map_err(crate::db::DbError::Query)
        })
        .unwrap();
    }

    fn judge(db: &Db, s: &KeyStatement) -> Result<Accepted, Refusal> {
        accept_all(db, vec![s.clone()], 5).unwrap().remove(0).1
    }

    fn held_keys(db: &Db) -> Vec<KeyRow> {
        let mut c = db.read().unwrap();
        crate::event_log::keys::own_keys(&mut c, &crate::domain::NodeId::parse(NODE).unwrap())
            .unwrap()
    }

    #[test]
    fn a_statement_pins_the_new_key_and_closes_the_old_window_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let (a, b, c) = (
            NodeKey::generate(),
            NodeKey::generate(),
            NodeKey::generate(),
        );
        pin(&db, &a, 0);
        let ab = statement_for(NODE, &a, &b, 1_000).unwrap();
        let bc = statement_for(NODE, &b, &c, 2_000).unwrap();
        // A chain of rotations applies in order, whatever order it arrives in.
        let judged = accept_all(&db, vec![bc.clone(), ab.clone()], 5).unwrap();
        assert!(
            judged.iter().all(|(_, r)| r == &Ok(Accepted::Pinned)),
            "{judged:?}"
        );
        let keys = held_keys(&db);
        let windows: Vec<_> = keys
            .iter()
            .map(|k| (k.key_id.clone(), k.valid_from_ms, k.valid_until_ms))
            .collect();
        assert_eq!(
            windows,
            vec![
                (a.id().to_string(), 0, Some(1_000)),
                (b.id().to_string(), 1_000, Some(2_000)),
                (c.id().to_string(), 2_000, None)
            ]
        );
        assert_eq!(judge(&db, &ab), Ok(Accepted::Known));
        let mut conn = db.read().unwrap();
        assert_eq!(held(&mut conn).unwrap(), vec![ab, bc]);
    }

    #[test]
    fn refused_statements_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let (a, b, stranger) = (
            NodeKey::generate(),
            NodeKey::generate(),
            NodeKey::generate(),
        );
        pin(&db, &a, 0);
        let before = held_keys(&db);
        let good = statement_for(NODE, &a, &b, 1_000).unwrap();

        // Not signed by the retiring key.
        let mut s = good.clone();
        s.retiring_sig = statement_for(NODE, &stranger, &b, 1_000)
            .unwrap()
            .retiring_sig;
        assert_eq!(judge(&db, &s), Err(Refusal::BadSignature("retiring")));
        // Not signed by the new key.
        let mut s = good.clone();
        s.new_sig = good.retiring_sig.clone();
        assert_eq!(judge(&db, &s), Err(Refusal::BadSignature("new")));
        // A changed field breaks the signatures.
        let mut s = good.clone();
        s.valid_from_ms = 500;
        assert_eq!(judge(&db, &s), Err(Refusal::BadSignature("retiring")));
        // A retiring key not held here.
        let s = statement_for(NODE, &stranger, &b, 1_000).unwrap();
        assert_eq!(judge(&db, &s).unwrap_err().code(), "unknown_retiring_key");
        // A key id that is not its material's.
        let mut s = good.clone();
        s.key_id = stranger.id().to_string();
        assert_eq!(judge(&db, &s).unwrap_err().code(), "malformed");
        // Starting before the retiring key.
        let s = statement_for(NODE, &a, &b, 0).unwrap();
        assert_eq!(judge(&db, &s), Err(Refusal::NotCurrent(a.id().to_string())));
        assert_eq!(held_keys(&db), before);
        let mut conn = db.read().unwrap();
        assert!(held(&mut conn).unwrap().is_empty());
        drop(conn);

        // Once a rotated away from it, `a` is no longer current: a second handover is refused.
        assert_eq!(judge(&db, &good), Ok(Accepted::Pinned));
        let fork = statement_for(NODE, &a, &stranger, 3_000).unwrap();
        assert_eq!(
            judge(&db, &fork),
            Err(Refusal::NotCurrent(a.id().to_string()))
        );
        assert_eq!(held_keys(&db).len(), 2);
    }

    #[test]
    fn a_node_with_no_key_held_is_not_judged() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let (a, b) = (NodeKey::generate(), NodeKey::generate());
        let s = statement_for(NODE, &a, &b, 1_000).unwrap();
        assert_eq!(judge(&db, &s), Ok(Accepted::NotApplicable));
        assert!(held_keys(&db).is_empty());
    }
}
