//! The SMS sender: sends due messages of the outbox through the gateway.
//!
//! ```text
//!  commit with an SMS row ─► writer notice ─┐
//!  every second ────────────────────────────┴► drain ─► due rows, oldest first
//!     number: the report's contact (notice) or the row's (answer); none ─► dropped
//!     daily cap reached ─► waits for the next local day (not a failure)
//!     parts (gsm::split) sent one by one, resumed after the last accepted ─► sent
//!     failure ─► retry after base·2^(n−1) (capped); after max_attempts ─► dead letter
//! ```
//!
//! An unreachable gateway ends the pass (the rest wait for the next). Nothing is deleted: sent
//! rows keep their key for the cap and lose their number; dead letters wait for an admin
//! (`lapor-node sms dead retry`).

use std::time::Duration;

use super::Sms;
use super::gateway::{Gateway, GatewayError};
use super::model::OutRow;
use super::{gsm, store};
use crate::db::DbError;
use crate::domain::{Status, TicketId, TicketState, Timestamp};

/// The deadline of the step a report in `state` waits for, if any.
#[must_use]
pub fn due_of(state: &TicketState) -> Option<Timestamp> {
    match state.status {
        Status::Submitted | Status::Verified | Status::Postponed => Some(state.report.verify_due),
        Status::Dispatched | Status::InProgress | Status::Reopened => state.response_due,
        Status::Responded | Status::Resolved => state.auto_close_due,
        Status::Closed | Status::Archived | Status::NotOurAuthority => None,
    }
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Messages handed to the gateway.
    pub sent: usize,
    /// Failed attempts (to be retried).
    pub failed: usize,
    /// Messages dead-lettered.
    pub dead: usize,
    /// Messages dropped (no number any more).
    pub dropped: usize,
    /// Messages held back by the daily cap.
    pub capped: usize,
}

/// The sender of a node's SMS channel.
#[derive(Debug, Clone)]
pub struct Sender {
    sms: Sms,
    gateway: Gateway,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))?
}

impl Sender {
    /// The sender of `sms`.
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built.
    pub fn new(sms: &Sms) -> Result<Self, reqwest::Error> {
        Ok(Self {
            gateway: Gateway::new(&sms.settings)?,
            sms: sms.clone(),
        })
    }

