//! Rosters in the database: the highest version held, and accepting a newer one — checked,
//! then stored with its consequences (member agencies upserted, member keys pinned with their
//! windows, retired keys cut at their retirement) in one transaction, or not at all.

use diesel::prelude::*;
use ed25519_dalek::VerifyingKey;

use super::roster::{Roster, RosterRefusal, SignedRoster};
use crate::db::schema::{agencies, node_keys, rosters};
use crate::db::{Db, DbConn, DbError};
use crate::domain::{NodeId, Timestamp};
use crate::event_log::keys::KeyRow;

/// Why a roster was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The roster was refused; nothing of it applied.
    #[error(transparent)]
    Refused(#[from] RosterRefusal),
    /// This node's database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for AcceptError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// A roster accepted, with the one it replaced.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The new roster.
    pub roster: Roster,
    /// The roster held before, if any.
    pub previous: Option<Roster>,
}

/// The highest roster held, as received (`None`: none yet).
pub fn held(conn: &mut DbConn) -> Result<Option<SignedRoster>, DbError> {
    let body: Option<String> = rosters::table
        .order(rosters::version.desc())
        .select(rosters::body)
        .first(conn)
        .optional()?;
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
}

/// The highest version held (`0`: none).
pub fn held_version(conn: &mut DbConn) -> Result<i64, DbError> {
    let v: Option<i64> = rosters::table
        .select(diesel::dsl::max(rosters::version))
        .first(conn)?;
    Ok(v.unwrap_or(0))
}

/// What this node needs to judge a roster: the pinned roster key, its own id and the
/// fingerprint of its own certificate.
#[derive(Debug, Clone)]
pub struct Judge {
    /// `federation.roster_key`.
    pub key: Option<VerifyingKey>,
    /// This node.
    pub me: NodeId,
    /// SHA-256 of this node's certificate.
    pub own_certificate: Option<String>,
}

/// Checks `signed` (signature by the pinned key, consistency, a node entry matching this
/// node's certificate, newer than held, keys not conflicting with those pinned) and stores it
/// with its consequences, in one transaction.
pub fn accept(
    db: &Db,
    judge: &Judge,
    signed: &SignedRoster,
    from: &str,
    now: Timestamp,
) -> Result<Accepted, AcceptError> {
    let key = judge.key.as_ref().ok_or(RosterRefusal::NoRosterKey)?;
    let roster = signed.open(key)?;
    if let (Some(me), Some(own)) = (
        roster.nodes.iter().find(|n| n.id == judge.me),
        &judge.own_certificate,
    ) {
        if me.certificate.as_ref().is_some_and(|fp| fp != own) {
            return Err(RosterRefusal::CertificateMismatch {
                node: judge.me.to_string(),
                reason: "the roster pins another certificate than this node's own".into(),
            }
            .into());
        }
    }
    let body =
        serde_json::to_string(signed).map_err(|e| RosterRefusal::Malformed(e.to_string()))?;
    let (r, me, from) = (roster.clone(), judge.me.clone(), from.to_owned());
    let previous = db.write(move |c| -> Result<Option<Roster>, AcceptError> {
        let previous = held(c)?;
        let held_v = held_version(c)?;
        if r.version <= held_v {
            return Err(RosterRefusal::NotNewer {
                held: held_v,
                offered: r.version,
            }
            .into());
        }
        pin_keys(c, &r, &me)?;
        upsert_agencies(c, &r)?;
        let previous_roster = previous
            .as_ref()
            .and_then(|p| serde_json::from_value::<Roster>(p.roster.clone()).ok());
        if let Some(p) = &previous_roster {
            drop_unlisted(c, p, &r)?;
        }
        diesel::insert_into(rosters::table)
            .values((
                rosters::version.eq(r.version),
                rosters::body.eq(&body),
                rosters::received_from.eq(&from),
                rosters::received_at_ms.eq(now.millis()),
            ))
            .execute(c)?;
        Ok(previous.and_then(|p| serde_json::from_value(p.roster).ok()))
    })?;
    Ok(Accepted { roster, previous })
}

