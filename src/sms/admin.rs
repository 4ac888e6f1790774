//! What administrators do with the SMS channel, for the CLI (`lapor-node sms …`) and the admin
//! API (`/api/v1/admin/sms/…`): block and unblock numbers, see the outbox by state and its dead
//! letters, send dead letters again. Dead letters are shown without their number.

use clap::Subcommand;
use serde::Serialize;

use super::model::{BlockedRow, state};
use super::number::{NotANumber, normalise};
use super::store;
use crate::db::{Db, DbError};
use crate::domain::Timestamp;

/// Why an admin action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Not a phone number.
    #[error(transparent)]
    NotANumber(#[from] NotANumber),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A dead letter as admins see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Outbox id (`sms dead retry ID`).
    pub id: i64,
    /// `filed`, `verified`, …, or `answer`.
    pub kind: String,
    /// The report it is about, if any.
    pub ticket_id: Option<String>,
    /// Failed attempts.
    pub attempts: i32,
    /// The last failure (the gateway's answer).
    pub last_error: Option<String>,
    /// Queued at (ms since the epoch).
    pub created_at_ms: i64,
}

/// The outbox in numbers, and its dead letters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxView {
    /// Messages by state (`pending`, `sent`, `dead`, `dropped`).
    pub counts: std::collections::BTreeMap<String, i64>,
    /// The newest dead letters (up to 100).
    pub dead: Vec<DeadLetter>,
}

/// Blocks `raw` (normalised first); returns the number as stored.
pub fn block(
    db: &Db,
    raw: &str,
    note: Option<String>,
    by: &str,
    now: Timestamp,
) -> Result<String, AdminError> {
    let phone = normalise(raw)?;
    let row = BlockedRow {
        phone: phone.clone(),
        note,
        blocked_by: by.to_owned(),
        blocked_at_ms: now.millis(),
    };
    db.write(move |c| store::block(c, &row).map_err(DbError::from))?;
    tracing::info!(by, "sms number blocked");
    Ok(phone)
}

/// Unblocks `raw`; whether it was blocked.
pub fn unblock(db: &Db, raw: &str) -> Result<bool, AdminError> {
    let phone = normalise(raw)?;
    Ok(db.write(move |c| store::unblock(c, &phone).map_err(DbError::from))?)
}

/// Blocked numbers.
pub fn blocked(db: &Db) -> Result<Vec<BlockedRow>, DbError> {
    let mut c = db.read()?;
    Ok(store::blocked(&mut c)?)
}

/// The outbox by state and its newest dead letters.
pub fn outbox(db: &Db) -> Result<OutboxView, DbError> {
    let mut c = db.read()?;
    let counts = store::counts(&mut c)?.into_iter().collect();
    let dead = store::in_state(&mut c, state::DEAD, 100)?
        .into_iter()
        .map(|r| DeadLetter {
            id: r.id,
            kind: r.kind,
            ticket_id: r.ticket_id,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at_ms: r.created_at_ms,
        })
        .collect();
    Ok(OutboxView { counts, dead })
}

/// Dead letters (`id`, or all) queued again, due now; how many.
pub fn retry(db: &Db, id: Option<i64>, now: Timestamp) -> Result<usize, DbError> {
    db.write(move |c| store::retry_dead(c, id, now.millis()).map_err(DbError::from))
}

/// `lapor-node sms …`.
#[derive(Debug, Subcommand)]
pub enum SmsCommand {
    /// Messages in the outbox by state, and the dead letters.
    Outbox,
    /// Send dead letters again: one by id, or all.
    Retry {
        /// The outbox id (default: every dead letter).
        id: Option<i64>,
    },
    /// Block a number: its messages are dropped unanswered.
    Block {
        /// The number (08…, 628… or +628…).
        number: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
    /// Unblock a number.
    Unblock {
        /// The number.
        number: String,
    },
    /// Blocked numbers.
    Blocked,
}

/// Runs an `sms` command; returns the lines to print.
pub fn run(db: &Db, command: SmsCommand) -> anyhow::Result<Vec<String>> {
    let now = Timestamp::now();
    Ok(match command {
        SmsCommand::Outbox => {
            let v = outbox(db)?;
            let mut lines: Vec<String> =
                v.counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
            if v.counts.is_empty() {
                lines.push("the SMS outbox is empty".into());
            }
            for d in v.dead {
                lines.push(format!(
                    "dead #{}: {} ({} attempts) last error: {} — `lapor-node sms retry {}`",
                    d.id,
                    d.kind,
                    d.attempts,
                    d.last_error.unwrap_or_default(),
                    d.id
                ));
            }
            lines
        }
        SmsCommand::Retry { id } => vec![format!(
            "{} dead letter(s) queued again",
            retry(db, id, now)?
        )],
        SmsCommand::Block { number, note } => {
            vec![format!("blocked {}", block(db, &number, note, "cli", now)?)]
        }
        SmsCommand::Unblock { number } => {
            let phone = normalise(&number)?;
            if unblock(db, &number)? {
                vec![format!("unblocked {phone}")]
            } else {
                vec![format!("{phone} was not blocked")]
            }
        }
        SmsCommand::Blocked => {
            let list = blocked(db)?;
            if list.is_empty() {
                vec!["no number is blocked".into()]
            } else {
                list.into_iter()
                    .map(|b| {
                        format!(
                            "{} (by {}: {})",
                            b.phone,
                            b.blocked_by,
                            b.note.unwrap_or_default()
                        )
                    })
                    .collect()
            }
        }
    })
}
