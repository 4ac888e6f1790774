//! Filing reports, grouped: the part that runs on the caller's thread.
//!
//! ```text
//!  caller ──submit──► prepare (checks, ids, deadlines, contact commitment, token)
//!                        │  seal the `created` event at the queue's next chain place
//!                        ▼
//!                   IntakeQueue ◄── every report that arrives meanwhile
//!                        │  the first report of an empty queue sends one writer job
//!                        ▼
//!   writer thread:  group::file_group (one transaction: codes, chain, rows, outbox)
//!                        │  place_queued: re-seal what is still queued after the group
//!                        ▼
//!                   answer_group ──► each caller's reply (refile one by one if the group failed)
//! ```
//!
//! A report refused on its own fails alone; if the group's statements fail, the group is rolled
//! back and each report is filed again on its own, so one report's fault never fails another.
//! See decisions 24 and 25 in `docs/ARCHITECTURE.md`.

mod group;

use std::sync::atomic::AtomicU64;

use super::error::TicketError;
use super::handle::Tickets;
use super::input::{Contact, NewReport, hash_token};
use super::model::TicketRow;
use crate::db::DbError;
use crate::domain::{
    Actor, Change, Created, Event, NodeId, TicketId, TicketState, Timestamp, TrackingCode,
};
use crate::event_log::store::{self as log, Draft};

/// A filed report: its `created` event and the citizen's follow-up token (shown once; only
/// its SHA-256 is stored).
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The `created` event.
    pub event: Event,
    /// The secret the citizen presents to follow up.
    pub follow_up_token: String,
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

/// Work a channel adds to the transaction that stores its report's `created` event (or its
/// follow-up's event): it runs after the event is stored, and its failure rolls the whole
/// transaction back. The SMS channel records the gateway's message id and queues its answer
/// this way, so a message is filed and answered exactly once. It may run more than once (a
/// group that fails is filed again report by report), each time in a new transaction.
pub type TxHook =
    std::sync::Arc<dyn Fn(&mut crate::db::DbConn, &Event) -> Result<(), TicketError> + Send + Sync>;

/// A [`TxHook`] with a `Debug` that names it only.
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) TxHook);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxHook")
    }
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

/// The intake state of a node: the queue and the counters.
#[derive(Debug, Default)]
pub(super) struct Intake {
    /// Reports waiting for the writer: the first to arrive in an empty queue sends one writer
    /// job that files every report queued by the time it runs (see [`Tickets::submit`]).
    queue: std::sync::Mutex<IntakeQueue>,
    /// Intake groups written, the reports queued in them, and the reports whose event was
    /// placed and signed again by the writer (its place ahead was taken).
    groups: AtomicU64,
    reports: AtomicU64,
    resealed: AtomicU64,
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
    /// The channel's work in the filing transaction.
    hook: Option<Hook>,
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

impl Tickets {
    /// Intake since start.
    #[must_use]
    pub fn intake_stats(&self) -> IntakeStats {
        use std::sync::atomic::Ordering::Relaxed;
        IntakeStats {
            groups: self.intake.groups.load(Relaxed),
            reports: self.intake.reports.load(Relaxed),
            resealed: self.intake.resealed.load(Relaxed),
        }
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
        self.submit_with(report, actor, now, None)
    }

    /// [`Tickets::submit`] with the channel's work in the filing transaction ([`TxHook`]).
    pub fn submit_with(
        &self,
        report: &NewReport,
        actor: &Actor,
        now: Timestamp,
        hook: Option<TxHook>,
    ) -> Result<Submitted, TicketError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.enqueue(report, actor, now, hook, move |r| {
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
        self.enqueue(report, actor, now, None, move |r| {
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
        hook: Option<TxHook>,
        reply: impl FnOnce(Result<Submitted, TicketError>) + Send + 'static,
    ) -> Result<(), TicketError> {
        let reply: Reply = Box::new(reply);
        self.hold.check()?;
        let mut prepared = self.prepare(report, actor, now)?;
        prepared.hook = hook.map(Hook);
        let draft = prepared.draft(&prepared.tracking_code);
        // A report the state machine refuses gets no projection: the writer refuses it.
        let projection =
            Projection::create(&self.node, actor, &draft.change, now, &prepared.ticket).ok();
        let lead = {
            let mut queue = lock(&self.intake.queue);
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
        report.check(&self.limits)?;
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
            .filter(|c| c.is_given())
            .and_then(|c| {
                let salt = crate::crypto::pii::new_salt_bytes();
                crate::crypto::pii::commit_strings(&salt, &c.members())
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
            hook: None,
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
                let mut group = std::mem::take(&mut lock(&this.intake.queue).items);
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
        for q in std::mem::take(&mut lock(&self.intake.queue).items) {
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
            self.intake.groups.fetch_add(1, Relaxed);
            self.intake.reports.fetch_add(group.len() as u64, Relaxed);
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
}
