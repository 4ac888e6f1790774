//! Ticket commands. Each one checks its input, asks the domain state machine whether the change
//! is legal, and appends the event and updates the projection in one write transaction:
//! on any error nothing is written.

use serde::Deserialize;

use super::codes::CodeBook;
use super::model::{ContactRow, TicketRow};
use super::store;
use crate::config::{LimitSettings, SlaSettings};
use crate::db::{Db, DbConn, DbError};
use crate::domain::event::{ArchiveReason, CloseReason, SlaStep};
use crate::domain::reference::Provinces;
use crate::domain::sla::WorkCalendar;
use crate::domain::{
    Actor, AgencyCode, Category, Change, Channel, Created, Event, NodeId, Privacy, RegionCode,
    ReportKind, Role, TicketId, TicketState, Timestamp, TrackingCode, TransitionError,
};
use crate::event_log::store::{self as log, Draft, LogError};

/// A failed ticket command. The first group is the caller's fault (4xx), the rest are ours.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// A field is missing, empty, too long or malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such ticket.
    #[error("ticket not found")]
    NotFound,
    /// The region is not in the reference data.
    #[error("unknown region {0}")]
    UnknownRegion(String),
    /// The agency is not known.
    #[error("unknown agency {0}")]
    UnknownAgency(String),
    /// The agency exists but cannot take a dispatch now.
    #[error("agency {agency}: {reason}")]
    AgencyUnavailable {
        /// The agency.
        agency: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The state machine refused the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// This node does not hold the ticket's authority for the change.
    #[error("this node does not handle the ticket (handler: {0})")]
    NotHandler(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Event log failure.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Could not encode the projection.
    #[error("cannot encode ticket state: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<super::codes::Exhausted> for TicketError {
    fn from(e: super::codes::Exhausted) -> Self {
        Self::Db(DbError::Unavailable(e.to_string()))
    }
}

impl From<diesel::result::Error> for TicketError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> TicketError {
    TicketError::Invalid {
        field,
        message: message.into(),
    }
}

/// Reporter contact: personal data, stored apart from the report and never put in an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// A report as a citizen files it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// Kind.
    pub kind: ReportKind,
    /// Title.
    pub title: String,
    /// Text.
    pub text: String,
    /// Category.
    pub category: Category,
    /// Region concerned.
    pub region: RegionCode,
    /// Agency the citizen names.
    pub agency: Option<AgencyCode>,
    /// Channel.
    pub channel: Channel,
    /// Privacy flags.
    pub privacy: Privacy,
    /// Reporter contact.
    pub contact: Option<Contact>,
}

/// An action on a ticket: the officers' lifecycle actions (the body of
/// `POST /api/v1/tickets/{id}/actions`) and the citizen's follow-ups. Who may take which is the
/// state machine's decision (`TicketState::apply`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Verify.
    Verify,
    /// Dispatch to an agency.
    Dispatch {
        /// The agency.
        #[schema(value_type = String)]
        agency: AgencyCode,
    },
    /// Postpone (*tunda*).
    Postpone {
        /// Why.
        note: String,
    },
    /// Archive.
    Archive {
        /// Why: `spam`, `unclear`, `out_of_scope` or `duplicate`.
        #[schema(value_type = String)]
        reason: ArchiveReason,
    },
    /// Not our authority (*bukan wewenang*).
    NotOurAuthority {
        /// Why.
        note: String,
    },
    /// Start work.
    Start,
    /// Respond publicly.
    Respond {
        /// The response.
        message: String,
    },
    /// Mark resolved.
    Resolve {
        /// Closing remarks.
        message: String,
    },
    /// Citizen reply.
    Reply {
        /// The reply.
        message: String,
    },
    /// Citizen rating.
    Rate {
        /// 1 to 5.
        rating: u8,
    },
    /// Citizen reopen.
    Reopen {
        /// Why.
        message: String,
    },
}

/// A filed report: its `created` event and the citizen's follow-up token (shown once; only
/// its SHA-256 is stored).
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The `created` event.
    pub event: Event,
    /// The secret the citizen presents to follow up.
    pub follow_up_token: String,
}

/// SHA-256 (hex) of a follow-up token, as stored.
#[must_use]
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    crate::crypto::to_hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// The intake queue's lock (a panic while holding it cannot leave it inconsistent: every
/// operation on it is a push or a take).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The error for a report whose group ended without an answer for it (a bug, not an input).
fn poisoned() -> TicketError {
    TicketError::Db(DbError::Unavailable(
        "the report's intake group ended without an answer".into(),
    ))
}

fn new_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    // The thread's CSPRNG (ChaCha, seeded and reseeded from the operating system).
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The personal data a `created` event commits to: the fields given, as `(key, value)` pairs
/// in key order (the members of [`contact_value`]'s object).
fn contact_members(c: &Contact) -> Vec<(&'static str, &str)> {
    [("email", &c.email), ("name", &c.name), ("phone", &c.phone)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
}

/// The personal data a `created` event commits to, as a JSON object of the fields given.
#[must_use]
pub fn contact_value(c: &Contact) -> serde_json::Value {
    serde_json::Value::Object(
        contact_members(c)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect(),
    )
}

/// Intake counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntakeStats {
    /// Writer jobs that filed reports (each files every report queued when it runs).
    pub groups: u64,
    /// Reports queued in them.
    pub reports: u64,
    /// Reports whose `created` event the writer placed and signed itself, because it was not
    /// sealed ahead (the first after a start) or its place was taken meanwhile.
    pub resealed: u64,
}

