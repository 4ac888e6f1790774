//! `lapor-node sync --peer ID`: the running node's delivery to one peer, watched until its
//! queue is empty, with a progress bar.
//!
//! ```text
//!   sync ── retry now ──► peers table ◄── the running node's worker (tries within 5 s)
//!     └──── every second: outbox depth, rate, last error ──► bar on the terminal
//! ```
//!
//! It does not deliver by itself: the node that holds the queue does (a second sender beside
//! a running node would only race it), so a node that is not running is an error that says
//! so. Rows refused by the peer are not waited for: the table's reason and fix say what to do.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::db::Db;
use crate::domain::Timestamp;
use crate::federation::{PeerStatus, peers};
use crate::ops::lock::{Mode, NodeLock};

/// How `sync` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// The queue is empty.
    Done,
    /// The wait ended first.
    TimedOut,
}

/// Watches delivery to `peer` until its queue is empty or `timeout` passes; draws on `out`
/// (a bar redrawn in place on a terminal, a line every ten seconds otherwise).
pub fn run(
    settings: &Settings,
    db: &Db,
    peer: &str,
    timeout: Option<Duration>,
    out: &mut dyn Write,
    terminal: bool,
) -> anyhow::Result<Synced> {
    let peer = super::federation::member(settings, db, peer)?;
    if NodeLock::acquire(&settings.raw.node.data_dir, Mode::Exclusive).is_ok() {
        anyhow::bail!(
            "the node is not running: sync follows the running node's delivery (start it with \
             `lapor-node serve`)"
        );
    }
    super::federation::federation(settings)?;
    let members = crate::federation::membership::Members::of_node(settings, db).peers();
    peers::retry_now(db, &peer)?;
    let status = || -> anyhow::Result<PeerStatus> {
        peers::status(db, settings.node_id(), &members, Timestamp::now())?
            .into_iter()
            .find(|s| s.node == peer.as_str())
            .ok_or_else(|| anyhow::anyhow!("{peer} has no state yet"))
    };
    let start = Instant::now();
    let first = status()?;
    let mut total = first.outbox_depth;
    let mut last_line = Instant::now();
    writeln!(
        out,
        "sync with {peer}: {} event(s) waiting, {} refused",
        first.outbox_depth, first.refused
    )?;
    loop {
        let s = status()?;
        total = total.max(s.outbox_depth);
        let done = total - s.outbox_depth;
        let line = bar(done, total, &s);
        if terminal {
            write!(out, "\r{line:<100}")?;
            out.flush()?;
        } else if last_line.elapsed() >= Duration::from_secs(10) || s.outbox_depth == 0 {
            writeln!(out, "{line}")?;
            last_line = Instant::now();
        }
        if s.outbox_depth == 0 {
            if terminal {
                writeln!(out)?;
            }
            writeln!(
                out,
                "synced: {done} event(s) delivered to {peer} in {:.0} s{}",
                start.elapsed().as_secs_f64(),
                if s.refused > 0 {
                    format!(
                        "; {} refused by it stay (see `lapor-node peers` for the reason and fix)",
                        s.refused
                    )
                } else {
                    String::new()
                }
            )?;
            return Ok(Synced::Done);
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            if terminal {
                writeln!(out)?;
            }
            writeln!(
                out,
                "not synced after {:.0} s: {} event(s) still waiting for {peer}{}",
                start.elapsed().as_secs_f64(),
                s.outbox_depth,
                s.last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            )?;
            return Ok(Synced::TimedOut);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `[########............]  4,210 / 10,000  42%  12.3 kB/s  about 2m10s left`, or the error
/// while the peer cannot be reached.
pub(crate) fn bar(done: i64, total: i64, s: &PeerStatus) -> String {
    const WIDTH: i64 = 24;
    let filled = if total > 0 {
        done * WIDTH / total
    } else {
        WIDTH
    };
    let filled = usize::try_from(filled.clamp(0, WIDTH)).unwrap_or(0);
    let width = usize::try_from(WIDTH).unwrap_or(24);
    let percent = if total > 0 { done * 100 / total } else { 100 };
    let mut line = format!(
        "[{}{}] {done:>7} / {total:<7} {percent:>3}%",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    if let Some(rate) = s.rate_bytes_per_sec {
        #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
        let kb = rate as f64 / 1000.0;
        line.push_str(&format!("  {kb:.1} kB/s"));
    }
    if let Some(eta) = s.eta_secs {
        line.push_str(&format!("  about {}m{:02}s left", eta / 60, eta % 60));
    }
    if !s.reachable {
        if let Some(e) = &s.last_error {
            let short: String = e.chars().take(60).collect();
            line.push_str(&format!("  (waiting for the link: {short})"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(depth: i64) -> PeerStatus {
        PeerStatus {
            node: "hub.lapor.test".into(),
            role: "hub".into(),
            reachable: true,
            last_contact_ms: None,
            last_success_ms: None,
            failures: 0,
            next_attempt_ms: 0,
            last_error: None,
            outbox_depth: depth,
            oldest_undelivered_age_ms: None,
            refused: 0,
            quarantined: 0,
            delivered: 0,
            delivered_last_minute: 0,
            rate_bytes_per_sec: Some(12_300),
            eta_secs: Some(130),
            refusals: Vec::new(),
            quarantine_reasons: Vec::new(),
        }
    }

    #[test]
    fn the_bar_shows_the_share_done_the_rate_and_the_time_left() {
        let line = bar(2_500, 10_000, &status(7_500));
        assert!(line.starts_with("[######..................]"), "{line}");
        assert!(
            line.contains("2500 / 10000") && line.contains(" 25%"),
            "{line}"
        );
        assert!(
            line.contains("12.3 kB/s") && line.contains("about 2m10s left"),
            "{line}"
        );
        let mut down = status(7_500);
        down.reachable = false;
        down.last_error = Some("connection refused".into());
        assert!(bar(0, 10_000, &down).contains("waiting for the link: connection refused"));
        assert!(bar(10, 10, &status(0)).contains("100%"));
    }
}
