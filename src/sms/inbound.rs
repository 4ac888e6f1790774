//! One inbound message, from the gateway's call to the answer queued.
//!
//! ```text
//!  http (secret, gateway address) ─► Sms::receive
//!     number normalised ─► already handled? (gateway message id) ─► blocked? ─► flood limits
//!     ─► length ─► keywords::parse ─► plan ─┬─ Answer ─────────────► record + answer  (one tx)
//!                                           ├─ File ── tickets::submit_with ─► hook: record +
//!                                           │                                 "filed" notice
//!                                           ├─ Check ─ tickets::find_by_phone ─► record + answer
//!                                           └─ Reply/Rate ─ tickets::follow_up_by_phone ─► hook
//! ```
//!
//! A message is recorded as handled (by the gateway's message id) in the transaction of its
//! effect, so a resent message files nothing twice and a failed one (503) is taken again when
//! the gateway resends it. Texts and numbers are never logged.

use std::time::Instant;

use super::Sms;
use super::keywords::{self, Command, SmsReport};
use super::limits::Flood;
use super::number::{NotANumber, normalise};
use super::replies::{Notice, Reply};
use super::store;
use crate::db::DbError;
use crate::domain::{Actor, Category, Channel, Privacy, RegionCode, Timestamp, TrackingCode};
use crate::tickets::{Action, Contact, NewReport, Problem, TicketError, TxHook};

/// A message as the gateway delivered it.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The gateway's id of the message (`<smsc id>:<message id>`).
    pub message_key: String,
    /// The sender, as the gateway wrote it.
    pub from: String,
    /// The text, joined from its parts.
    pub text: String,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer it, and nothing else.
    Answer(Reply),
    /// File a report.
    File(SmsReport),
    /// Answer with a report's status.
    Check(TrackingCode),
    /// Add the citizen's reply.
    Reply(TrackingCode, String),
    /// Record the citizen's rating.
    Rate(TrackingCode, u8),
}

/// What a command asks of the node (pure: every command gets a step, every step an answer).
#[must_use]
pub fn plan(command: Command) -> Step {
    match command {
        Command::Report(r) if r.text.is_empty() => Step::Answer(Reply::EmptyReport),
        Command::Report(r) => Step::File(r),
        Command::Check(Some(code)) => Step::Check(code),
        Command::Check(None) => Step::Answer(Reply::NoCode { keyword: "CEK" }),
        Command::Reply(Some(code), text) if text.is_empty() => {
            Step::Answer(Reply::EmptyReply(code))
        }
        Command::Reply(Some(code), text) => Step::Reply(code, text),
        Command::Reply(None, _) => Step::Answer(Reply::NoCode { keyword: "BALAS" }),
        Command::Rate(Some(code), Some(n)) => Step::Rate(code, n),
        Command::Rate(Some(code), None) => Step::Answer(Reply::BadRating(code)),
        Command::Rate(None, _) => Step::Answer(Reply::NoCode { keyword: "NILAI" }),
        Command::Help => Step::Answer(Reply::Help),
        Command::Unknown => Step::Answer(Reply::Unknown),
    }
}

/// How a message was handled (the gateway gets 200 for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Handled now: the outcome recorded (`filed`, `checked`, `replied`, `rated`, `help`,
    /// `unknown`, `refused`).
    Handled(&'static str),
    /// The gateway sent it before; nothing was done again.
    Duplicate,
    /// From a blocked number: recorded, not answered.
    Blocked,
}

/// Why a message was not taken (the gateway gets an error status; nothing was recorded).
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The sender is not a phone number.
    #[error(transparent)]
    BadSender(#[from] NotANumber),
    /// A flood limit.
    #[error("too many messages")]
    Flood(Flood),
    /// The database failed: the gateway should send it again later.
    #[error("the node cannot take messages now: {0}")]
    Unavailable(String),
}

