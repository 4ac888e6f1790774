//! The SMS channel, through a Kannel gateway: citizens with a basic phone file, track, reply
//! and rate by SMS, and hear back by SMS. It goes through `tickets` like every channel and
//! holds no HTTP types below `http`.
//!
//! ```text
//!  phone ─► SMSC / GSM modem ─► Kannel bearerbox ─► smsbox (sms-service get-url)
//!      ─► http (/sms/kannel: secret, gateway address) ─► inbound ─► keywords ─► tickets
//!                                                          └─► outbox (answer, same tx)
//!  tickets::commands / federation::judge ─► outbox::on_event (notice, same tx as the event)
//!  sender (worker) ─► sms_outbox ─► gateway (Kannel sendsms) ─► smsbox ─► bearerbox ─► phone
//! ```
//!
//! | module | role |
//! |---|---|
//! | `settings` | `[sms]`: the gateway, secrets, limits, retries |
//! | `keywords` | the parser: `LAPOR`, `CEK`, `BALAS`, `NILAI`, `BANTUAN`, their variants and tags |
//! | `replies` | every text the node sends, in Bahasa Indonesia, GSM-7 |
//! | `gsm` | the GSM 7-bit alphabet and clean splitting (160, or 153 per part) |
//! | `number` | phone numbers normalised, and their keyed hash |
//! | `limits` | inbound flood limits (per number, global) |
//! | `inbound` | one message: dedupe, blocked numbers, limits, parse, act, answer |
//! | `outbox` | queuing notices and answers in the transaction that causes them |
//! | `sender` | the worker: sends due messages, retries with backoff, dead letters, daily cap |
//! | `gateway` | Kannel's `sendsms` client |
//! | `http` | the endpoint Kannel's `sms-service` calls |
//! | `admin` | blocked numbers and dead letters, for the CLI and the admin API |
//! | `store`, `model` | queries and rows of the SMS tables |
//!
//! See `docs/SMS.md` for the Kannel configuration.

pub mod admin;
pub mod gateway;
pub mod gsm;
pub mod http;
pub mod inbound;
pub mod keywords;
pub mod limits;
pub mod model;
pub mod number;
pub mod outbox;
pub mod replies;
pub mod sender;
pub mod settings;
pub mod store;

use std::sync::Arc;

use crate::db::DbError;
use crate::domain::{ProvinceCode, Timestamp};
use crate::metrics::Metrics;
use crate::tickets::Tickets;

/// The SMS channel of a node (cheap to clone).
#[derive(Debug, Clone)]
pub struct Sms(Arc<Inner>);

/// What the channel holds.
#[derive(Debug)]
pub struct Inner {
    tickets: Tickets,
    settings: settings::SmsSettings,
    limits: limits::Limits,
    key: number::NumberKey,
    metrics: Arc<Metrics>,
    province: ProvinceCode,
    offset: time::UtcOffset,
    title_max: usize,
}

impl std::ops::Deref for Sms {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Sms {
    /// The channel of `tickets`' node, with `[sms]` settings (reads or creates the node's SMS
    /// secret).
    ///
    /// # Errors
    ///
    /// The database could not be read or written.
    pub fn new(
        tickets: Tickets,
        settings: &crate::config::Settings,
        sms: settings::SmsSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, DbError> {
        let secret = tickets
            .db()
            .write(|c| store::secret(c, "number_key").map_err(DbError::from))?;
        Ok(Self(Arc::new(Inner {
            limits: limits::Limits::new(sms.per_number_per_hour, sms.global_per_minute),
            settings: sms,
            key: number::NumberKey::new(secret),
            metrics,
            province: settings.raw.node.province.clone(),
            offset: settings.calendar.offset(),
            title_max: settings.raw.limits.title_max_chars,
            tickets,
        })))
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &settings::SmsSettings {
        &self.settings
    }

    /// The tickets the channel files into.
    #[must_use]
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    fn tickets_title_max(&self) -> usize {
        self.title_max
    }

    /// `at` as a local date, `DD-MM-YYYY`.
    fn local_date(&self, at: Timestamp) -> String {
        let d = at.to_datetime().to_offset(self.offset).date();
        format!("{:02}-{:02}-{}", d.day(), u8::from(d.month()), d.year())
    }
}
