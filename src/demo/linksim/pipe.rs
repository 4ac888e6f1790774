//! One direction of a line: a serialisation clock shared by every connection in that
//! direction, with its queue bound, and the bytes it carried.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::shape::Shape;

/// Payload bytes in one direction of a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes read from senders and put on the link.
    pub sent: u64,
    /// Bytes handed to receivers (the rest is in flight, or was lost in a cut).
    pub delivered: u64,
}

impl std::ops::Sub for Traffic {
    type Output = Self;
    fn sub(self, before: Self) -> Self {
        Self {
            sent: self.sent.saturating_sub(before.sent),
            delivered: self.delivered.saturating_sub(before.delivered),
        }
    }
}

/// One direction of a line: its shape, its serialisation clock and its counters.
#[derive(Debug)]
pub struct Pipe {
    clock: Mutex<Clock>,
    sent: AtomicU64,
    delivered: AtomicU64,
}

#[derive(Debug)]
pub(super) struct Clock {
    pub(super) shape: Shape,
    /// When the wire finishes serialising what was admitted so far.
    pub(super) free: Instant,
}

/// What `Pipe::admit` decided.
enum Admission {
    /// Admitted: arrives at this time.
    At(Instant),
    /// The queue is full: try again at this time.
    Full(Instant),
}

impl Pipe {
    pub(super) fn new(shape: Shape) -> Self {
        Self {
            clock: Mutex::new(Clock {
                shape,
                free: Instant::now(),
            }),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    pub(super) fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        // The clock holds plain values: one left by a panicking thread is still usable.
        self.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current shape.
    #[must_use]
    pub fn shape(&self) -> Shape {
        self.clock().shape
    }

    fn admit_now(&self, len: usize, now: Instant) -> Admission {
        let mut c = self.clock();
        let shape = c.shape;
        let start = c.free.max(now);
        let waiting = start - now;
        if !waiting.is_zero() && shape.bytes_in(waiting).saturating_add(len) > shape.queue_bytes {
            // Room for this chunk once the backlog is down to `queue - len`.
            let room = shape.serialise(shape.queue_bytes.saturating_sub(len));
            let retry = start.checked_sub(room).unwrap_or(start).max(now);
            return Admission::Full(retry.max(now + Duration::from_millis(1)));
        }
        let departure = start + shape.serialise(len);
        c.free = departure;
        let jitter = if shape.jitter.is_zero() {
            Duration::ZERO
        } else {
            use rand::Rng as _;
            let max = u64::try_from(shape.jitter.as_micros()).unwrap_or(u64::MAX);
            Duration::from_micros(rand::thread_rng().gen_range(0..=max))
        };
        Admission::At(departure + shape.delay + jitter)
    }

    /// Puts `len` bytes on the wire, waiting while the queue is full; returns their arrival.
    pub(in crate::demo) async fn admit(&self, len: usize) -> Instant {
        loop {
            match self.admit_now(len, Instant::now()) {
                Admission::At(at) => {
                    self.sent
                        .fetch_add(u64::try_from(len).unwrap_or(u64::MAX), Ordering::Relaxed);
                    return at;
                }
                Admission::Full(retry) => tokio::time::sleep_until(retry).await,
            }
        }
    }

    pub(in crate::demo) fn delivered(&self, len: usize) {
        self.delivered
            .fetch_add(u64::try_from(len).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(super) fn traffic(&self) -> Traffic {
        Traffic {
            sent: self.sent.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_clock_serialises_every_chunk_and_the_queue_holds_senders_back() {
        // 80 kbit/s = 10 bytes per ms; a queue of 3 packets.
        let shape = Shape::new(80_000, Duration::from_millis(100)).with_queue(3 * 1000);
        let pipe = Pipe::new(shape);
        let t0 = Instant::now();
        let ms = |n| Duration::from_millis(n);
        let at = |a: Admission| match a {
            Admission::At(t) => Ok(t - t0),
            Admission::Full(t) => Err(t - t0),
        };
        // Two connections admitting at the same instant share one clock.
        assert_eq!(at(pipe.admit_now(1000, t0)), Ok(ms(200)));
        assert_eq!(at(pipe.admit_now(1000, t0)), Ok(ms(300)));
        assert_eq!(at(pipe.admit_now(1000, t0)), Ok(ms(400)));
        // 3000 bytes queued: the fourth packet waits until 1000 have left.
        assert_eq!(at(pipe.admit_now(1000, t0)), Err(ms(100)));
        assert_eq!(at(pipe.admit_now(1000, t0 + ms(100))), Ok(ms(500)));
        // An idle wire starts at once; a chunk larger than the queue still goes alone.
        assert_eq!(at(pipe.admit_now(5000, t0 + ms(2000))), Ok(ms(2600)));
    }
}