/// What an SLA sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Breach events written.
    pub breaches: usize,
    /// Tickets auto-closed.
    pub closed: usize,
}

/// The ticket commands of one node (cheap to clone: the state is shared).
#[derive(Debug, Clone)]
pub struct Tickets(std::sync::Arc<Inner>);

/// What the commands need.
#[derive(Debug)]
pub struct Inner {
    db: Db,
    key: std::sync::Arc<crate::crypto::keys::NodeKey>,
    node: NodeId,
    calendar: WorkCalendar,
    sla: SlaSettings,
    limits: LimitSettings,
    provinces: Provinces,
    /// The federation hub, when this node is a federated province node: it receives every
    /// event this node writes.
    hub: Option<NodeId>,
    /// `[federation]` is configured: events get outbox rows.
    federated: bool,
    /// The members of this node's federation (itself and its peers): the nodes a ticket can
    /// be dispatched to.
    members: std::collections::BTreeSet<String>,
    /// Tracking codes.
    codes: CodeBook,
    /// Reports waiting for the writer: the first to arrive in an empty queue sends one writer
    /// job that files every report queued by the time it runs (see [`Tickets::submit`]).
    intake: std::sync::Mutex<IntakeQueue>,
    /// Intake groups written, the reports queued in them, and the reports whose event was
    /// placed and signed again by the writer (its place ahead was taken).
    intake_groups: std::sync::atomic::AtomicU64,
    intake_reports: std::sync::atomic::AtomicU64,
    intake_resealed: std::sync::atomic::AtomicU64,
}

/// Reports waiting for the writer, and the chain place the next one takes.
///
/// A report queued while the place is known gets its `created` event sealed there and then
/// (id and, outside the lock, signature), so the writer only stores it; the writer checks each
/// place against the chain head and seals again any whose place was taken meanwhile (an
/// officer's action, a refused report before it), then re-places the reports still queued.
#[derive(Debug, Default)]
struct IntakeQueue {
    items: Vec<Queued>,
    next: Option<log::Place>,
}

/// A report checked and prepared outside the writer.
#[derive(Debug)]
struct Prepared {
    report: NewReport,
    actor: Actor,
    now: Timestamp,
    ticket: TicketId,
    verify_due: Timestamp,
    overall_due: Timestamp,
    /// The contact to store (when it has any field), its salt and the commitment.
    contact: Option<(Contact, String, String)>,
    follow_up_token: String,
    /// Its SHA-256, the stored form.
    follow_up_hash: String,
    /// Drawn from the node's counter (`codes`), with its number; the writer replaces it if it
    /// is taken.
    tracking_code: TrackingCode,
    code_number: i64,
}

/// The ticket a report creates, folded and laid out as its row on the caller's thread; the
/// writer stores it as it is (with the event id as its head) when the report keeps its
/// tracking code.
#[derive(Debug)]
struct Projection {
    state: TicketState,
    row: TicketRow,
}

impl Projection {
    /// Folds the `created` change into a new ticket `ticket` and lays out its row (no head).
    fn create(
        node: &NodeId,
        actor: &Actor,
        change: &Change,
        now: Timestamp,
        ticket: &TicketId,
    ) -> Result<Self, TicketError> {
        let state = TicketState::create(node, actor, change, now)?;
        let row = TicketRow::without_head(ticket, &state)?;
        Ok(Self { state, row })
    }
}

/// One report of a group handed to the writer.
struct Item<'a> {
    prepared: &'a Prepared,
    sealed: Option<log::Sealed>,
    projection: Option<Projection>,
}

impl Prepared {
    /// The `created` event's draft, with `code`.
    fn draft(&self, code: &TrackingCode) -> Draft {
        let r = &self.report;
        Draft {
            ticket: self.ticket,
            parents: vec![],
            at: self.now,
            actor: self.actor.clone(),
            change: Change::Created(Box::new(Created {
                tracking_code: code.clone(),
                report_kind: r.kind,
                title: r.title.clone(),
                text: r.text.clone(),
                category: r.category.clone(),
                region: r.region.clone(),
                suggested_agency: r.agency.clone(),
                channel: r.channel,
                privacy: r.privacy,
                verify_due: self.verify_due,
                overall_due: self.overall_due,
            })),
            pii: self
                .contact
                .as_ref()
                .map(|(_, _, commitment)| commitment.clone()),
        }
    }
}

/// A prepared report, its event when sealed ahead, and where its result goes.
struct Queued {
    prepared: Prepared,
    sealed: Option<log::Sealed>,
    projection: Option<Projection>,
    reply: Reply,
}

/// Held by an intake writer job until it runs: a job dropped unrun (the writer stopped) fails
/// the queue it was sent for, which no other job would take.
struct FailQueueOnDrop(Option<Tickets>);

