//! The restore hold (issue 25, item 4): a node restored from a backup may be behind its own true
//! head — the events it wrote after the backup are held by the hub and its peers, not by it.
//! Writing before it has them back would give a second event the same `(origin, seq)`: an
//! equivocation every peer would see. So `lapor-node restore` leaves a marker file in the
//! restored data directory; a node that starts with it holds every write of its own events
//! ([`Hold::check`]) and says why in its log and `/readyz`, until the federation has fetched
//! its own events back (`federation::recover`) — then the marker is removed and the node goes
//! live. `lapor-node restore-check` shows what is missing; `restore-check --release` is the
//! operator's override.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// The marker's file name in the data directory.
pub const MARKER: &str = "RESTORED";

/// Whether this node holds its writes, and why; shared by the writers, `/readyz` and the
/// federation's recovery.
#[derive(Debug, Clone, Default)]
pub struct Hold(Arc<RwLock<Option<State>>>);

#[derive(Debug, Clone)]
struct State {
    marker: PathBuf,
    reason: String,
}

/// A write refused while the hold is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Held(pub String);

/// The marker's path for a data directory.
#[must_use]
pub fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join(MARKER)
}

/// Writes the marker into `data_dir` (by `restore`), naming the backup it came from.
pub fn mark(data_dir: &Path, from: &str) -> std::io::Result<()> {
    std::fs::write(
        marker(data_dir),
        format!("restored from {from}; own events are fetched back before this node writes\n"),
    )
}

impl Hold {
    /// The hold of the node whose data directory is `data_dir`: on when the marker is there.
    #[must_use]
    pub fn of(data_dir: &Path) -> Self {
        let path = marker(data_dir);
        if !path.exists() {
            return Self::default();
        }
        let h = Self::default();
        *h.0.write().unwrap_or_else(PoisonError::into_inner) = Some(State {
            reason: "restored from a backup: fetching this node's own events back from the hub \
                     and its peers before it writes (`lapor-node restore-check`)"
                .into(),
            marker: path,
        });
        h
    }

    /// Why writes are held, if they are.
    #[must_use]
    pub fn reason(&self) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|s| s.reason.clone())
    }

    /// Whether writes are held.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.reason().is_some()
    }

    /// `Err` while writes are held.
    pub fn check(&self) -> Result<(), Held> {
        self.reason().map_or(Ok(()), |r| Err(Held(r)))
    }

    /// Updates the reason (what the recovery is waiting for).
    pub fn waiting(&self, why: String) {
        if let Some(s) = self
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            s.reason = why;
        }
    }

    /// Lifts the hold and removes the marker.
    pub fn release(&self) -> std::io::Result<()> {
        let mut g = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = g.as_ref() {
            match std::fs::remove_file(&s.marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        *g = None;
        Ok(())
    }
}
