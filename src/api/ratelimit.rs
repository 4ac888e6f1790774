//! Per-client-address limits (intake, lookups, refused follow-up tokens, logins; see
//! `api::limits`): a token bucket per address, with capacity
//! `per_minute` refilled continuously at `per_minute` tokens a minute.
//!
//! Memory is bounded: the table holds at most `max_clients` buckets. When it is full, buckets
//! that have refilled to capacity are dropped (they carry no information); if that is not enough,
//! the fullest tenth is dropped too (those clients get a fresh bucket, a small leniency), so the
//! cost of eviction is amortised. IPv6 clients are keyed by their /64 prefix (one host usually
//! controls a whole /64); IPv4-mapped IPv6 addresses count as the IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Default maximum number of tracked client addresses.
pub const DEFAULT_MAX_CLIENTS: usize = 100_000;

/// Per-client-address token-bucket rate limiter; `Send + Sync`, share it as `Arc<RateLimiter>`.
#[derive(Debug)]
pub struct RateLimiter {
    /// Bucket capacity and tokens per minute; 0 = unlimited.
    per_minute: u32,
    max_clients: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens at `at` (before refill since then).
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_minute` requests per address per minute, as a token bucket with capacity
    /// `per_minute` refilled continuously; 0 disables limiting. Tracks at most
    /// [`DEFAULT_MAX_CLIENTS`] addresses.
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self::with_capacity(per_minute, DEFAULT_MAX_CLIENTS)
    }

    /// Like [`RateLimiter::new`], tracking at most `max_clients` addresses (at least 1).
    #[must_use]
    pub fn with_capacity(per_minute: u32, max_clients: usize) -> Self {
        Self {
            per_minute,
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `addr` at time `now`.
    ///
    /// # Errors
    ///
    /// `Err(retry_after)` when the bucket is empty: the time until one token is available.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let key = client_key(addr);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&key) && buckets.len() >= self.max_clients {
            self.evict(&mut buckets, now);
        }
        let capacity = self.capacity();
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = self.tokens_at(bucket, now);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.rate_per_sec();
        Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(60)))
    }

    /// Whether `addr` has a token at `now`, without taking it (for limits charged only on some
    /// outcomes: check before, [`RateLimiter::check`] after).
    ///
    /// # Errors
    ///
    /// `Err(retry_after)` when the bucket is empty: the time until one token is available.
    pub fn peek(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = buckets.get(&client_key(addr)) else {
            return Ok(());
        };
        let tokens = self.tokens_at(bucket, now);
        if tokens >= 1.0 {
            return Ok(());
        }
        let wait = (1.0 - tokens) / self.rate_per_sec();
        Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(60)))
    }

    /// Number of client addresses currently tracked.
    #[must_use]
    pub fn tracked_clients(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn rate_per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Tokens in `b` at `now`, after continuous refill (capped at capacity).
    fn tokens_at(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + elapsed * self.rate_per_sec()).min(self.capacity())
    }

    /// Makes room for a new bucket: drops full buckets; if the table is still at the cap, drops
    /// the fullest buckets down to 90 % of the cap.
    fn evict(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let capacity = self.capacity();
        buckets.retain(|_, b| self.tokens_at(b, now) < capacity);
        if buckets.len() < self.max_clients {
            return;
        }
        let keep = self.max_clients - self.max_clients.div_ceil(10);
        let mut fill: Vec<(f64, IpAddr)> = buckets
            .iter()
            .map(|(k, b)| (self.tokens_at(b, now), *k))
            .collect();
        if let Some(pivot) = keep.checked_sub(1) {
            fill.select_nth_unstable_by(pivot, |a, b| a.0.total_cmp(&b.0));
        }
        for (_, k) in fill.iter().skip(keep) {
            buckets.remove(k);
        }
    }
}

/// The key of a client: IPv4 address, or IPv6 /64 prefix (IPv4-mapped addresses as IPv4).
fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1_u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn burst_up_to_capacity_then_refused_with_retry_after() {
        let rl = RateLimiter::new(30);
        let t0 = Instant::now();
        for _ in 0..30 {
            assert_eq!(rl.check(ip(1), t0), Ok(()));
        }
        let wait = rl.check(ip(1), t0).unwrap_err();
        // 30 a minute: one token every 2 s.
        assert!(
            wait > Duration::from_millis(1_990) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        // Refused requests take nothing: still the same wait a second later, minus that second.
        let wait = rl.check(ip(1), t0 + Duration::from_secs(1)).unwrap_err();
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[test]
    fn refills_continuously_up_to_capacity() {
        let rl = RateLimiter::new(60);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(rl.check(ip(1), t0).is_ok());
        }
        assert!(rl.check(ip(1), t0).is_err());
        let t1 = t0 + Duration::from_secs(3);
        for _ in 0..3 {
            assert!(rl.check(ip(1), t1).is_ok());
        }
        assert!(rl.check(ip(1), t1).is_err());
        // A long idle period refills to capacity, not beyond.
        let t2 = t1 + Duration::from_secs(3_600);
        for _ in 0..60 {
            assert!(rl.check(ip(1), t2).is_ok());
        }
        assert!(rl.check(ip(1), t2).is_err());
        // A clock reading from before the last one neither refills nor panics.
        assert!(rl.check(ip(1), t0).is_err());
    }

    #[test]
    fn addresses_are_independent_and_ipv6_counts_per_64() {
        let rl = RateLimiter::new(1);
        let t0 = Instant::now();
        assert!(rl.check(ip(1), t0).is_ok());
        assert!(rl.check(ip(1), t0).is_err());
        assert!(rl.check(ip(2), t0).is_ok());
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(rl.check(a, t0).is_ok());
        assert!(rl.check(b, t0).is_err(), "same /64");
        assert!(rl.check(c, t0).is_ok(), "other /64");
        let mapped: IpAddr = "::ffff:0.0.0.2".parse().unwrap();
        assert!(rl.check(mapped, t0).is_err(), "IPv4-mapped = IPv4");
    }

    #[test]
    fn peek_takes_nothing() {
        let rl = RateLimiter::new(2);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(rl.peek(ip(1), t0).is_ok());
        }
        assert_eq!(rl.tracked_clients(), 0);
        assert!(rl.check(ip(1), t0).is_ok());
        assert!(rl.check(ip(1), t0).is_ok());
        let wait = rl.peek(ip(1), t0).unwrap_err();
        assert_eq!(rl.check(ip(1), t0), Err(wait));
        assert!(rl.peek(ip(2), t0).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let rl = RateLimiter::new(0);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(rl.check(ip(1), t0).is_ok());
        }
        assert_eq!(rl.tracked_clients(), 0);
    }

    #[test]
    fn table_stays_bounded_under_many_addresses() {
        let rl = RateLimiter::with_capacity(10, 1_000);
        let t0 = Instant::now();
        // All at once: no bucket is full, so the fullest are dropped in batches.
        for n in 0..200_000 {
            assert!(rl.check(ip(n), t0).is_ok());
            assert!(rl.tracked_clients() <= 1_000);
        }
        // Spread over time: idle buckets refill and are dropped.
        for n in 200_000..400_000 {
            let now = t0 + Duration::from_millis(u64::from(n));
            assert!(rl.check(ip(n), now).is_ok());
            assert!(rl.tracked_clients() <= 1_000);
        }
    }

    #[test]
    fn eviction_drops_idle_buckets_and_keeps_limited_clients() {
        let rl = RateLimiter::with_capacity(10, 3);
        let t0 = Instant::now();
        assert!(rl.check(ip(1), t0).is_ok());
        assert!(rl.check(ip(2), t0).is_ok());
        let t1 = t0 + Duration::from_secs(60);
        for _ in 0..10 {
            assert!(rl.check(ip(3), t1).is_ok());
        }
        assert!(rl.check(ip(4), t1).is_ok());
        assert_eq!(
            rl.tracked_clients(),
            2,
            "the two refilled buckets were dropped"
        );
        assert!(
            rl.check(ip(3), t1).is_err(),
            "the limited client is still limited"
        );
        // Table full of active buckets: the fullest are dropped, the empty one stays.
        assert!(rl.check(ip(5), t1).is_ok());
        assert!(rl.check(ip(6), t1).is_ok());
        assert!(rl.tracked_clients() <= 3);
        assert!(rl.check(ip(3), t1).is_err());
    }
}
