//! Inbound flood control: a token bucket per number (by its key) and one for the whole node.
//! In memory: a restart forgets the buckets, which costs at most one burst.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which limit refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    /// This number sent too many.
    Number(Duration),
    /// The node takes no more just now.
    Global(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-number and global buckets.
#[derive(Debug)]
pub struct Limits {
    per_number: (f64, f64),
    global: (f64, f64),
    numbers: Mutex<HashMap<String, Bucket>>,
    all: Mutex<Option<Bucket>>,
}

/// Most numbers tracked; past it, full buckets are forgotten first.
const MAX_NUMBERS: usize = 100_000;

impl Limits {
    /// `per_number` messages per hour per number, `global` per minute in all.
    #[must_use]
    pub fn new(per_number_per_hour: u32, global_per_minute: u32) -> Self {
        let per = f64::from(per_number_per_hour);
        let all = f64::from(global_per_minute);
        Self {
            per_number: (per, per / 3600.0),
            global: (all, all / 60.0),
            numbers: Mutex::default(),
            all: Mutex::default(),
        }
    }

    /// Takes a token for the number keyed `key` and one from the node's bucket, or says which
    /// limit refuses and how long until a token is back (no token is taken then).
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Flood> {
        let mut numbers = self
            .numbers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = self
            .all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (cap, rate) = self.per_number;
        let mine = refill(numbers.get(key).copied(), cap, rate, now);
        if mine.tokens < 1.0 {
            return Err(Flood::Number(wait(mine.tokens, rate)));
        }
        let (gcap, grate) = self.global;
        let node = refill(*all, gcap, grate, now);
        if node.tokens < 1.0 {
            return Err(Flood::Global(wait(node.tokens, grate)));
        }
        if numbers.len() >= MAX_NUMBERS && !numbers.contains_key(key) {
            numbers.retain(|_, b| refill(Some(*b), cap, rate, now).tokens < cap);
        }
        numbers.insert(
            key.to_owned(),
            Bucket {
                tokens: mine.tokens - 1.0,
                at: now,
            },
        );
        *all = Some(Bucket {
            tokens: node.tokens - 1.0,
            at: now,
        });
        Ok(())
    }
}

fn refill(b: Option<Bucket>, cap: f64, rate: f64, now: Instant) -> Bucket {
    match b {
        None => Bucket {
            tokens: cap,
            at: now,
        },
        Some(b) => Bucket {
            tokens: (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(cap),
            at: now,
        },
    }
}

fn wait(tokens: f64, rate: f64) -> Duration {
    Duration::from_secs_f64(((1.0 - tokens) / rate).clamp(0.0, 86_400.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_over_its_limit_is_refused_while_others_pass_until_the_node_is_full() {
        let l = Limits::new(2, 3);
        let t = Instant::now();
        assert!(l.check("a", t).is_ok());
        assert!(l.check("a", t).is_ok());
        assert!(matches!(l.check("a", t), Err(Flood::Number(_))));
        assert!(l.check("b", t).is_ok());
        assert!(matches!(l.check("c", t), Err(Flood::Global(_))));
        // A minute later the node has room again; "a" still waits for its hourly token.
        let later = t + Duration::from_secs(60);
        assert!(l.check("c", later).is_ok());
        assert!(matches!(l.check("a", later), Err(Flood::Number(_))));
    }
}