impl FailQueueOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for FailQueueOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.fail_queue("the database is unavailable: the report was not filed");
        }
    }
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("prepared", &self.prepared)
            .finish_non_exhaustive()
    }
}

/// Where a queued report's result goes (called once, on the writer thread or the caller's).
type Reply = Box<dyn FnOnce(Result<Submitted, TicketError>) + Send>;

/// Checks a free-text field: not blank, at most `max` characters, and no control characters
/// (NUL, ESC, BEL, … and the C1 range) — they corrupt terminals, logs and SMS, and no citizen
/// types them. Multi-line fields (report bodies, messages, notes) keep line breaks and tabs.
fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), TicketError> {
    check_controls(field, text, !matches!(field, "title"))?;
    if text.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    let n = text.chars().count();
    if n > max {
        return Err(invalid(
            field,
            format!("is {n} characters; the limit is {max}"),
        ));
    }
    Ok(())
}

/// Refuses control characters in `text`; `multiline` allows `\n`, `\r` and `\t`.
fn check_controls(field: &'static str, text: &str, multiline: bool) -> Result<(), TicketError> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    match text.chars().position(|c| c.is_control() && !allowed(c)) {
        None => Ok(()),
        Some(at) => {
            let c = text.chars().nth(at).map_or(0, u32::from);
            Err(invalid(
                field,
                format!(
                    "contains the control character U+{c:04X} at character {}; {}",
                    at + 1,
                    if multiline {
                        "only line breaks and tabs are allowed"
                    } else {
                        "this field is one line of text"
                    }
                ),
            ))
        }
    }
}

fn check_contact(c: &Contact) -> Result<(), TicketError> {
    for (field, v, max) in [
        ("contact.name", &c.name, 200),
        ("contact.phone", &c.phone, 32),
        ("contact.email", &c.email, 254),
    ] {
        if let Some(v) = v {
            check_controls(field, v, false)?;
            if v.trim().is_empty() || v.chars().count() > max {
                return Err(invalid(field, format!("must be 1 to {max} characters")));
            }
        }
    }
    if let Some(p) = &c.phone {
        let digits = p.trim_start_matches('+');
        if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "contact.phone",
                "must be digits, optionally starting with +",
            ));
        }
    }
    if let Some(e) = &c.email {
        if !e
            .split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'))
        {
            return Err(invalid("contact.email", "is not an e-mail address"));
        }
    }
    Ok(())
}

impl std::ops::Deref for Tickets {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Tickets {
    /// Commands for this node.
    ///
    /// Reads the node's tracking-code book (creating it on the first start).
    ///
    /// # Errors
    ///
    /// The database could not be read or written.
    pub fn new(
        db: Db,
        settings: &crate::config::Settings,
        key: std::sync::Arc<crate::crypto::keys::NodeKey>,
    ) -> Result<Self, DbError> {
        let province = settings.raw.node.province.clone();
        let codes =
            db.write(move |conn| CodeBook::open(conn, &province).map_err(DbError::Query))?;
        Ok(Self(std::sync::Arc::new(Inner {
            codes,
            db,
            key,
            node: settings.raw.node.id.clone(),
            calendar: settings.calendar.clone(),
            sla: settings.raw.sla.clone(),
            limits: settings.raw.limits.clone(),
            provinces: settings.provinces.clone(),
            hub: settings
                .raw
                .federation
                .as_ref()
                .and_then(|f| f.hub())
                .map(|h| h.id.clone()),
            federated: settings.raw.federation.is_some(),
            members: settings
                .raw
                .federation
                .iter()
                .flat_map(|f| f.peers.iter().map(|p| p.id.to_string()))
                .chain([settings.raw.node.id.to_string()])
                .collect(),
            intake: std::sync::Mutex::new(IntakeQueue::default()),
            intake_groups: std::sync::atomic::AtomicU64::new(0),
            intake_reports: std::sync::atomic::AtomicU64::new(0),
            intake_resealed: std::sync::atomic::AtomicU64::new(0),
        })))
    }

    /// The node's tracking codes.
    #[must_use]
    pub fn codes(&self) -> &CodeBook {
        &self.codes
    }

    /// The province list (regions and time zones).
    #[must_use]
    pub fn provinces(&self) -> &Provinces {
        &self.provinces
    }

    /// The database.
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Intake since start.
    #[must_use]
    pub fn intake_stats(&self) -> IntakeStats {
        use std::sync::atomic::Ordering::Relaxed;
        IntakeStats {
            groups: self.intake_groups.load(Relaxed),
            reports: self.intake_reports.load(Relaxed),
            resealed: self.intake_resealed.load(Relaxed),
        }
    }

    /// This node.
    #[must_use]
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    fn due(&self, now: Timestamp, working_days: u32) -> Timestamp {
        Timestamp::from_datetime(
            self.calendar
                .add_working_days(now.to_datetime(), working_days),
        )
    }