impl From<DbError> for InboundError {
    fn from(e: DbError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl Sms {
    /// Handles one message (blocking: call it off the async executor).
    ///
    /// # Errors
    ///
    /// See [`InboundError`]; on any of them nothing was recorded or queued.
    #[tracing::instrument(name = "sms.receive", skip_all, fields(message = %msg.message_key))]
    pub fn receive(
        &self,
        msg: &Inbound,
        now: Timestamp,
        clock: Instant,
    ) -> Result<Received, InboundError> {
        let phone = normalise(&msg.from)?;
        let key = self.key.of(&phone);
        let message_key = msg.message_key.clone();
        {
            let mut c = self.tickets.db().read()?;
            if store::inbound_outcome(&mut c, &message_key)
                .map_err(DbError::from)?
                .is_some()
            {
                return Ok(Received::Duplicate);
            }
            if store::is_blocked(&mut c, &phone).map_err(DbError::from)? {
                drop(c);
                self.tickets.db().write(move |c| {
                    store::record_inbound(c, &message_key, now.millis(), "blocked")
                        .map_err(DbError::from)
                })?;
                return Ok(Received::Blocked);
            }
        }
        self.limits
            .check(&key, clock)
            .map_err(InboundError::Flood)?;
        let step = if msg.text.chars().count() > self.settings.max_chars {
            Step::Answer(Reply::TooLong {
                max: self.settings.max_chars,
            })
        } else {
            plan(keywords::parse(&msg.text))
        };
        let out = Out {
            sms: self,
            message_key: &message_key,
            phone: &phone,
            key: &key,
            now,
        };
        let result = match step {
            Step::Answer(r) => {
                let outcome = match r {
                    Reply::Help => "help",
                    Reply::Unknown => "unknown",
                    _ => "refused",
                };
                out.answer(outcome, &r)
            }
            Step::File(report) => out.file(&report),
            Step::Check(code) => out.check(&code),
            Step::Reply(code, text) => out.follow_up(&code, Action::Reply { message: text }),
            Step::Rate(code, n) => out.follow_up(&code, Action::Rate { rating: n }),
        };
        match result {
            // A duplicate raced this one and recorded first: its effect stands.
            Err(_) if self.handled(&msg.message_key) => Ok(Received::Duplicate),
            other => other,
        }
    }

    fn handled(&self, message_key: &str) -> bool {
        self.tickets
            .db()
            .read()
            .ok()
            .and_then(|mut c| store::inbound_outcome(&mut c, message_key).ok())
            .flatten()
            .is_some()
    }
}

/// One message's answer path.
struct Out<'a> {
    sms: &'a Sms,
    message_key: &'a str,
    phone: &'a str,
    key: &'a str,
    now: Timestamp,
}

impl Out<'_> {
    /// Records the message and queues `reply`, in one transaction.
    fn answer(&self, outcome: &'static str, reply: &Reply) -> Result<Received, InboundError> {
        let (mk, phone, key, text, now) = (
            self.message_key.to_owned(),
            self.phone.to_owned(),
            self.key.to_owned(),
            reply.text(),
            self.now.millis(),
        );
        self.sms.tickets.db().write(move |c| {
            store::record_inbound(c, &mk, now, outcome)?;
            super::outbox::queue_answer(c, &phone, &key, &text, now).map_err(DbError::from)
        })?;
        Ok(Received::Handled(outcome))
    }

    /// A hook recording the message as `outcome` and queuing `reply` (if any) in the
    /// transaction of the change.
    fn hook(&self, outcome: &'static str, reply: Option<Reply>) -> TxHook {
        let (mk, phone, key, now) = (
            self.message_key.to_owned(),
            self.phone.to_owned(),
            self.key.to_owned(),
            self.now.millis(),
        );
        let text = reply.map(|r| r.text());
        std::sync::Arc::new(move |c, _event| {
            store::record_inbound(c, &mk, now, outcome)?;
            if let Some(text) = &text {
                super::outbox::queue_answer(c, &phone, &key, text, now)?;
            }
            Ok(())
        })
    }

