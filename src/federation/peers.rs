//! Peer state in the database: persisted backoff, last contact, catch-up cursors, pinned keys,
//! and the operator view.

use diesel::prelude::*;
use rand::Rng;

use super::FedError;
use super::protocol::KeyInfo;
use crate::config::{FederationSettings, NodeRole, PeerSettings};
use crate::db::schema::{node_keys, peers, pull_cursors};
use crate::db::{Db, DbConn};
use crate::domain::{NodeId, Timestamp};
use crate::event_log::keys::KeyRow;

fn ensure(conn: &mut DbConn, peer: &str) -> QueryResult<()> {
    let n: i64 = peers::table
        .filter(peers::node_id.eq(peer))
        .count()
        .get_result(conn)?;
    if n == 0 {
        diesel::insert_into(peers::table)
            .values((
                peers::node_id.eq(peer),
                peers::failures.eq(0),
                peers::next_attempt_ms.eq(0_i64),
                peers::delivered.eq(0_i64),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// What a delivery round measured of its link.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Bytes on the wire (bodies sent and answers received).
    pub bytes: u64,
    /// Seconds the round took.
    pub secs: f64,
    /// Events sent.
    pub events: u64,
}

/// A round shorter or smaller than this says more about the round trip than the rate.
const RATE_MIN_SECS: f64 = 1.0;
const RATE_MIN_BYTES: u64 = 16 * 1024;

/// An exponentially weighted mean: `old` moved 30 % towards `new`.
fn ewma(old: Option<i64>, new: f64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "rates and sizes far below 2^52, rounded on purpose"
    )]
    let mixed = old.map_or(new, |o| 0.7 * o as f64 + 0.3 * new).round() as i64;
    mixed.max(0)
}

/// Records a successful exchange: backoff cleared; `delivered` events counted (also in the
/// current minute); the link's rate and bytes per event updated from `sample`.
pub fn success(
    db: &Db,
    peer: &NodeId,
    now: Timestamp,
    delivered: usize,
    sample: Option<Sample>,
) -> Result<(), FedError> {
    let p = peer.to_string();
    let delivered = i64::try_from(delivered).unwrap_or(i64::MAX);
    db.write(move |c| {
        ensure(c, &p)?;
        type Row = (Option<i64>, Option<i64>, i64, Option<i64>);
        let (rate, per_event, recent, since): Row = peers::table
            .find(&p)
            .select((
                peers::rate_bytes_per_sec,
                peers::bytes_per_event,
                peers::recent_delivered,
                peers::recent_since_ms,
            ))
            .first(c)?;
        #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
        let (rate, per_event) = match sample {
            Some(s) if s.secs >= RATE_MIN_SECS && s.bytes >= RATE_MIN_BYTES => (
                Some(ewma(rate, s.bytes as f64 / s.secs)),
                Some(ewma(per_event, s.bytes as f64 / s.events.max(1) as f64)),
            ),
            _ => (rate, per_event),
        };
        let (recent, since) = match since {
            Some(t) if now.millis() - t < 60_000 => (recent.saturating_add(delivered), t),
            _ => (delivered, now.millis()),
        };
        diesel::update(peers::table.find(&p))
            .set((
                peers::failures.eq(0),
                peers::next_attempt_ms.eq(0_i64),
                peers::last_success_ms.eq(Some(now.millis())),
                peers::last_contact_ms.eq(Some(now.millis())),
                peers::last_error.eq(None::<String>),
                peers::delivered.eq(peers::delivered + delivered),
                peers::rate_bytes_per_sec.eq(rate),
                peers::bytes_per_event.eq(per_event),
                peers::recent_delivered.eq(recent),
                peers::recent_since_ms.eq(Some(since)),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// The delay before attempt number `failures + 1`: `base · 2^(failures-1)` capped, with
/// jitter (between half and all of it).
#[must_use]
pub fn backoff_ms(failures: i32, base: u64, cap: u64) -> u64 {
    let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = base.saturating_mul(1_u64 << exp).min(cap);
    let half = full / 2;
    half + rand::thread_rng().gen_range(0..=full - half)
}

/// Records a failed exchange: the next attempt waits (persisted).
pub fn failure(
    db: &Db,
    peer: &NodeId,
    now: Timestamp,
    error: &str,
    s: &FederationSettings,
) -> Result<(), FedError> {
    let p = peer.to_string();
    let error: String = error.chars().take(500).collect();
    let (base, cap) = (s.backoff_base_ms, s.backoff_cap_ms);
    db.write(move |c| {
        ensure(c, &p)?;
        let failures: i32 = peers::table.find(&p).select(peers::failures).first(c)?;
        let failures = failures.saturating_add(1);
        let wait = i64::try_from(backoff_ms(failures, base, cap)).unwrap_or(i64::MAX);
        diesel::update(peers::table.find(&p))
            .set((
                peers::failures.eq(failures),
                peers::next_attempt_ms.eq(now.millis().saturating_add(wait)),
                peers::last_error.eq(Some(error)),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// Records an error without changing the backoff (e.g. a refused key change).
pub fn record_error(db: &Db, peer: &NodeId, error: &str) -> Result<(), FedError> {
    let (p, e) = (peer.to_string(), error.to_owned());
    db.write(move |c| {
        ensure(c, &p)?;
        diesel::update(peers::table.find(&p))
            .set(peers::last_error.eq(Some(e)))
            .execute(c)?;
        Ok(())
    })
}

/// A backing-off peer answers again (a TCP probe): the next attempt is due now. The failure
/// count stays, so an attempt that fails all the same backs off further.
pub fn retry_now(db: &Db, peer: &NodeId) -> Result<(), FedError> {
    let p = peer.to_string();
    db.write(move |c| {
        diesel::update(peers::table.find(&p))
            .set(peers::next_attempt_ms.eq(0_i64))
            .execute(c)?;
        Ok(())
    })
}

/// The peer contacted us: last contact now, backoff reset, and the error of a failed exchange
/// cleared (a refused key change stays until it is pinned). Returns whether a backoff was
/// cleared (the worker should wake).
pub fn contact(db: &Db, peer: &NodeId, now: Timestamp) -> Result<bool, FedError> {
    let p = peer.to_string();
    db.write(move |c| {
        ensure(c, &p)?;
        let failures: i32 = peers::table.find(&p).select(peers::failures).first(c)?;
        diesel::update(peers::table.find(&p))
            .set((
                peers::last_contact_ms.eq(Some(now.millis())),
                peers::failures.eq(0),
                peers::next_attempt_ms.eq(0_i64),
            ))
            .execute(c)?;
        if failures > 0 {
            diesel::update(peers::table.find(&p))
                .set(peers::last_error.eq(None::<String>))
                .execute(c)?;
        }
        Ok(failures > 0)
    })
}

/// Milliseconds until the next attempt to `peer` is due (0 = now).
pub fn wait_ms(db: &Db, peer: &NodeId, now: Timestamp) -> Result<i64, FedError> {
    let mut conn = db.read()?;
    let next: Option<i64> = peers::table
        .find(peer.as_str())
        .select(peers::next_attempt_ms)
        .first(&mut conn)
        .optional()?;
    Ok(next.map_or(0, |n| (n - now.millis()).max(0)))
}

/// The catch-up cursor of `origin`.
pub fn cursor(db: &Db, origin: &str) -> Result<i64, FedError> {
    let mut conn = db.read()?;
    Ok(pull_cursors::table
        .find(origin)
        .select(pull_cursors::after_seq)
        .first(&mut conn)
        .optional()?
        .unwrap_or(0))
}

/// Moves the catch-up cursor of `origin` forward to `after`.
pub fn set_cursor(db: &Db, origin: &str, after: i64) -> Result<(), FedError> {
    let o = origin.to_owned();
    db.write(move |c| {
        let cur: Option<i64> = pull_cursors::table
            .find(&o)
            .select(pull_cursors::after_seq)
            .first(c)
            .optional()?;
        match cur {
            Some(n) if n >= after => {}
            Some(_) => {
                diesel::update(pull_cursors::table.find(&o))
                    .set(pull_cursors::after_seq.eq(after))
                    .execute(c)?;
            }
            None => {
                diesel::insert_into(pull_cursors::table)
                    .values((
                        pull_cursors::origin.eq(&o),
                        pull_cursors::after_seq.eq(after),
                    ))
                    .execute(c)?;
            }
        }
        Ok(())
    })
}

/// Pins `peer`'s keys: all of them when none is pinned yet; afterwards a known id must keep
/// its key material and no new key is taken without the operator.
pub fn pin_keys(db: &Db, peer: &NodeId, keys: &[KeyInfo]) -> Result<usize, FedError> {
    let (p, keys) = (peer.clone(), keys.to_vec());
    db.write(move |c| {
        let pinned: Vec<KeyRow> = node_keys::table
            .filter(node_keys::origin.eq(p.as_str()))
            .select(KeyRow::as_select())
            .load(c)?;
        let mut added = 0;
        for k in &keys {
            if crate::crypto::keys::parse_public_key(&k.public_key).is_err() {
                return Err(FedError::KeyChange {
                    peer: p.to_string(),
                    message: format!("key {} is malformed", k.id),
                });
            }
            match pinned.iter().find(|r| r.key_id == k.id) {
                Some(r) if r.public_key == k.public_key => {}
                Some(_) => {
                    return Err(FedError::KeyChange {
                        peer: p.to_string(),
                        message: format!("key {} now has different key material; refused", k.id),
                    });
                }
                None if pinned.is_empty() => {
                    let owner: Option<String> = node_keys::table
                        .find(&k.id)
                        .select(node_keys::origin)
                        .first(c)
                        .optional()?;
                    if owner.is_some() {
                        return Err(FedError::KeyChange {
                            peer: p.to_string(),
                            message: format!("key {} is already pinned for another node", k.id),
                        });
                    }
                    insert_key(c, &p, k)?;
                    added += 1;
                }
                None => {
                    return Err(FedError::KeyChange {
                        peer: p.to_string(),
                        message: format!(
                            "offers new key {id} that no pinned key vouches for; refused until an operator pins it: \
                             check it with {p}'s operator (`lapor-node keys list` there), then \
                             `lapor-node peers pin --peer {p} --key {id}` and `lapor-node quarantine retry --from {p}`",
                            id = k.id
                        ),
                    });
                }
            }
        }
        Ok(added)
    })
}

/// Pins `key` as `peer`'s.
fn insert_key(c: &mut crate::db::DbConn, peer: &NodeId, key: &KeyInfo) -> QueryResult<usize> {
    diesel::insert_into(node_keys::table)
        .values(&KeyRow {
            key_id: key.id.clone(),
            origin: peer.to_string(),
            public_key: key.public_key.clone(),
            valid_from_ms: key.valid_from_ms,
            valid_until_ms: key.valid_until_ms,
        })
        .execute(c)
}

/// An operator's decision: pins `key` for `peer` (a rotation the automatic pinning refused,
/// checked out of band). The key id must be the one its material gives, and not be pinned
/// for another node. Returns `false` when it was already pinned. Clears the peer's last
/// error.
pub fn pin_by_operator(db: &Db, peer: &NodeId, key: &KeyInfo) -> Result<bool, FedError> {
    let refuse = |message: String| FedError::KeyChange {
        peer: peer.to_string(),
        message,
    };
    let public = crate::crypto::keys::parse_public_key(&key.public_key)
        .map_err(|e| refuse(format!("key {} is malformed: {e}", key.id)))?;
    let derived = crate::crypto::keys::KeyId::of(&public).to_string();
    if derived != key.id {
        return Err(refuse(format!(
            "key id {} does not match its key material (which gives {derived})",
            key.id
        )));
    }
    let (p, k) = (peer.clone(), key.clone());
    db.write(move |c| {
        let existing: Option<KeyRow> = node_keys::table
            .find(&k.id)
            .select(KeyRow::as_select())
            .first(c)
            .optional()?;
        match existing {
            Some(r) if r.origin != p.as_str() => Err(FedError::KeyChange {
                peer: p.to_string(),
                message: format!("key {} is already pinned for {}", k.id, r.origin),
            }),
            Some(_) => Ok(false),
            None => {
                insert_key(c, &p, &k)?;
                diesel::update(peers::table.find(p.as_str()))
                    .set(peers::last_error.eq(None::<String>))
                    .execute(c)?;
                Ok(true)
            }
        }
    })
}

/// One peer as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PeerStatus {
    /// Node id.
    pub node: String,
    /// Province node or hub.
    pub role: String,
    /// The last exchange succeeded and no error is pending.
    pub reachable: bool,
    /// Last time it contacted us or answered us (ms).
    pub last_contact_ms: Option<i64>,
    /// Last successful delivery round (ms).
    pub last_success_ms: Option<i64>,
    /// Consecutive failures.
    pub failures: i32,
    /// Next delivery attempt (ms).
    pub next_attempt_ms: i64,
    /// Last error.
    pub last_error: Option<String>,
    /// Events waiting for it.
    pub outbox_depth: i64,
    /// Age of the oldest waiting event (ms).
    pub oldest_undelivered_age_ms: Option<i64>,
    /// Events it refused (kept in the outbox, marked).
    pub refused: i64,
    /// Events it sent that this node quarantined.
    pub quarantined: i64,
    /// Events delivered to it in total.
    pub delivered: i64,
    /// Events delivered to it in the last minute (the current one-minute window).
    pub delivered_last_minute: i64,
    /// The link's measured rate towards it (bytes per second, a moving mean of delivery
    /// rounds long enough to tell).
    pub rate_bytes_per_sec: Option<i64>,
    /// The estimated time to deliver what waits for it at that rate (seconds).
    pub eta_secs: Option<i64>,
    /// Why it refused our events, and what fixes it (most frequent first).
    pub refusals: Vec<Reason>,
    /// Why this node quarantined its events, and what fixes it (most frequent first).
    pub quarantine_reasons: Vec<Reason>,
}

/// One reason for refused or quarantined events, with the operator's fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// Reason code, e.g. `unknown_key`.
    pub code: String,
    /// Events.
    pub events: i64,
    /// The detail of one of them.
    pub detail: String,
    /// What the operator does about it.
    pub fix: String,
}

/// Whether `code` refuses an event for what it says (a forged id, a bad signature, an illegal
/// transition…) rather than for something an operator can fix (a key not pinned yet, a
/// database that could not store it).
fn fixable(code: &str) -> bool {
    crate::federation::quarantine::RESOLVABLE.contains(&code)
}

/// The fix for events `peer` refused with `code` (we are `me`).
fn fix_refused(code: &str, peer: &str, me: &str) -> String {
    match code {
        "unknown_key" | "key_not_valid_at_event_time" => format!(
            "{peer} does not hold our signing key: its operator checks it against `lapor-node keys list` here and runs \
             `lapor-node peers pin --peer {me} --key <id>` (or `quarantine retry --from {me}`); then here \
             `lapor-node peers resend --peer {peer}`"
        ),
        "unstorable" => format!(
            "{peer}'s database could not store them: its operator reads its log; then here `lapor-node peers resend --peer {peer}`"
        ),
        _ => format!(
            "refused for their content, which will not change: not sent again; report to {peer}'s and the hub's operators \
             (`lapor-node audit verify` here)"
        ),
    }
}

/// The fix for events of `peer` quarantined here with `code`.
fn fix_quarantined(code: &str, peer: &str) -> String {
    match code {
        "unknown_key" | "key_not_valid_at_event_time" => format!(
            "signed with a key not pinned here: check it with {peer}'s operator (`lapor-node keys list` there), then \
             `lapor-node peers pin --peer {peer} --key <id>` and `lapor-node quarantine retry --from {peer}`"
        ),
        "unstorable" => format!(
            "this node's database refused them: fix the cause in this node's log, then `lapor-node quarantine retry --from {peer}`"
        ),
        _ if fixable(code) => format!("`lapor-node quarantine retry --from {peer}`"),
        _ => format!(
            "kept as evidence (`lapor-node quarantine list`); report to {peer}'s operator; once reviewed \
             `lapor-node quarantine clear --from {peer} --reason {code}`"
        ),
    }
}

/// The operator view of every configured peer, as seen by node `me`.
pub fn status(
    db: &Db,
    me: &NodeId,
    list: &[PeerSettings],
    now: Timestamp,
) -> Result<Vec<PeerStatus>, FedError> {
    let mut conn = db.read()?;
    let quarantined = crate::federation::quarantine::count_by_sender(&mut conn)?;
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        type Row = (
            (i32, i64, Option<i64>, Option<i64>, Option<String>, i64),
            (Option<i64>, Option<i64>, i64, Option<i64>),
        );
        let row: Option<Row> = peers::table
            .find(p.id.as_str())
            .select((
                (
                    peers::failures,
                    peers::next_attempt_ms,
                    peers::last_contact_ms,
                    peers::last_success_ms,
                    peers::last_error,
                    peers::delivered,
                ),
                (
                    peers::rate_bytes_per_sec,
                    peers::bytes_per_event,
                    peers::recent_delivered,
                    peers::recent_since_ms,
                ),
            ))
            .first(&mut conn)
            .optional()?;
        let (
            (failures, next_attempt_ms, last_contact_ms, last_success_ms, last_error, delivered),
            (rate, per_event, recent, since),
        ) = row.unwrap_or(((0, 0, None, None, None, 0), (None, None, 0, None)));
        let delivered_last_minute = if since.is_some_and(|t| now.millis() - t < 60_000) {
            recent
        } else {
            0
        };
        let q = crate::federation::outbox::stats(&mut conn, p.id.as_str())?;
        let refusals = crate::federation::outbox::refusals(&mut conn, p.id.as_str())?;
        let mut by_code: Vec<Reason> = Vec::new();
        for (stored, events) in refusals {
            let code = crate::federation::outbox::reason_code(&stored).to_owned();
            match by_code.iter_mut().find(|r| r.code == code) {
                Some(r) => r.events += events,
                None => by_code.push(Reason {
                    fix: fix_refused(&code, p.id.as_str(), me.as_str()),
                    detail: stored
                        .split_once(':')
                        .map_or("", |(_, d)| d)
                        .trim()
                        .chars()
                        .take(300)
                        .collect(),
                    code,
                    events,
                }),
            }
        }
        let quarantine_reasons =
            crate::federation::quarantine::reasons_of(&mut conn, p.id.as_str())?
                .into_iter()
                .map(|(code, events)| Reason {
                    fix: fix_quarantined(&code, p.id.as_str()),
                    detail: String::new(),
                    code,
                    events,
                })
                .collect();
        out.push(PeerStatus {
            node: p.id.to_string(),
            role: match p.role {
                NodeRole::Hub => "hub".into(),
                NodeRole::Province => "province".into(),
            },
            reachable: failures == 0 && last_contact_ms.is_some(),
            last_contact_ms,
            last_success_ms,
            failures,
            next_attempt_ms,
            last_error,
            outbox_depth: q.depth,
            oldest_undelivered_age_ms: q.oldest_ms.map(|o| (now.millis() - o).max(0)),
            refused: q.refused,
            quarantined: quarantined
                .iter()
                .find(|(n, _)| n == p.id.as_str())
                .map_or(0, |(_, c)| *c),
            delivered,
            delivered_last_minute,
            rate_bytes_per_sec: rate,
            eta_secs: match (rate, per_event) {
                (Some(r), Some(b)) if r > 0 => Some(q.depth.saturating_mul(b) / r),
                _ => None,
            },
            refusals: by_code,
            quarantine_reasons,
        });
    }
    Ok(out)
}
