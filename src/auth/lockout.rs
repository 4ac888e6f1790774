//! Per-account lockout of officer login, in memory.
//!
//! After `after` consecutive failed logins for a username, that username is locked for `base`;
//! each further failure (once the lock has passed) doubles the period, up to `max`. A
//! successful login forgets the username. While locked, a login is refused before the password
//! is checked, whatever the password. The key is the username *as typed*, whether or not an
//! account has it, so a locked unknown username is answered exactly like a locked known one.
//!
//! Memory is bounded: at most `max_entries` usernames are tracked, keyed by a keyed 64-bit hash
//! of the name (the table holds no names). A failure streak is forgotten one `max` period after
//! its last failure. When the table is full, forgotten and unlocked entries are dropped first,
//! then the locks that end soonest. The state is lost on restart (a restart ends every lock):
//! the lock slows guessing, it does not need to survive a restart to do that, and keeping it
//! out of the database keeps failed logins off the single writer.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Default maximum number of tracked usernames.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// The lockout table; `Send + Sync`.
#[derive(Debug)]
pub struct Lockout {
    after: u32,
    base: Duration,
    max: Duration,
    max_entries: usize,
    hasher: RandomState,
    entries: Mutex<HashMap<u64, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Lockout {
    /// Locks after `after` consecutive failures (0 = never) for `base`, doubling up to `max`.
    #[must_use]
    pub fn new(after: u32, base: Duration, max: Duration) -> Self {
        Self::with_capacity(after, base, max, DEFAULT_MAX_ENTRIES)
    }

    /// Like [`Lockout::new`], tracking at most `max_entries` usernames (at least 1).
    #[must_use]
    pub fn with_capacity(after: u32, base: Duration, max: Duration, max_entries: usize) -> Self {
        Self {
            after,
            base,
            max: max.max(base),
            max_entries: max_entries.max(1),
            hasher: RandomState::new(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `username` may try to log in at `now`.
    ///
    /// # Errors
    ///
    /// `Err(remaining)` while the username is locked.
    pub fn check(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let key = self.key(username);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed login; returns the lock period it started, if any.
    pub fn failure(&self, username: &str, now: Instant) -> Option<Duration> {
        if self.after == 0 {
            return None;
        }
        let key = self.key(username);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(&key) && entries.len() >= self.max_entries {
            self.evict(&mut entries, now);
        }
        let e = entries.entry(key).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if self.forgotten(e, now) {
            *e = Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            };
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        let over = e.failures.checked_sub(self.after)?;
        let period = self
            .base
            .checked_mul(1_u32 << over.min(20))
            .map_or(self.max, |p| p.min(self.max));
        e.locked_until = Some(now + period);
        Some(period)
    }

    /// Records a successful login: the username's streak is forgotten.
    pub fn success(&self, username: &str) {
        let key = self.key(username);
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    /// Number of usernames tracked.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn key(&self, username: &str) -> u64 {
        self.hasher.hash_one(username)
    }

    /// A streak is forgotten one `max` period after its last failure, once no lock is running.
    fn forgotten(&self, e: &Entry, now: Instant) -> bool {
        let unlocked = e.locked_until.is_none_or(|u| u <= now);
        unlocked && now.saturating_duration_since(e.last_failure) >= self.max
    }

    fn evict(&self, entries: &mut HashMap<u64, Entry>, now: Instant) {
        entries.retain(|_, e| !self.forgotten(e, now));
        if entries.len() < self.max_entries {
            return;
        }
        entries.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
        if entries.len() < self.max_entries {
            return;
        }
        let keep = self.max_entries - self.max_entries.div_ceil(10);
        let mut ends: Vec<(Instant, u64)> = entries
            .iter()
            .map(|(k, e)| (e.locked_until.unwrap_or(now), *k))
            .collect();
        ends.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        for (_, k) in ends.iter().skip(keep) {
            entries.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn lockout() -> Lockout {
        Lockout::new(3, 60 * S, 600 * S)
    }

    #[test]
    fn locks_after_n_failures_and_doubles_up_to_the_cap() {
        let l = lockout();
        let t0 = Instant::now();
        assert_eq!(l.failure("budi", t0), None);
        assert_eq!(l.failure("budi", t0), None);
        assert!(l.check("budi", t0).is_ok());
        assert_eq!(l.failure("budi", t0), Some(60 * S));
        assert_eq!(l.check("budi", t0 + S), Err(59 * S));
        assert!(l.check("other", t0).is_ok());
        let t1 = t0 + 60 * S;
        assert!(l.check("budi", t1).is_ok(), "the lock has passed");
        assert_eq!(l.failure("budi", t1), Some(120 * S));
        let t2 = t1 + 120 * S;
        assert_eq!(l.failure("budi", t2), Some(240 * S));
        let t3 = t2 + 240 * S;
        assert_eq!(l.failure("budi", t3), Some(480 * S));
        let t4 = t3 + 480 * S;
        assert_eq!(l.failure("budi", t4), Some(600 * S), "capped");
    }

    #[test]
    fn success_resets_and_old_streaks_are_forgotten() {
        let l = lockout();
        let t0 = Instant::now();
        l.failure("budi", t0);
        l.failure("budi", t0);
        l.success("budi");
        assert_eq!(l.failure("budi", t0), None, "the streak restarted");
        assert_eq!(l.tracked(), 1);
        l.failure("budi", t0);
        // One cap period after the last failure, the streak is forgotten.
        assert_eq!(l.failure("budi", t0 + 600 * S), None);
    }

    #[test]
    fn zero_never_locks() {
        let l = Lockout::new(0, 60 * S, 600 * S);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(l.failure("budi", t0), None);
        }
        assert!(l.check("budi", t0).is_ok());
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn table_is_bounded_and_keeps_running_locks() {
        let l = Lockout::with_capacity(1, 60 * S, 600 * S, 100);
        let t0 = Instant::now();
        l.failure("victim", t0 + 10 * S);
        for n in 0..10_000 {
            l.failure(&format!("u{n}"), t0);
            assert!(l.tracked() <= 100);
        }
        // The victim's lock ends last, so it is the last to go.
        assert!(l.check("victim", t0 + 11 * S).is_err());
    }
}