    fn file(&self, r: &SmsReport) -> Result<Received, InboundError> {
        let sms = self.sms;
        let region = match &r.region {
            Some(region) => region.clone(),
            None => RegionCode::parse(sms.province.as_str())
                .map_err(|e| InboundError::Unavailable(e.to_string()))?,
        };
        let report = NewReport {
            kind: r.kind,
            title: title_of(&r.text, sms.tickets_title_max()),
            text: r.text.clone(),
            category: r
                .category
                .clone()
                .or_else(|| Category::parse("lainnya").ok())
                .ok_or_else(|| InboundError::Unavailable("no default category".into()))?,
            region,
            agency: None,
            channel: Channel::Sms,
            privacy: Privacy {
                anonymous: !r.named,
                confidential: r.confidential,
            },
            contact: Some(Contact {
                name: None,
                phone: Some(self.phone.to_owned()),
                email: None,
            }),
        };
        let (mk, now, ignored) = (
            self.message_key.to_owned(),
            self.now.millis(),
            r.unknown_tags.clone(),
        );
        let hook: TxHook = std::sync::Arc::new(move |c, event| {
            store::record_inbound(c, &mk, now, "filed")?;
            if let crate::domain::Change::Created(created) = &event.change {
                let notice = Notice::Filed {
                    code: created.tracking_code.clone(),
                    ignored: ignored.clone(),
                };
                super::outbox::queue_notice(
                    c,
                    &event.ticket.to_string(),
                    &event.id.to_string(),
                    &notice,
                    now,
                )?;
            }
            Ok(())
        });
        match sms
            .tickets
            .submit_with(&report, &Actor::citizen(), self.now, Some(hook))
        {
            Ok(_) => Ok(Received::Handled("filed")),
            Err(TicketError::Invalid {
                problem: Problem::TooLong { max, .. },
                ..
            }) => self.answer("refused", &Reply::TooLong { max }),
            Err(TicketError::UnknownRegion(_)) => self.answer("refused", &Reply::UnknownRegion),
            Err(TicketError::Invalid { .. }) => self.answer("refused", &Reply::EmptyReport),
            Err(e) => Err(InboundError::Unavailable(e.to_string())),
        }
    }

    fn check(&self, code: &TrackingCode) -> Result<Received, InboundError> {
        let t = &self.sms.tickets;
        let state = match t.find_by_phone(code, self.phone) {
            Ok(v) => Some(v.state),
            Err(TicketError::ReportHidden) => match t.find_report(code.as_str(), None, false) {
                Ok(found) => found.ticket.state().ok(),
                Err(TicketError::ReportHidden) => None,
                Err(e) => return Err(InboundError::Unavailable(e.to_string())),
            },
            Err(e) => return Err(InboundError::Unavailable(e.to_string())),
        };
        match state {
            Some(s) => {
                let due = super::sender::due_of(&s).map(|d| self.sms.local_date(d));
                let reply = Reply::Status {
                    code: code.clone(),
                    status: s.status,
                    due,
                };
                self.answer("checked", &reply)
            }
            None => self.answer("refused", &Reply::NotFound(code.clone())),
        }
    }

    fn follow_up(&self, code: &TrackingCode, action: Action) -> Result<Received, InboundError> {
        let (outcome, done) = match &action {
            Action::Rate { rating } => ("rated", Reply::Rated(code.clone(), *rating)),
            _ => ("replied", Reply::Replied(code.clone())),
        };
        let hook = self.hook(outcome, Some(done));
        match self
            .sms
            .tickets
            .follow_up_by_phone(code, self.phone, action, self.now, Some(hook))
        {
            Ok(_) => Ok(Received::Handled(outcome)),
            Err(TicketError::ReportHidden | TicketError::NotFound) => {
                self.answer("refused", &Reply::NotFound(code.clone()))
            }
            Err(TicketError::Transition(_) | TicketError::NotHandler(_)) => {
                let status = self
                    .sms
                    .tickets
                    .find_by_phone(code, self.phone)
                    .map_err(|e| InboundError::Unavailable(e.to_string()))?
                    .state
                    .status;
                self.answer("refused", &Reply::NotNow(code.clone(), status))
            }
            Err(TicketError::Invalid {
                problem: Problem::TooLong { max, .. },
                ..
            }) => self.answer("refused", &Reply::TooLong { max }),
            Err(TicketError::Invalid { .. }) => {
                self.answer("refused", &Reply::EmptyReply(code.clone()))
            }
            Err(e) => Err(InboundError::Unavailable(e.to_string())),
        }
    }
}

/// A title from the report's text: its first words, up to 60 characters (or the limit).
fn title_of(text: &str, max: usize) -> String {
    let max = max.min(60);
    let mut title = String::new();
    for word in text.split_whitespace() {
        let next = title.chars().count() + word.chars().count() + usize::from(!title.is_empty());
        if next > max {
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    if title.is_empty() {
        title = text.chars().take(max).collect();
    }
    title
}
