//! Delivery (push): a destination's outbox sent in capped, compressed batches, several in
//! flight; acknowledged rows leave the outbox, refused rows stay marked with the reason,
//! deferred rows are sent again later. A failed round persists the peer's backoff.

use std::collections::HashMap;

use super::client::{Federation, blocking, read_json};
use super::protocol::{ANSWER_EXCEPTIONS, BatchAnswer, Outcome};
use super::{FedError, dictionary, outbox, peers};
use crate::config::PeerSettings;
use crate::domain::{NodeId, Timestamp};

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Events sent.
    pub sent: usize,
    /// Acknowledged (accepted or duplicate) and removed from the outbox.
    pub acknowledged: usize,
    /// Deferred by the receiver (kept, sent again).
    pub deferred: usize,
    /// Refused by the receiver (kept, marked).
    pub refused: usize,
}

impl Federation {
    /// One delivery round to `dest`: the outbox rows pending when each batch is built, streamed
    /// through a window of `in_flight` concurrent batches — as soon as one is answered its rows
    /// are acknowledged (or marked refused) and the next batch goes out, so neither side waits
    /// for the slowest batch of a group. Deferred rows stay for the next round. The round stops
    /// sending at the first transport error, settles the batches still in flight and returns
    /// that error (the peer's backoff is recorded).
    /// Rows `dest` deferred wait their turn ([`outbox::deferral_wait_ms`]): the background
    /// worker sends them again only when due, never in a loop.
    pub async fn deliver_once(&self, dest: &NodeId) -> Result<Delivered, FedError> {
        self.deliver_round(dest, false).await
    }