    /// Files a new report. Returns the `created` event and the follow-up token.
    ///
    /// The report is checked and prepared, and its event sealed ahead, on the caller's thread,
    /// then queued; concurrent reports are filed together by one writer job (one chain-head
    /// update and one commit for the whole group). A report refused on its own (unknown
    /// agency) fails alone; if the group's statements fail, each report is filed again on its
    /// own, so one report's fault never fails another's.
    #[tracing::instrument(name = "tickets.submit", skip_all, fields(channel = ?report.channel))]
    pub fn submit(
        &self,
        report: &NewReport,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Submitted, TicketError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.enqueue(report, actor, now, move |r| {
            let _ = reply.send(r);
        })?;
        answer.recv().map_err(|_| poisoned())?
    }

    /// [`Tickets::submit`] for async callers: the caller's thread only checks and prepares
    /// the report (no blocking), and the answer arrives once the writer has committed it.
    ///
    /// Dropping the future after it was first polled does not withdraw the report: it is
    /// filed (like a request whose client went away after sending it).
    pub async fn submit_async(
        &self,
        report: &NewReport,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Submitted, TicketError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.enqueue(report, actor, now, move |r| {
            let _ = reply.send(r);
        })?;
        answer.await.map_err(|_| poisoned())?
    }

    /// Checks and prepares a report and queues it; the first report of an empty queue sends
    /// the writer job that files the whole queue.
    fn enqueue(
        &self,
        report: &NewReport,
        actor: &Actor,
        now: Timestamp,
        reply: impl FnOnce(Result<Submitted, TicketError>) + Send + 'static,
    ) -> Result<(), TicketError> {
        let reply: Reply = Box::new(reply);
        let prepared = self.prepare(report, actor, now)?;
        let draft = prepared.draft(&prepared.tracking_code);
        // A report the state machine refuses gets no projection: the writer refuses it.
        let projection =
            Projection::create(&self.node, actor, &draft.change, now, &prepared.ticket).ok();
        let lead = {
            let mut queue = lock(&self.intake);
            let sealed = queue.next.take().and_then(|place| {
                log::Sealed::new(&self.node, self.key.id().as_str(), draft, place, now).ok()
            });
            queue.next = sealed.as_ref().map(log::Place::after);
            queue.items.push(Queued {
                prepared,
                sealed,
                projection,
                reply,
            });
            queue.items.len() == 1
        };
        if lead {
            self.file_queued();
        }
        Ok(())
    }