    /// Runs until aborted: a pass on every commit that queued a message, and every second.
    pub async fn run(self) {
        let mut notices = self.sms.tickets.db().notices();
        loop {
            match self.drain(Timestamp::now()).await {
                Ok(s) if s != Sent::default() => {
                    tracing::info!(
                        sent = s.sent,
                        failed = s.failed,
                        dead = s.dead,
                        dropped = s.dropped,
                        capped = s.capped,
                        "sms pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "sms pass failed"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), notices.changed()).await;
        }
    }

    /// Sends every message due at `now` (passes of 100 until none is left or the gateway is
    /// unreachable).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn drain(&self, now: Timestamp) -> Result<Sent, DbError> {
        let mut total = Sent::default();
        loop {
            let db = self.sms.tickets.db().clone();
            let rows = blocking(move || {
                let mut c = db.read()?;
                store::due(&mut c, now.millis(), 100).map_err(DbError::from)
            })
            .await?;
            let n = rows.len();
            let mut unreachable = false;
            for row in rows {
                if !self.one(row, now, &mut total).await? {
                    unreachable = true;
                    break;
                }
            }
            if unreachable || n < 100 {
                return Ok(total);
            }
        }
    }

    /// Sends one row; `false` when the gateway was unreachable.
    async fn one(&self, row: OutRow, now: Timestamp, total: &mut Sent) -> Result<bool, DbError> {
        let (db, sms, id) = (self.sms.tickets.db().clone(), self.sms.clone(), row.id);
        let ticket = row.ticket_id.clone();
        let phone = row.phone.clone();
        let cap = i64::from(self.sms.settings.daily_cap_per_number);
        let (day_start, day_end) = self.local_day(now);
        // The number, and whether the cap lets it have one more today.
        let target = blocking(move || {
            let mut c = db.read()?;
            let phone = match (ticket, phone) {
                (Some(t), _) => {
                    let id =
                        TicketId::parse(&t).map_err(|e| DbError::Unavailable(e.to_string()))?;
                    crate::tickets::store::contact(&mut c, &id)?.and_then(|c| c.phone)
                }
                (None, p) => p,
            };
            let Some(phone) = phone else { return Ok(None) };
            let key = sms.key.of(&phone);
            let sent = store::sent_since(&mut c, &key, day_start)?;
            Ok(Some((phone, key, sent < cap)))
        })
        .await?;
        let db = self.sms.tickets.db().clone();
        let Some((phone, key, room)) = target else {
            blocking(move || {
                db.write(move |c| {
                    store::mark_dropped(c, id, "no_contact", now.millis()).map_err(DbError::from)
                })
            })
            .await?;
            total.dropped += 1;
            self.sms
                .metrics
                .inc("lapor_sms_outbound_total", &[("result", "dropped")], 1);
            return Ok(true);
        };
        if !room {
            blocking(move || {
                db.write(move |c| store::postpone(c, id, day_end).map_err(DbError::from))
            })
            .await?;
            total.capped += 1;
            self.sms
                .metrics
                .inc("lapor_sms_outbound_total", &[("result", "capped")], 1);
            return Ok(true);
        }
        let parts = gsm::split(&row.body);
        let count = u8::try_from(parts.len()).unwrap_or(u8::MAX);
        let reference = u8::try_from(row.id.rem_euclid(256)).unwrap_or(0);
        let start = usize::try_from(row.parts_sent).unwrap_or(0);
        let mut failure = None;
        let mut done = start;
        for (i, part) in parts.iter().enumerate().skip(start) {
            let seq = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let udh = (count > 1).then_some((reference, count, seq));
            match self.gateway.send(&phone, part, udh).await {
                Ok(()) => done = i + 1,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let db = self.sms.tickets.db().clone();
        let settings = self.sms.settings.clone();
        let attempts = row.attempts + 1;
        let parts_done = i32::try_from(done).unwrap_or(i32::MAX);
        let outcome = failure.clone();
        blocking(move || {
            db.write(move |c| {
                if parts_done != row.parts_sent {
                    store::set_parts_sent(c, id, parts_done)?;
                }
                match &outcome {
                    None => store::mark_sent(c, id, &key, now.millis()),
                    Some(e) => {
                        let dead =
                            u32::try_from(attempts).unwrap_or(u32::MAX) >= settings.max_attempts;
                        let exp = u32::try_from(attempts - 1).unwrap_or(0).min(20);
                        let delay = settings
                            .retry_base_secs
                            .saturating_mul(1u64 << exp)
                            .min(settings.retry_cap_secs);
                        let next =
                            now.millis() + i64::try_from(delay * 1000).unwrap_or(i64::MAX / 2);
                        store::mark_failed(
                            c,
                            id,
                            attempts,
                            next,
                            dead,
                            &e.to_string(),
                            now.millis(),
                        )
                    }
                }
                .map_err(DbError::from)
            })
        })
        .await?;
        match failure {
            None => {
                total.sent += 1;
                self.sms
                    .metrics
                    .inc("lapor_sms_outbound_total", &[("result", "sent")], 1);
                Ok(true)
            }
            Some(e) => {
                let dead =
                    u32::try_from(attempts).unwrap_or(u32::MAX) >= self.sms.settings.max_attempts;
                if dead {
                    total.dead += 1;
                    tracing::error!(sms = id, attempts, error = %e, "sms dead-lettered");
                } else {
                    total.failed += 1;
                    tracing::warn!(sms = id, attempts, error = %e, "sms send failed; will retry");
                }
                let result = if dead { "dead" } else { "failed" };
                self.sms
                    .metrics
                    .inc("lapor_sms_outbound_total", &[("result", result)], 1);
                Ok(!matches!(e, GatewayError::Unreachable(_)))
            }
        }
    }

    /// The local day of `now` in the node's time zone, as `[start, end)` milliseconds.
    fn local_day(&self, now: Timestamp) -> (i64, i64) {
        let local = now.to_datetime().to_offset(self.sms.offset);
        let start = local.replace_time(time::Time::MIDNIGHT);
        let ms = |t: time::OffsetDateTime| {
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
        };
        (ms(start), ms(start + time::Duration::days(1)))
    }
}
