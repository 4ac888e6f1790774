//! The password-hashing gate: argon2 runs on the blocking pool, at most `slots` at once, with
//! at most `queue` more logins waiting for a slot; beyond that a login is refused at once.
//!
//! ```text
//!  login ─► enter() ── full ──► refused (429, Retry-After: 1)
//!              │ admitted (counts against slots + queue)
//!              ▼
//!          acquire() ── waits on a tokio Semaphore (no worker thread is held) ──►
//!          run(f) ── spawn_blocking: f() with the permit; the permit is freed when f
//!                    returns, even if the client has gone
//! ```
//!
//! A login flood so queues logins instead of running dozens of 19 MiB argon2 hashes at once on
//! every core: the request workers and the other routes keep a core.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gate; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct HashGate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: Arc<Semaphore>,
    slots_total: usize,
    admitted: AtomicUsize,
    max_admitted: usize,
}

/// A login admitted to the gate (holding its place in the queue or a slot).
#[derive(Debug)]
pub struct Admission {
    inner: Arc<Inner>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.inner.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hash slot, held while a hash runs.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _admission: Admission,
}

/// The gate was closed (cannot happen: the semaphore is never closed).
#[derive(Debug, thiserror::Error)]
#[error("the password-hashing gate is closed")]
pub struct Closed;

impl HashGate {
    /// `slots` hashes at once (at least 1), `queue` more waiting.
    #[must_use]
    pub fn new(slots: usize, queue: usize) -> Self {
        let slots = slots.max(1);
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(slots)),
                slots_total: slots,
                admitted: AtomicUsize::new(0),
                max_admitted: slots.saturating_add(queue),
            }),
        }
    }

    /// A place in the queue, or `None` when slots and queue are full.
    #[must_use]
    pub fn enter(&self) -> Option<Admission> {
        let taken = self.inner.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission {
            inner: self.inner.clone(),
        };
        (taken < self.inner.max_admitted).then_some(admission)
    }

    /// Logins admitted and not finished (running or waiting).
    #[must_use]
    pub fn admitted(&self) -> usize {
        self.inner.admitted.load(Ordering::Acquire)
    }

    /// Logins waiting for a slot.
    #[must_use]
    pub fn waiting(&self) -> usize {
        let running = self
            .slots()
            .saturating_sub(self.inner.slots.available_permits());
        self.admitted().saturating_sub(running)
    }

    /// The number of slots.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.inner.slots_total
    }

    /// Waits for a slot (async: no thread is held while waiting).
    ///
    /// # Errors
    ///
    /// [`Closed`] if the gate was closed.
    pub async fn acquire(&self, admission: Admission) -> Result<Slot, Closed> {
        let permit = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Closed)?;
        Ok(Slot {
            _permit: permit,
            _admission: admission,
        })
    }
}

/// Runs `f` on the blocking pool while holding `slot`.
///
/// # Errors
///
/// The task panicked or was cancelled.
pub async fn run<T, F>(slot: Slot, f: F) -> Result<T, tokio::task::JoinError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let out = f();
        drop(slot);
        out
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_then_queue_then_refused() {
        let gate = HashGate::new(1, 2);
        let slot = gate.acquire(gate.enter().unwrap()).await.unwrap();
        let (a, b) = (gate.enter().unwrap(), gate.enter().unwrap());
        assert!(gate.enter().is_none(), "slot and queue are full");
        assert_eq!((gate.admitted(), gate.waiting()), (3, 2));
        drop(b);
        assert_eq!(gate.waiting(), 1);
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.acquire(a).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while the slot is held");
        assert_eq!(run(slot, || 7).await.unwrap(), 7);
        waiter.await.unwrap().unwrap();
        assert_eq!(gate.admitted(), 0, "every place given back");
        assert_eq!(gate.slots(), 1);
    }
}
