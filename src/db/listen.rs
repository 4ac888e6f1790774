//! Commit notices across processes (PostgreSQL). Several processes of one node share a
//! database (the hub behind a load balancer, decision 99); a row one of them commits for
//! another's worker — an outbox row for the peer whose delivery lease the other holds — used to
//! wait for that worker's idle check (≤ 5 s). Now the writer follows such a commit with
//! `NOTIFY lapor_commits, '<token>'`, and every process keeps one connection that `LISTEN`s on
//! the channel and ticks its own [`super::Db::notices`] when a notice from another handle
//! arrives (its own token is skipped: its writer has ticked already).
//!
//! ```text
//!  process A writer: COMMIT ─► NOTIFY lapor_commits 'a1f…'
//!                                      │ (PostgreSQL, same database)
//!  process B listener: LISTEN lapor_commits ─► token ≠ B's ─► B.notices += 1 ─► workers wake
//! ```
//!
//! Best effort by design: a lost notice (the listener reconnecting, the `NOTIFY` failing)
//! delays work until the idle check, it never loses it. The listener polls its socket every
//! [`POLL`] (`PQconsumeInput` reads what has arrived without a round trip to the server).

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use super::writer::WriterStats;
use super::{ConnManager, DbConn};

/// The channel.
pub const CHANNEL: &str = "lapor_commits";

/// How often the listener looks for notices.
pub const POLL: Duration = Duration::from_millis(100);

/// Longest wait between two attempts to reconnect the listener.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// A fresh token naming one database handle (hex of 64 random bits).
#[must_use]
pub fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Sends the notice after a commit (on the writer's connection, outside any transaction).
///
/// # Errors
///
/// The statement failed.
pub fn announce(conn: &mut PgConnection, token: &str) -> diesel::QueryResult<()> {
    // The token is our own hex: nothing to quote.
    conn.batch_execute(&format!("NOTIFY {CHANNEL}, '{token}'"))
}

/// Starts the listener thread; it stops when `alive` is gone, then drops `open`.
///
/// # Errors
///
/// The thread could not be started.
pub fn spawn(
    manager: ConnManager,
    token: String,
    stats: Arc<WriterStats>,
    alive: std::sync::Weak<()>,
    open: Arc<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("db-listen".into())
        .spawn(move || {
            listen(&manager, &token, &stats, &alive);
            drop(open);
        })
        .map(|_| ())
}

fn connect(manager: &ConnManager) -> Result<PgConnection, String> {
    match manager.open().map_err(|e| e.to_string())? {
        DbConn::Pg(mut c) => {
            c.batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(|e| e.to_string())?;
            Ok(c)
        }
        DbConn::Sqlite(_) => Err("commit notices are for PostgreSQL only".into()),
    }
}

fn listen(manager: &ConnManager, token: &str, stats: &WriterStats, alive: &std::sync::Weak<()>) {
    let mut conn: Option<PgConnection> = None;
    let mut backoff = POLL;
    let mut logged = false;
    while alive.strong_count() > 0 {
        let Some(c) = conn.as_mut() else {
            match connect(manager) {
                Ok(c) => {
                    if logged {
                        tracing::info!("commit notice listener reconnected");
                    }
                    (conn, backoff, logged) = (Some(c), POLL, false);
                }
                Err(e) => {
                    if !logged {
                        tracing::warn!(error = %e, "commit notice listener cannot connect; other processes' work waits for the idle check");
                        logged = true;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                }
            }
            continue;
        };
        let mut others = false;
        let mut lost = None;
        for n in c.notifications_iter() {
            match n {
                Ok(n) => others |= n.payload != token,
                Err(e) => {
                    lost = Some(e);
                    break;
                }
            }
        }
        if others {
            stats.notices.send_modify(|n| *n = n.wrapping_add(1));
        }
        if let Some(e) = lost {
            tracing::warn!(error = %e, "commit notice listener lost its connection; reconnecting");
            conn = None;
            logged = true;
            continue;
        }
        std::thread::sleep(POLL);
    }
}
