//! What one direction of a line does (rate, delay, jitter, queue), and the two sides.

use std::num::NonZeroU64;
use std::time::Duration;

/// Bytes a modem buffer holds by default (≈ 5 s at 100 kbit/s).
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024;
/// Largest chunk a shaped pipe carries at once: an Ethernet-sized packet, so that a slow link
/// is not turned into a store-and-forward of large reads.
const PACKET_BYTES: usize = 1500;
/// Largest chunk an unlimited pipe carries at once.
const UNSHAPED_CHUNK_BYTES: usize = 64 * 1024;

/// How one direction of a line behaves. The default is a transparent wire (no limit, no delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Bandwidth in bits per second; `None`: unlimited.
    pub rate_bps: Option<NonZeroU64>,
    /// One-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per chunk (a connection's bytes stay in
    /// order).
    pub jitter: Duration,
    /// Bytes waiting to be serialised before senders are held back (the modem's buffer).
    pub queue_bytes: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            rate_bps: None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            queue_bytes: DEFAULT_QUEUE_BYTES,
        }
    }
}

impl Shape {
    /// A link of `rate_bps` bits per second (0: unlimited) and `delay` each way, no jitter, the
    /// default queue.
    #[must_use]
    pub fn new(rate_bps: u64, delay: Duration) -> Self {
        Self {
            rate_bps: NonZeroU64::new(rate_bps),
            delay,
            ..Self::default()
        }
    }

    /// The same with `jitter`.
    #[must_use]
    pub fn with_jitter(self, jitter: Duration) -> Self {
        Self { jitter, ..self }
    }

    /// The same with a queue of `bytes`.
    #[must_use]
    pub fn with_queue(self, bytes: usize) -> Self {
        Self {
            queue_bytes: bytes,
            ..self
        }
    }

    /// Whether the shape changes nothing (no limit, no delay).
    #[must_use]
    pub fn is_transparent(&self) -> bool {
        self.rate_bps.is_none() && self.delay.is_zero() && self.jitter.is_zero()
    }

    /// Time to put `bytes` on the wire at this rate (zero when unlimited).
    #[must_use]
    pub fn serialise(&self, bytes: usize) -> Duration {
        self.rate_bps.map_or(Duration::ZERO, |r| {
            let bits = u128::try_from(bytes).unwrap_or(u128::MAX).saturating_mul(8);
            let nanos = bits.saturating_mul(1_000_000_000) / u128::from(r.get());
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        })
    }

    /// Bytes this rate puts on the wire in `d` (`usize::MAX` when unlimited).
    #[must_use]
    pub fn bytes_in(&self, d: Duration) -> usize {
        self.rate_bps.map_or(usize::MAX, |r| {
            let bits = d.as_nanos().saturating_mul(u128::from(r.get())) / 1_000_000_000;
            usize::try_from(bits / 8).unwrap_or(usize::MAX)
        })
    }

    pub(in crate::demo) fn chunk_bytes(&self) -> usize {
        if self.rate_bps.is_some() {
            PACKET_BYTES
        } else {
            UNSHAPED_CHUNK_BYTES
        }
    }
}

/// Which end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The first end.
    A,
    /// The second end.
    B,
}

impl Side {
    /// The other end.
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialisation_time_and_bytes_are_inverse() {
        let s = Shape::new(100_000, Duration::ZERO);
        assert_eq!(s.serialise(12_500), Duration::from_secs(1));
        assert_eq!(s.bytes_in(Duration::from_secs(2)), 25_000);
        assert_eq!(Shape::default().serialise(1 << 30), Duration::ZERO);
        assert!(Shape::default().is_transparent());
    }
}
