//! Leases on federation work, for several processes of one node sharing a PostgreSQL
//! database (a national hub behind a load balancer).
//!
//! Every process accepts batches and API requests, but delivery to a peer and catch-up are
//! done by one process at a time: two workers sending the same outbox rows would double the
//! bytes on the peer's link (each copy is acknowledged as a duplicate, so nothing breaks, but
//! a 2G link pays twice). A worker holds the lease `push:<peer>` (`pull` for catch-up) before
//! a round: a row in `work_leases` naming its process and a deadline [`LEASE`] ahead, renewed
//! once less than half of it is left. A process that dies or stops leaves its leases to lapse;
//! another process's worker takes the work over within [`LEASE`] plus its wait. Taking and
//! renewing run in the writer's transaction, which on PostgreSQL holds the writers' advisory
//! lock, so two processes never both take a lapsed lease.
//!
//! SQLite has one process per database file (the node lock, `ops::lock`): every lease is
//! held without touching the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::FedError;
use crate::db::schema::work_leases;
use crate::db::{Backend, Db};
use crate::domain::Timestamp;

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(30);

/// How long a worker that does not hold its lease waits before asking again.
pub const WAIT: Duration = Duration::from_secs(5);

/// This process's leases.
#[derive(Debug)]
pub struct Leases {
    owner: String,
    /// Leases held, with the (local) time after which they must be renewed.
    held: Mutex<HashMap<String, Instant>>,
}

impl Default for Leases {
    fn default() -> Self {
        Self::new()
    }
}

impl Leases {
    /// A new holder: the process id and a random suffix name it (a restarted process with a
    /// reused pid is another holder).
    #[must_use]
    pub fn new() -> Self {
        Self {
            owner: format!("pid {} #{:08x}", std::process::id(), rand::random::<u32>()),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Who holds leases as this process.
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether this process holds the lease `name` now, taking or renewing it when it is free,
    /// lapsed or ours.
    ///
    /// # Errors
    ///
    /// The database could not be written.
    pub fn hold(&self, db: &Db, name: &str) -> Result<bool, FedError> {
        if db.backend() == Backend::Sqlite {
            return Ok(true);
        }
        let now = Instant::now();
        if self
            .held
            .lock()
            .map_err(|_| poisoned())?
            .get(name)
            .is_some_and(|renew_at| now < *renew_at)
        {
            return Ok(true);
        }
        let at = Timestamp::now().millis();
        let until = at + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let (n, me) = (name.to_owned(), self.owner.clone());
        let got = db.write(move |c| -> Result<bool, FedError> {
            let row: Option<(String, i64)> = work_leases::table
                .find(&n)
                .select((work_leases::owner, work_leases::until_ms))
                .first(c)
                .optional()?;
            match row {
                None => {
                    diesel::insert_into(work_leases::table)
                        .values((
                            work_leases::name.eq(&n),
                            work_leases::owner.eq(&me),
                            work_leases::until_ms.eq(until),
                        ))
                        .execute(c)?;
                    Ok(true)
                }
                Some((owner, lapses)) if owner == me || lapses <= at => {
                    if owner != me {
                        tracing::info!(lease = %n, from = %owner, "federation work taken over from a lapsed lease");
                    }
                    diesel::update(work_leases::table.find(&n))
                        .set((work_leases::owner.eq(&me), work_leases::until_ms.eq(until)))
                        .execute(c)?;
                    Ok(true)
                }
                Some(_) => Ok(false),
            }
        })?;
        let mut held = self.held.lock().map_err(|_| poisoned())?;
        if got {
            held.insert(name.to_owned(), now + LEASE / 2);
        } else {
            held.remove(name);
        }
        Ok(got)
    }

    /// Gives up every lease this process holds (a clean stop), so another process takes the
    /// work at once instead of after [`LEASE`].
    pub fn release_all(&self, db: &Db) {
        if db.backend() == Backend::Sqlite {
            return;
        }
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
        let me = self.owner.clone();
        let released = db.write(move |c| -> Result<usize, FedError> {
            Ok(diesel::delete(work_leases::table.filter(work_leases::owner.eq(&me))).execute(c)?)
        });
        if let Err(e) = released {
            tracing::debug!(error = %e, "federation leases not released; they lapse");
        }
    }
}

fn poisoned() -> FedError {
    FedError::Db(crate::db::DbError::Unavailable(
        "the lease table lock is poisoned".to_owned(),
    ))
}
