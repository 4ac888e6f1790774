//! A province's status sender: its own task, never in delivery's way.
//!
//! ```text
//!  every CHECK_EVERY: own head + quarantine count (one cheap read)
//!        │ changed (at most once per MIN_GAP), or status_interval_secs since the last one
//!        ▼
//!  status::build ─► status::sign ─► zstd ─► POST hub/federation/v1/status (short timeout)
//!        failures: a debug line and lapor_federation_status_sent_total{result="failed"}
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::client::{Federation, blocking, dictionary_of};
use super::{FedError, dictionary, protocol, status};
use crate::crypto::keys::NodeKey;
use crate::db::schema::{chain_heads, quarantine};
use crate::domain::{NodeId, Timestamp};

/// How often the sender looks for a change worth telling.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The fewest seconds between two statuses sent for changes.
const MIN_GAP: Duration = Duration::from_secs(5);
/// A status request's timeout: a status is a few hundred bytes.
const TIMEOUT: Duration = Duration::from_secs(20);
/// After a failed send, the next try comes this soon (or at the interval, if shorter).
const RETRY_AFTER: Duration = Duration::from_secs(15);

/// What one status send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSent {
    /// Bytes of the body on the wire (compressed).
    pub bytes: usize,
    /// Bytes of the signed JSON before compression.
    pub json_bytes: usize,
}

impl Federation {
    /// Builds, signs and sends this node's status to the hub once.
    ///
    /// # Errors
    ///
    /// No hub is configured, the database could not be read, or the hub could not be reached
    /// or refused the status ([`FedError::Refused`] with its code).
    pub async fn send_status(&self, key: &Arc<NodeKey>) -> Result<StatusSent, FedError> {
        let hub = self
            .settings
            .hub()
            .ok_or_else(|| FedError::UnknownPeer("(no hub configured)".into()))?
            .clone();
        let (db, me, key2) = (self.db.clone(), self.node.clone(), key.clone());
        let peers: Vec<NodeId> = self.peers().into_iter().map(|p| p.id).collect();
        let json = blocking(move || {
            let mut conn = db.read()?;
            let s = status::build(&mut conn, &me, &peers, Timestamp::now())?;
            let v = status::sign(&s, &key2).map_err(|cause| FedError::BadAnswer {
                peer: me.to_string(),
                cause,
            })?;
            Ok(serde_json::to_vec(&v).unwrap_or_default())
        })
        .await?;
        let body = if self.uses_dictionary(&hub.id) {
            dictionary::compress(&json, protocol::THOROUGH)
        } else {
            protocol::compress_at(&json, protocol::THOROUGH)
        };
        let sent = StatusSent {
            bytes: body.len(),
            json_bytes: json.len(),
        };
        let resp = self
            .http()
            .post(Self::url(&hub, "/federation/v1/status"))
            .header("content-type", "application/json")
            .header("content-encoding", "zstd")
            .header(
                dictionary::HEADER,
                dictionary::header_value().unwrap_or("0"),
            )
            .timeout(TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| Self::unreachable(&hub, &e))?;
        self.dictionary_named(&hub.id, dictionary_of(&resp));
        let _: protocol::StatusAnswer = super::client::read_json(&hub, resp).await?;
        Ok(sent)
    }

    /// Sends this node's status to the hub every `status_interval_secs`, and within
    /// 5 s of a new chain head or a change in its quarantine. Runs until dropped;
    /// failures are logged at debug level and counted, nothing else waits on it.
    pub async fn run_status(self, key: Arc<NodeKey>) {
        if self.settings.hub().is_none() {
            return;
        }
        let every = Duration::from_secs(self.settings.status_interval_secs.max(1));
        let retry = RETRY_AFTER.min(every);
        // When the last status was sent (or tried: a failure counts from `retry` before the
        // interval's end, so the next try comes `retry` later) and what it told.
        let mut last: Option<(Instant, (i64, i64))> = None;
        loop {
            let (db, me) = (self.db.clone(), self.node.to_string());
            let now_seen = blocking(move || {
                let mut c = db.read()?;
                let head: Option<i64> = chain_heads::table
                    .find(&me)
                    .select(chain_heads::seq)
                    .first(&mut c)
                    .optional()?;
                let q: i64 = quarantine::table.count().get_result(&mut c)?;
                Ok((head.unwrap_or(0), q))
            })
            .await
            .ok();
            let due = match (&last, now_seen) {
                (None, _) => true,
                (Some((at, _)), _) if at.elapsed() >= every => true,
                (Some((at, seen)), Some(now)) => *seen != now && at.elapsed() >= MIN_GAP,
                (Some(_), None) => false,
            };
            if due {
                let (result, at) = match self.send_status(&key).await {
                    Ok(s) => {
                        tracing::debug!(bytes = s.bytes, "status sent to the hub");
                        ("ok", Instant::now())
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "status not sent to the hub");
                        let now = Instant::now();
                        ("failed", now.checked_sub(every - retry).unwrap_or(now))
                    }
                };
                self.metrics.inc(
                    "lapor_federation_status_sent_total",
                    &[("result", result)],
                    1,
                );
                last = Some((at, now_seen.unwrap_or_default()));
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}