/// Pins every other member's keys with their windows: a new key is inserted; a held one must
/// have the same owner and material, and its window only ever shrinks (a retirement or an end
/// the roster states).
fn pin_keys(c: &mut DbConn, r: &Roster, me: &NodeId) -> Result<(), AcceptError> {
    for n in r.nodes.iter().filter(|n| &n.id != me) {
        for k in &n.keys {
            let held: Option<KeyRow> = node_keys::table
                .find(&k.id)
                .select(KeyRow::as_select())
                .first(c)
                .optional()?;
            let end = k.end_ms();
            match held {
                Some(h) if h.origin != n.id.as_str() => {
                    return Err(RosterRefusal::KeyConflict {
                        key: k.id.clone(),
                        reason: format!("pinned here for {}, listed for {}", h.origin, n.id),
                    }
                    .into());
                }
                Some(h) if h.public_key != k.public_key => {
                    return Err(RosterRefusal::KeyConflict {
                        key: k.id.clone(),
                        reason: "other key material than the one pinned here".into(),
                    }
                    .into());
                }
                Some(h) => {
                    let until = match (h.valid_until_ms, end) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    if until != h.valid_until_ms {
                        diesel::update(node_keys::table.find(&k.id))
                            .set(node_keys::valid_until_ms.eq(until))
                            .execute(c)?;
                    }
                }
                None => {
                    diesel::insert_into(node_keys::table)
                        .values(&KeyRow {
                            key_id: k.id.clone(),
                            origin: n.id.to_string(),
                            public_key: k.public_key.clone(),
                            valid_from_ms: k.valid_from_ms,
                            valid_until_ms: end,
                        })
                        .execute(c)?;
                }
            }
        }
    }
    Ok(())
}

/// The agencies `previous` listed and `next` does not: they take no new dispatches from now on
/// (their tickets stay where they are); listed again later, they take them again.
fn drop_unlisted(c: &mut DbConn, previous: &Roster, next: &Roster) -> diesel::QueryResult<()> {
    let listed: std::collections::HashSet<&str> = next
        .nodes
        .iter()
        .flat_map(|n| n.agencies.iter().map(|a| a.code.as_str()))
        .collect();
    for code in previous
        .nodes
        .iter()
        .flat_map(|n| n.agencies.iter().map(|a| a.code.as_str()))
        .filter(|code| !listed.contains(code))
    {
        let n = diesel::update(agencies::table.find(code))
            .filter(agencies::dropped_by_roster.is_null())
            .set(agencies::dropped_by_roster.eq(next.version))
            .execute(c)?;
        if n > 0 {
            tracing::info!(
                agency = code,
                version = next.version,
                "agency dropped by the roster"
            );
        }
    }
    Ok(())
}

/// After the reference list is written at start-up: the held roster's agencies again, so that
/// the owner the roster states wins over the reference file's (the roster is the later word).
/// Nothing when no roster is held.
///
/// # Errors
///
/// The database refused a row.
pub fn reapply_agencies(c: &mut DbConn) -> Result<(), DbError> {
    let Some(r) = held(c)?.and_then(|s| serde_json::from_value::<Roster>(s.roster).ok()) else {
        return Ok(());
    };
    Ok(upsert_agencies(c, &r)?)
}

/// Every member's agencies, owned by it and dispatchable (an operator's `disabled` stays; a
/// roster's earlier drop is undone).
fn upsert_agencies(c: &mut DbConn, r: &Roster) -> diesel::QueryResult<()> {
    for n in &r.nodes {
        for a in &n.agencies {
            let row = crate::tickets::model::AgencyRow {
                code: a.code.to_string(),
                name: a.name.clone(),
                level: a.level.as_str().to_owned(),
                region: a.region.to_string(),
                owner_node: n.id.to_string(),
            };
            let done = diesel::update(agencies::table.find(&row.code))
                .set((&row, agencies::dropped_by_roster.eq(None::<i64>)))
                .execute(c)?;
            if done == 0 {
                diesel::insert_into(agencies::table)
                    .values(&row)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}