    /// One round as [`Self::deliver_once`]; with `everything`, rows waiting after a deferral
    /// go too.
    #[tracing::instrument(name = "federation.deliver", skip_all, fields(peer = %dest))]
    async fn deliver_round(&self, dest: &NodeId, everything: bool) -> Result<Delivered, FedError> {
        use futures_util::StreamExt as _;
        use futures_util::future::BoxFuture;
        /// What finished in the window.
        enum Step {
            /// The next batch was built (or the queue is exhausted, or reading it failed).
            Built(Result<Vec<outbox::Built>, FedError>),
            /// A batch was answered (or its sending failed), after so long (`None`: no
            /// connection could be made).
            Answered(
                outbox::Built,
                Result<Vec<Outcome>, FedError>,
                Option<std::time::Duration>,
            ),
            /// A batch's answer was recorded in the outbox.
            Settled(Result<Delivered, FedError>),
        }
        let peer = self.peer(dest)?;
        let max_events = self.settings.batch_max_events;
        let started = std::time::Instant::now();
        let mut wire_bytes = 0_u64;
        let max_bytes = self.settings.batch_max_bytes;
        // What the link showed so far sizes each batch as it is built: a long round on a thin
        // link moves to larger, more thoroughly compressed batches as soon as its rate is known.
        let build = |after: i64| -> BoxFuture<'static, Step> {
            let (db, d) = (self.db.clone(), dest.to_string());
            let cap = self.batch_events(dest, max_events);
            let spec = outbox::BatchSpec {
                limit: i64::try_from(cap).unwrap_or(i64::MAX),
                max_events: cap,
                max_bytes,
                due: if everything {
                    Timestamp::from_millis(i64::MAX)
                } else {
                    Timestamp::now()
                },
                level: self.compression_level(dest),
                dictionary: self.uses_dictionary(dest),
            };
            Box::pin(async move {
                Step::Built(blocking(move || outbox::build_batches(&db, &d, after, spec)).await)
            })
        };
        // The link's rate, measured while the round runs: bytes answered over at least 2 s,
        // counted from the first answer (so that the handshakes and the first round trip, when
        // nothing was answered yet, do not count as a slow link).
        let mut meter: Option<(std::time::Instant, u64, u64)> = None;
        let mut after = 0i64;
        let mut building = true;
        let mut sending = 0usize;
        let mut exhausted = false;
        let mut first_err: Option<FedError> = None;
        let mut report = Delivered::default();
        let mut steps = futures_util::stream::FuturesUnordered::<BoxFuture<'_, Step>>::new();
        steps.push(build(after));
        while let Some(step) = steps.next().await {
            match step {
                Step::Built(Ok(mut built)) if !built.is_empty() => {
                    building = false;
                    let batch = built.swap_remove(0);
                    after = batch
                        .rows
                        .iter()
                        .map(|(row, _)| *row)
                        .max()
                        .unwrap_or(after);
                    sending += 1;
                    let peer = &peer;
                    wire_bytes += u64::try_from(batch.body.len()).unwrap_or(0);
                    steps.push(Box::pin(async move {
                        let sent = std::time::Instant::now();
                        let mut connect_failed = false;
                        let answer = self.send_batch(peer, &batch, &mut connect_failed).await;
                        let took = (!connect_failed).then(|| sent.elapsed());
                        Step::Answered(batch, answer, took)
                    }));
                }
                Step::Built(Ok(_)) => {
                    building = false;
                    exhausted = true;
                }
                Step::Built(Err(e)) | Step::Settled(Err(e)) => {
                    building = false;
                    first_err.get_or_insert(e);
                }
                Step::Answered(batch, Ok(results), took) => {
                    let took = took.unwrap_or_default();
                    sending -= 1;
                    match meter.as_mut() {
                        None => meter = Some((std::time::Instant::now(), 0, 0)),
                        Some((since, bytes, events)) => {
                            *bytes += u64::try_from(batch.body.len()).unwrap_or(0);
                            *events += u64::try_from(batch.rows.len()).unwrap_or(0);
                            let secs = since.elapsed().as_secs_f64();
                            if secs >= 2.0 && *bytes >= 16 * 1024 {
                                self.rate_measured(dest, *bytes, secs, *events);
                                meter = Some((std::time::Instant::now(), 0, 0));
                            }
                        }
                    }
                    self.batch_answered(dest, Some(took), max_events);
                    report.sent += batch.rows.len();
                    steps.push(Box::pin(async move {
                        Step::Settled(self.settle_batch(dest, &batch, &results).await)
                    }));
                }
                Step::Answered(_, Err(e), took) => {
                    sending -= 1;
                    // A batch cut in transfer says the link stays up for less than it needs:
                    // the next ones are smaller. A peer that could not be reached at all says
                    // nothing about the batch size (an outage must not leave it at its minimum).
                    if took.is_some() {
                        self.batch_answered(dest, None, max_events);
                    }
                    first_err.get_or_insert(e);
                }
                Step::Settled(Ok(settled)) => {
                    report.acknowledged += settled.acknowledged;
                    report.refused += settled.refused;
                    report.deferred += settled.deferred;
                }
            }
            // Build the next batch while the window has room: one build at a time (each
            // starts after the rows the previous one took).
            if !building && !exhausted && first_err.is_none() && sending < self.window(dest) {
                building = true;
                steps.push(build(after));
            }
        }
        drop(steps);
        let now = Timestamp::now();
        let (db, d) = (self.db.clone(), dest.clone());
        let failed = first_err.as_ref().map(ToString::to_string);
        let settings = self.settings.clone();
        let delivered = report.acknowledged;
        let secs = started.elapsed().as_secs_f64();
        let sample = peers::Sample {
            bytes: wire_bytes,
            secs,
            events: u64::try_from(report.sent).unwrap_or(0),
        };
        if failed.is_some() {
            self.forget_contact(dest);
        }
        // A round that delivered something made progress, even if a batch then failed: the
        // backoff is for a peer that cannot be reached, not for a slow or flapping link.
        if failed.is_some() || report.sent > 0 {
            blocking(move || match failed {
                Some(msg) if delivered == 0 => peers::failure(&db, &d, now, &msg, &settings),
                _ => peers::success(&db, &d, now, delivered, Some(sample)),
            })
            .await?;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Applies a peer's answer to one batch: acknowledged rows leave the outbox, refused rows
    /// are marked with the reason, the rest (deferred or unanswered) stay.
    async fn settle_batch(
        &self,
        dest: &NodeId,
        batch: &outbox::Built,
        results: &[Outcome],
    ) -> Result<Delivered, FedError> {
        let by_id: HashMap<&str, &Outcome> = results.iter().map(|o| (o.id(), o)).collect();
        let mut acks = Vec::new();
        let mut deferred = Vec::new();
        let mut refusals = Vec::new();
        let mut settled = Delivered::default();
        for (row, event_id) in &batch.rows {
            match by_id.get(event_id.as_str()) {
                Some(o) if o.acknowledged() => acks.push(*row),
                Some(Outcome::Rejected { reason, detail, .. }) => {
                    refusals.push((*row, format!("{reason}: {detail}")));
                }
                _ => deferred.push(*row),
            }
        }
        settled.deferred = deferred.len();
        settled.acknowledged = acks.len();
        settled.refused = refusals.len();
        let db = self.db.clone();
        blocking(move || {
            db.write(move |c| {
                outbox::acknowledge(c, &acks)?;
                outbox::defer(c, &deferred, Timestamp::now().millis())?;
                for (row, reason) in &refusals {
                    outbox::refuse(c, *row, reason)?;
                }
                Ok::<_, FedError>(())
            })
        })
        .await?;
        self.metrics.inc(
            "lapor_federation_delivered_total",
            &[("peer", dest.as_str())],
            u64::try_from(settled.acknowledged).unwrap_or(0),
        );
        if settled.refused > 0 {
            self.metrics.inc(
                "lapor_federation_refused_by_peer_total",
                &[("peer", dest.as_str())],
                u64::try_from(settled.refused).unwrap_or(0),
            );
        }
        Ok(settled)
    }

    async fn send_batch(
        &self,
        peer: &PeerSettings,
        batch: &outbox::Built,
        connect_failed: &mut bool,
    ) -> Result<Vec<Outcome>, FedError> {
        let resp = self
            .http()
            .post(Self::url(peer, "/federation/v1/events"))
            .header("content-type", "application/json")
            .header("content-encoding", "zstd")
            .header("accept-encoding", "zstd")
            .header(ANSWER_EXCEPTIONS.0, ANSWER_EXCEPTIONS.1)
            .header(
                dictionary::HEADER,
                dictionary::header_value().unwrap_or("0"),
            )
            .timeout(self.timeout_for(batch.body.len() + 100 * batch.rows.len()))
            .body(batch.body.clone())
            .send()
            .await
            .map_err(|e| {
                *connect_failed = e.is_connect();
                Self::unreachable(peer, &e)
            })?;
        self.dictionary_named(&peer.id, super::client::dictionary_of(&resp));
        self.noticed(&peer.id, &resp);
        let answer: BatchAnswer = read_json(peer, resp).await?;
        if answer.batch != batch.id {
            return Err(FedError::BadAnswer {
                peer: peer.id.to_string(),
                cause: format!(
                    "answered for batch {} instead of {}",
                    answer.batch, batch.id
                ),
            });
        }
        let ids: Vec<&str> = batch.rows.iter().map(|(_, id)| id.as_str()).collect();
        answer.outcomes(&ids).ok_or_else(|| FedError::BadAnswer {
            peer: peer.id.to_string(),
            cause: "an answer of exceptions that does not add up to the batch".into(),
        })
    }

    /// Delivers to `dest` until its queue holds nothing more that can be delivered now, rows
    /// waiting after a deferral included (an operator's or a test's explicit round). Returns the
    /// total; stops at the first transport error.
    pub async fn drain(&self, dest: &NodeId) -> Result<Delivered, FedError> {
        let mut total = Delivered::default();
        loop {
            let r = self.deliver_round(dest, true).await?;
            total.sent += r.sent;
            total.acknowledged += r.acknowledged;
            total.deferred += r.deferred;
            total.refused += r.refused;
            if r.acknowledged == 0 {
                return Ok(total);
            }
        }
    }
}