    /// Checks a report and prepares what needs no database: ids, deadlines, the contact's
    /// commitment, the follow-up token.
    fn prepare(
        &self,
        report: &NewReport,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Prepared, TicketError> {
        check_text("title", &report.title, self.limits.title_max_chars)?;
        check_text("body", &report.text, self.limits.text_max_chars)?;
        if let Some(c) = &report.contact {
            check_contact(c)?;
        }
        // A report whose reporter is not hidden names its reporter: without a contact there
        // is no one to name, and the flag would promise something the report cannot keep.
        let has_contact = report
            .contact
            .as_ref()
            .is_some_and(|c| c.name.is_some() || c.phone.is_some() || c.email.is_some());
        if !report.privacy.anonymous && !has_contact {
            return Err(invalid(
                "reporter",
                "a report that is not anonymous needs the reporter's name, phone or e-mail; \
                 give one, or file the report as anonymous",
            ));
        }
        if !self.provinces.knows_region(&report.region) {
            return Err(TicketError::UnknownRegion(report.region.to_string()));
        }
        let overall = self
            .calendar
            .add_calendar_days(now.to_datetime(), self.sla.overall_calendar_days);
        // The event commits to the contact by a salted hash; the data stays in its table.
        let contact = report
            .contact
            .as_ref()
            .filter(|c| c.name.is_some() || c.phone.is_some() || c.email.is_some())
            .and_then(|c| {
                let salt = crate::crypto::pii::new_salt_bytes();
                crate::crypto::pii::commit_strings(&salt, &contact_members(c))
                    .map(|commitment| (c.clone(), crate::crypto::to_hex(&salt), commitment))
            });
        let follow_up_token = new_token();
        let (code_number, tracking_code) = self.codes.draw()?;
        Ok(Prepared {
            report: report.clone(),
            actor: actor.clone(),
            now,
            ticket: TicketId::new(),
            verify_due: self.due(now, self.sla.verify_dispatch_working_days),
            overall_due: Timestamp::from_datetime(overall),
            contact,
            follow_up_hash: hash_token(&follow_up_token),
            follow_up_token,
            tracking_code,
            code_number,
        })
    }

    /// Queues one writer job that files every report queued by the time it runs and then
    /// answers each; when the group's write fails, each report is filed again on its own.
    fn file_queued(&self) {
        let taken: std::sync::Arc<std::sync::Mutex<Vec<Queued>>> = std::sync::Arc::default();
        let slot = taken.clone();
        let this = self.clone();
        let answer = self.clone();
        let unfiled = FailQueueOnDrop(Some(self.clone()));
        let sent = self.db.write_then(
            move |conn| {
                unfiled.disarm();
                let mut group = std::mem::take(&mut lock(&this.intake).items);
                // The sealed events move to the writer (the log takes them apart).
                let items: Vec<Item<'_>> = group
                    .iter_mut()
                    .map(|q| Item {
                        sealed: q.sealed.take(),
                        projection: q.projection.take(),
                        prepared: &q.prepared,
                    })
                    .collect();
                let out = this.file_group(conn, items);
                *lock(&slot) = group;
                out
            },
            move |result| {
                let group = std::mem::take(&mut *lock(&taken));
                match result {
                    // Refused without running (the database is unavailable): the reports are
                    // still queued for this job, and get its cause.
                    Err(e) if group.is_empty() => answer.fail_queue(&e.to_string()),
                    result => answer.answer_group(group, result),
                }
            },
        );
        if let Err(e) = sent {
            self.fail_queue(&e.to_string());
        }
    }

    /// Answers every queued report with `message` (the writer has stopped: nobody else will
    /// take the queue).
    fn fail_queue(&self, message: &str) {
        for q in std::mem::take(&mut lock(&self.intake).items) {
            (q.reply)(Err(TicketError::Db(DbError::Unavailable(
                message.to_owned(),
            ))));
        }
    }

    /// Answers the reports of a group once its transaction has ended (on the writer thread).
    fn answer_group(
        &self,
        mut group: Vec<Queued>,
        result: Result<Vec<Result<Submitted, TicketError>>, TicketError>,
    ) {
        if !group.is_empty() {
            use std::sync::atomic::Ordering::Relaxed;
            self.intake_groups.fetch_add(1, Relaxed);
            self.intake_reports.fetch_add(group.len() as u64, Relaxed);
        }
        if result.is_err() {
            // The transaction was rolled back, with any reservation of code numbers in it.
            self.codes.forget_reservation();
        }
        match result {
            Ok(results) => {
                for (q, r) in group.into_iter().zip(results) {
                    (q.reply)(r);
                }
            }
            Err(e) if group.len() <= 1 => {
                if let Some(q) = group.pop() {
                    (q.reply)(Err(e));
                }
            }
            Err(TicketError::Db(DbError::Unavailable(cause))) => {
                // The database is gone: filing each alone would fail the same way.
                for q in group {
                    (q.reply)(Err(TicketError::Db(DbError::Unavailable(cause.clone()))));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, reports = group.len(), "group intake failed; filing each report alone");
                // Each report waits for the writer again, which must not happen on the
                // writer's own thread.
                let this = self.clone();
                let refile = move || {
                    for q in group {
                        let me = this.clone();
                        let p = q.prepared;
                        let r = this
                            .db
                            .write(move |conn| {
                                let item = Item {
                                    prepared: &p,
                                    sealed: None,
                                    projection: None,
                                };
                                me.file_group(conn, vec![item])
                            })
                            .and_then(|mut v| v.pop().unwrap_or_else(|| Err(poisoned())));
                        (q.reply)(r);
                    }
                };
                if let Err(e) = std::thread::Builder::new()
                    .name("intake-refile".into())
                    .spawn(refile)
                {
                    tracing::error!(error = %e, "cannot start a thread to refile an intake group");
                }
            }
        }
    }

    /// Files prepared reports in the writer's transaction: each report's own refusal (an
    /// unknown agency, a state-machine refusal) is its result; any database failure fails
    /// the group (the caller rolls it back). A report's event sealed ahead is stored as it is
    /// when its place and tracking code are still free; the reports still queued are then
    /// placed after this group.
    fn file_group(
        &self,
        conn: &mut DbConn,
        group: Vec<Item<'_>>,
    ) -> Result<Vec<Result<Submitted, TicketError>>, TicketError> {
        let preps: Vec<&Prepared> = group.iter().map(|item| item.prepared).collect();
        let mut known_agencies = std::collections::HashMap::new();
        for a in preps.iter().filter_map(|p| p.report.agency.as_ref()) {
            if !known_agencies.contains_key(a.as_str()) {
                let known = store::agency(conn, a.as_str())?.is_some();
                known_agencies.insert(a.as_str().to_owned(), known);
            }
        }
        // Codes were drawn from the counter ahead, so they differ from each other and from
        // every code drawn before. A number can still be taken after a restart that lost its
        // reservation: a report filed alone is looked up; a group of several relies on the
        // unique index on the number instead (a clash fails the group's insert, and its reports
        // are then filed one by one, each looked up, see `answer_group`). Codes stored without
        // a number (other nodes', or drawn at random before numbering) are in no index with
        // them: when the province has any, the drawn codes are looked up among them.
        let names: Vec<&str> = preps.iter().map(|p| p.tracking_code.as_str()).collect();
        let numbers_taken = if preps.len() == 1 {
            let numbers: Vec<i64> = preps.iter().map(|p| p.code_number).collect();
            store::code_numbers_taken(conn, &numbers)?
        } else {
            std::collections::HashSet::new()
        };
        let unnumbered = self.codes.has_unnumbered(conn)?;
        let codes_taken = if unnumbered {
            store::unnumbered_codes_taken(conn, &names)?
        } else {
            std::collections::HashSet::new()
        };
        let clashes: Vec<usize> = preps
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                numbers_taken.contains(&p.code_number)
                    || codes_taken.contains(p.tracking_code.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        let mut fresh = self
            .fresh_tracking_codes(conn, clashes.len(), unnumbered)?
            .into_iter();
        let mut highest = None;
        let mut results: Vec<Option<Result<Submitted, TicketError>>> =
            (0..group.len()).map(|_| None).collect();
        let mut accepted = Vec::new();
        let mut pending = Vec::new();
        for (i, item) in group.into_iter().enumerate() {
            let Item {
                prepared: p,
                sealed,
                projection,
            } = item;
            if let Some(a) = &p.report.agency {
                if known_agencies.get(a.as_str()) != Some(&true) {
                    results[i] = Some(Err(TicketError::UnknownAgency(a.to_string())));
                    continue;
                }
            }
            let clash = clashes.contains(&i);
            let (item, number) = match (sealed, clash) {
                (Some(s), false) => (log::Pending::Sealed(Box::new(s)), p.code_number),
                (_, true) => {
                    let (number, code) = fresh.next().ok_or_else(poisoned)?;
                    (log::Pending::Draft(p.draft(&code)), number)
                }
                (None, false) => (
                    log::Pending::Draft(p.draft(&p.tracking_code)),
                    p.code_number,
                ),
            };
            // The projection built ahead holds the drawn tracking code.
            let mut projection = match projection.filter(|_| !clash) {
                Some(built) => built,
                None => {
                    let change = match &item {
                        log::Pending::Sealed(s) => &s.event().change,
                        log::Pending::Draft(d) => &d.change,
                    };
                    match Projection::create(&self.node, &p.actor, change, p.now, &p.ticket) {
                        Ok(built) => built,
                        Err(e) => {
                            results[i] = Some(Err(e));
                            continue;
                        }
                    }
                }
            };
            projection.row.code_number = Some(number);
            highest = highest.max(Some(number));
            pending.push(item);
            accepted.push((i, projection));
        }
        if let Some(highest) = highest {
            self.codes.reserve(conn, highest)?;
        }
        let now = preps.first().map_or_else(Timestamp::now, |p| p.now);
        let (events, place, appended) =
            log::append_pending(conn, &self.node, self.key.as_ref(), pending, now)?;
        self.intake_resealed.fetch_add(
            appended.resealed as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.place_queued(place, now);
        let mut ticket_rows = Vec::with_capacity(events.len());
        let mut contacts = Vec::new();
        let mut follow_ups = Vec::with_capacity(events.len());
        let mut filed = Vec::with_capacity(events.len());
        for ((i, Projection { state, mut row }), event) in accepted.into_iter().zip(&events) {
            let p = preps[i];
            row.head = event.id.to_string();
            ticket_rows.push(row);
            if self.federated {
                crate::federation::outbox::enqueue_for(
                    conn,
                    &self.node,
                    self.hub.as_ref(),
                    None,
                    &state,
                    event,
                )?;
            }
            if let Some((c, salt, _)) = &p.contact {
                contacts.push(ContactRow {
                    ticket_id: p.ticket.to_string(),
                    name: c.name.clone(),
                    phone: c.phone.clone(),
                    email: c.email.clone(),
                    salt: Some(salt.clone()),
                    stored_at_ms: p.now.millis(),
                });
            }
            follow_ups.push((p.ticket.to_string(), p.follow_up_hash.clone()));
            filed.push(i);
        }
        store::insert_many(conn, &ticket_rows)?;
        store::insert_contacts(conn, &contacts)?;
        store::insert_follow_ups(conn, &follow_ups)?;
        for (i, event) in filed.into_iter().zip(events) {
            results[i] = Some(Ok(Submitted {
                event,
                follow_up_token: preps[i].follow_up_token.clone(),
            }));
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(poisoned())))
            .collect())
    }

    /// After a group took the chain up to `place`: checks that the reports still queued were
    /// sealed in order from there, seals again (without signing) any that were not, and sets
    /// the place the next report takes. Runs on the writer, so a place computed here is the
    /// chain's next unless this transaction fails (then the next group seals again).
    fn place_queued(&self, mut place: log::Place, now: Timestamp) {
        let mut queue = lock(&self.intake);
        let IntakeQueue { items, next } = &mut *queue;
        for q in items.iter_mut() {
            let fits = q.sealed.as_ref().is_some_and(|s| *s.place() == place);
            if !fits {
                let draft = match &q.sealed {
                    Some(s) => s.draft(),
                    None => q.prepared.draft(&q.prepared.tracking_code),
                };
                q.sealed = log::Sealed::new(
                    &self.node,
                    self.key.id().as_str(),
                    draft,
                    place.clone(),
                    now,
                )
                .ok();
            }
            match &q.sealed {
                Some(s) => place = log::Place::after(s),
                None => {
                    // Could not seal (the writer will say why): no place is known ahead.
                    *next = None;
                    return;
                }
            }
        }
        *next = Some(place);
    }

    /// `n` codes drawn from the counter whose numbers are free and, when the province has codes
    /// stored without a number (`unnumbered`), that are none of those.
    fn fresh_tracking_codes(
        &self,
        conn: &mut DbConn,
        n: usize,
        unnumbered: bool,
    ) -> Result<Vec<(i64, TrackingCode)>, TicketError> {
        let mut codes = Vec::with_capacity(n);
        // Each try draws new numbers, so a run of taken numbers (a lost reservation) is passed.
        for _ in 0..64 {
            if codes.len() == n {
                break;
            }
            let drawn = (codes.len()..n)
                .map(|_| self.codes.draw())
                .collect::<Result<Vec<_>, _>>()?;
            let numbers: Vec<i64> = drawn.iter().map(|(n, _)| *n).collect();
            let taken = store::code_numbers_taken(conn, &numbers)?;
            let names: Vec<&str> = drawn.iter().map(|(_, c)| c.as_str()).collect();
            let codes_taken = if unnumbered {
                store::unnumbered_codes_taken(conn, &names)?
            } else {
                std::collections::HashSet::new()
            };
            codes.extend(
                drawn
                    .into_iter()
                    .filter(|(n, c)| !taken.contains(n) && !codes_taken.contains(c.as_str())),
            );
        }
        if codes.len() < n {
            return Err(TicketError::Db(DbError::Unavailable(
                "could not find a free tracking code".into(),
            )));
        }
        Ok(codes)
    }

    /// Takes an action on a ticket. Returns the new event and state.
    #[tracing::instrument(name = "tickets.act", skip_all, fields(ticket = %ticket, role = ?actor.role))]
    pub fn act(
        &self,
        ticket: &TicketId,
        actor: &Actor,
        action: Action,
        now: Timestamp,
    ) -> Result<(Event, TicketState), TicketError> {
        self.check_action_text(&action)?;
        let this = self.clone();
        let (ticket, actor) = (*ticket, actor.clone());
        self.db.write(move |conn| {
            let row = store::by_id(conn, &ticket)?.ok_or(TicketError::NotFound)?;
            let state = row.state()?;
            let change = this.change_for(conn, &state, action, now)?;
            if actor.role != Role::Citizen
                && state.handler != this.node
                && !matches!(change, Change::SlaBreached { .. })
            {
                return Err(TicketError::NotHandler(state.handler.to_string()));
            }
            this.append_change(conn, &ticket, &row, &state, &actor, change, now)
        })
    }

    /// Erases the reporter's personal data of a ticket that originated here: deletes the
    /// contact and its salt and appends an `erased` event, in one transaction. The `created`
    /// event keeps its commitment, so every signature still verifies.
    #[tracing::instrument(name = "tickets.erase", skip_all, fields(ticket = %ticket))]
    pub fn erase(
        &self,
        ticket: &TicketId,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Event, TicketError> {
        let this = self.clone();
        let (ticket, actor) = (*ticket, actor.clone());
        let event = self.db.write(move |conn| -> Result<Event, TicketError> {
            let row = store::by_id(conn, &ticket)?.ok_or(TicketError::NotFound)?;
            let state = row.state()?;
            let (event, _) =
                this.append_change(conn, &ticket, &row, &state, &actor, Change::Erased {}, now)?;
            store::delete_contact(conn, &ticket)?;
            Ok(event)
        })?;
        if let Err(e) = self.db.scrub() {
            tracing::error!(error = %e, "erased data may remain on disk until the next checkpoint or VACUUM");
        }
        Ok(event)
    }

    fn check_action_text(&self, action: &Action) -> Result<(), TicketError> {
        let max = self.limits.text_max_chars;
        match action {
            Action::Postpone { note } | Action::NotOurAuthority { note } => {
                check_text("note", note, max)
            }
            Action::Respond { message }
            | Action::Resolve { message }
            | Action::Reply { message }
            | Action::Reopen { message } => check_text("message", message, max),
            Action::Rate { rating } if !(1..=5).contains(rating) => {
                Err(invalid("rating", "must be between 1 and 5"))
            }
            _ => Ok(()),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one transaction step with its whole context"
    )]
    fn append_change(
        &self,
        conn: &mut DbConn,
        ticket: &TicketId,
        row: &TicketRow,
        state: &TicketState,
        actor: &Actor,
        change: Change,
        now: Timestamp,
    ) -> Result<(Event, TicketState), TicketError> {
        let next = state.apply_from(&self.node, actor, &change, now)?;
        let parents = vec![
            crate::domain::EventId::parse(&row.head).map_err(|e| invalid("head", e.to_string()))?,
        ];
        let draft = Draft {
            ticket: *ticket,
            parents,
            at: now,
            actor: actor.clone(),
            change,
            pii: None,
        };
        let event = log::append(conn, &self.node, self.key.as_ref(), draft, now)?;
        store::update(conn, &TicketRow::from_state(ticket, &next, &event.id)?)?;
        if self.federated {
            crate::federation::outbox::enqueue_for(
                conn,
                &self.node,
                self.hub.as_ref(),
                Some(state),
                &next,
                &event,
            )?;
        }
        Ok((event, next))
    }

    fn change_for(
        &self,
        conn: &mut DbConn,
        state: &TicketState,
        action: Action,
        now: Timestamp,
    ) -> Result<Change, TicketError> {
        let sla = &self.sla;
        Ok(match action {
            Action::Verify => Change::Verified {},
            Action::Dispatch { agency } => {
                let a = super::agencies::get(conn, agency.as_str())?
                    .ok_or_else(|| TicketError::UnknownAgency(agency.to_string()))?;
                if a.disabled {
                    return Err(TicketError::AgencyUnavailable {
                        agency: a.code,
                        reason: "is disabled on this node; choose another agency (an admin \
                                 enables it with `lapor-node agencies enable`)"
                            .into(),
                    });
                }
                if !self.members.contains(&a.owner_node) {
                    return Err(TicketError::AgencyUnavailable {
                        agency: a.code,
                        reason: format!(
                            "is handled by node {}, which is not a member of this node's \
                             federation (not among [[federation.peers]]); the ticket would \
                             never reach it",
                            a.owner_node
                        ),
                    });
                }
                let handler = NodeId::parse(&a.owner_node)
                    .map_err(|e| invalid("agency.owner_node", e.to_string()))?;
                Change::Dispatched {
                    agency,
                    handler,
                    response_due: self.due(now, sla.response_working_days),
                }
            }
            Action::Postpone { note } => Change::Postponed { note },
            Action::Archive { reason } => Change::Archived { reason },
            Action::NotOurAuthority { note } => Change::NotOurAuthority { note },
            Action::Start => Change::Started {},
            Action::Respond { message } => Change::Responded {
                message,
                auto_close_due: self.due(now, sla.auto_close_working_days),
            },
            Action::Resolve { message } => Change::Resolved {
                message,
                auto_close_due: self.due(now, sla.auto_close_working_days),
                reopen_until: self.due(now, sla.reopen_window_working_days),
            },
            Action::Reply { message } => Change::CitizenReplied {
                message,
                response_due: (state.status == crate::domain::Status::Responded)
                    .then(|| self.due(now, sla.response_working_days)),
            },
            Action::Rate { rating } => Change::Rated { rating },
            Action::Reopen { message } => Change::Reopened {
                message,
                response_due: self.due(now, sla.response_working_days),
            },
        })
    }

    /// Records passed deadlines and auto-closes tickets, up to `max_tickets` per call. Each
    /// ticket is its own transaction; a ticket that fails is logged and left for the next sweep.
    #[tracing::instrument(name = "tickets.sla_sweep", skip_all)]
    pub fn sla_sweep(&self, now: Timestamp, max_tickets: usize) -> Result<Swept, TicketError> {
        let mut swept = Swept::default();
        let mut after: Option<(i64, String)> = None;
        let mut seen = 0usize;
        while seen < max_tickets {
            let batch = {
                let mut conn = self.db.read()?;
                store::sweep_candidates(
                    &mut conn,
                    self.node.as_str(),
                    now.millis(),
                    after.as_ref(),
                    200,
                )?
            };
            let Some(last) = batch.last() else { break };
            after = Some((last.next_due_ms.unwrap_or(i64::MIN), last.id.clone()));
            for row in batch {
                seen += 1;
                let Ok(id) = TicketId::parse(&row.id) else {
                    continue;
                };
                match self.sweep_one(&id, now) {
                    Ok(s) => {
                        swept.breaches += s.breaches;
                        swept.closed += s.closed;
                    }
                    Err(e) => {
                        tracing::warn!(ticket = %id, error = %e, "sla sweep skipped a ticket");
                    }
                }
            }
        }
        Ok(swept)
    }

    fn sweep_one(&self, ticket: &TicketId, now: Timestamp) -> Result<Swept, TicketError> {
        let this = self.clone();
        let ticket = *ticket;
        self.db.write(move |conn| {
            let mut swept = Swept::default();
            let Some(mut row) = store::by_id(conn, &ticket)? else {
                return Ok(swept);
            };
            let mut state = row.state()?;
            if state.handler != this.node {
                return Ok(swept);
            }
            let system = Actor::system();
            for step in [SlaStep::VerifyDispatch, SlaStep::Response, SlaStep::Overall] {
                let due = state.breach_due(step).filter(|d| *d <= now);
                if due.is_some() && state.breaches & step.bit() == 0 {
                    let (event, next) = this.append_change(
                        conn,
                        &ticket,
                        &row,
                        &state,
                        &system,
                        Change::SlaBreached { step },
                        now,
                    )?;
                    row.head = event.id.to_string();
                    state = next;
                    swept.breaches += 1;
                }
            }
            if state.auto_close_due.is_some_and(|d| d <= now) {
                let change = Change::Closed {
                    reason: CloseReason::NoReply,
                };
                if state.apply(&system, &change, now).is_ok() {
                    this.append_change(conn, &ticket, &row, &state, &system, change, now)?;
                    swept.closed += 1;
                }
            }
            // Nothing was due (a row laid out before `next_due_ms` was exact, or a change the
            // state machine refused): the row gets its exact next time, so it is not read again
            // before then.
            if swept == Swept::default() {
                let exact = state.next_due().map(Timestamp::millis);
                if row.next_due_ms != exact {
                    store::set_next_due(conn, &row.id, exact)?;
                }
            }
            Ok(swept)
        })
    }
}
