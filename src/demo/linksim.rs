//! A link emulator in userspace (this kernel has no `netem`): a [`Line`] is one physical
//! link between two sides, A and B, with a [`Shape`] per direction — bandwidth, one-way
//! delay, jitter and a bounded queue — an up/down state with scheduled cuts and flapping, and
//! byte counters. [`super::link::Link`] proxies carry TCP connections over it.
//!
//! ```text
//!  clients at A ──► Link (side A) ──┐                  ┌──► server at B
//!                                   ├─ Line: A→B pipe ─┤
//!  server at A  ◄── Link (side B) ◄─┴─ Line: B→A pipe ◄┴─── clients at B
//! ```
//!
//! Every connection in one direction, through any proxy on the line, shares that direction's
//! [`Pipe`]: one serialisation clock and one queue. A chunk of `len` bytes admitted at `now`
//! leaves at `max(now, free) + len / rate` (and `free` becomes that time) and arrives one
//! delay (plus jitter) later; a connection's bytes never overtake each other. The queue is the
//! bytes admitted but not yet serialised, `(free - now) × rate`; when a chunk does not fit, the
//! proxy stops reading that connection until it does, so TCP's backpressure reaches the
//! sender as a modem's full buffer would. Reading and delivering are pipelined (a reader
//! schedules chunks, a writer sleeps until each one's arrival), so a long fat pipe is filled.
//!
//! Not modelled: packet headers and acknowledgements (the counters are payload bytes), loss
//! other than a cut, and reordering. A new connection's first bytes are held for one round
//! trip, the price of the TCP handshake the proxy's loopback `connect` does not pay.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

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

    pub(super) fn chunk_bytes(&self) -> usize {
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

/// What a line has carried so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// From side A to side B.
    pub a_to_b: Traffic,
    /// From side B to side A.
    pub b_to_a: Traffic,
    /// TCP connections carried (through every proxy on the line).
    pub connections: u64,
    /// Connections refused while the line was down.
    pub refused: u64,
    /// Connections closed by a cut.
    pub cut: u64,
}

impl Counters {
    /// The traffic leaving `side`.
    #[must_use]
    pub fn from(&self, side: Side) -> Traffic {
        match side {
            Side::A => self.a_to_b,
            Side::B => self.b_to_a,
        }
    }
}

impl std::ops::Sub for Counters {
    type Output = Self;
    fn sub(self, before: Self) -> Self {
        Self {
            a_to_b: self.a_to_b - before.a_to_b,
            b_to_a: self.b_to_a - before.b_to_a,
            connections: self.connections.saturating_sub(before.connections),
            refused: self.refused.saturating_sub(before.refused),
            cut: self.cut.saturating_sub(before.cut),
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
struct Clock {
    shape: Shape,
    /// When the wire finishes serialising what was admitted so far.
    free: Instant,
}

/// What [`Pipe::admit`] decided.
enum Admission {
    /// Admitted: arrives at this time.
    At(Instant),
    /// The queue is full: try again at this time.
    Full(Instant),
}

impl Pipe {
    fn new(shape: Shape) -> Self {
        Self {
            clock: Mutex::new(Clock {
                shape,
                free: Instant::now(),
            }),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
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
    pub(super) async fn admit(&self, len: usize) -> Instant {
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

    pub(super) fn delivered(&self, len: usize) {
        self.delivered
            .fetch_add(u64::try_from(len).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn traffic(&self) -> Traffic {
        Traffic {
            sent: self.sent.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }
}

/// One physical link between side A and side B. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Line(Arc<LineInner>);

#[derive(Debug)]
struct LineInner {
    a_to_b: Arc<Pipe>,
    b_to_a: Arc<Pipe>,
    up: AtomicBool,
    generation: watch::Sender<u64>,
    connections: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    schedule: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for LineInner {
    fn drop(&mut self) {
        if let Some(h) = self.schedule.get_mut().ok().and_then(Option::take) {
            h.abort();
        }
    }
}

impl Line {
    /// A line shaped alike in both directions.
    #[must_use]
    pub fn new(shape: Shape) -> Self {
        Self::asymmetric(shape, shape)
    }

    /// A line with one shape from A to B and another from B to A.
    #[must_use]
    pub fn asymmetric(a_to_b: Shape, b_to_a: Shape) -> Self {
        let (generation, _) = watch::channel(0);
        Self(Arc::new(LineInner {
            a_to_b: Arc::new(Pipe::new(a_to_b)),
            b_to_a: Arc::new(Pipe::new(b_to_a)),
            up: AtomicBool::new(true),
            generation,
            connections: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            schedule: Mutex::new(None),
        }))
    }

    /// The pipe carrying bytes away from `side`.
    #[must_use]
    pub fn pipe(&self, from: Side) -> &Arc<Pipe> {
        match from {
            Side::A => &self.0.a_to_b,
            Side::B => &self.0.b_to_a,
        }
    }

    /// Reshapes both directions (chunks already admitted keep their times).
    pub fn set_shape(&self, shape: Shape) {
        for p in [&self.0.a_to_b, &self.0.b_to_a] {
            p.clock().shape = shape;
        }
    }

    /// Whether the line is up.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::SeqCst)
    }

    /// Cuts the line: open connections close (what was queued or in flight is lost, and the
    /// queue is empty when the line returns), new ones are refused.
    pub fn cut(&self) {
        Self::set_up(&self.0, false);
    }

    /// Restores the line.
    pub fn restore(&self) {
        Self::set_up(&self.0, true);
    }

    fn set_up(inner: &LineInner, up: bool) {
        let was = inner.up.swap(up, Ordering::SeqCst);
        if was && !up {
            inner.generation.send_modify(|g| *g += 1);
            // What was queued is lost with its connections: the wire is free again.
            let now = Instant::now();
            for p in [&inner.a_to_b, &inner.b_to_a] {
                let mut c = p.clock();
                c.free = c.free.min(now);
            }
        }
    }

    /// Up for `up`, down for `down`, over and over, starting up, until [`Line::steady`] or
    /// another schedule.
    pub fn flap(&self, up: Duration, down: Duration) {
        self.schedule(move |line| async move {
            loop {
                tokio::time::sleep(up).await;
                Self::with(&line, |l| Self::set_up(l, false))?;
                tokio::time::sleep(down).await;
                Self::with(&line, |l| Self::set_up(l, true))?;
            }
        });
    }

    /// One outage: cut `after` from now, restored `down` later.
    pub fn cut_for(&self, after: Duration, down: Duration) {
        self.schedule(move |line| async move {
            tokio::time::sleep(after).await;
            Self::with(&line, |l| Self::set_up(l, false))?;
            tokio::time::sleep(down).await;
            Self::with(&line, |l| Self::set_up(l, true))
        });
    }

    /// Ends any schedule and restores the line.
    pub fn steady(&self) {
        if let Some(h) = self.lock_schedule().take() {
            h.abort();
        }
        self.restore();
    }

    fn with(line: &Weak<LineInner>, f: impl FnOnce(&LineInner)) -> Option<()> {
        line.upgrade().map(|l| f(&l))
    }

    fn lock_schedule(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::AbortHandle>> {
        self.0
            .schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn schedule<F, Fut>(&self, plan: F)
    where
        F: FnOnce(Weak<LineInner>) -> Fut,
        Fut: std::future::Future<Output = Option<()>> + Send + 'static,
    {
        let task = tokio::spawn(plan(Arc::downgrade(&self.0)));
        if let Some(old) = self.lock_schedule().replace(task.abort_handle()) {
            old.abort();
        }
    }

    /// What the line has carried so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        Counters {
            a_to_b: self.0.a_to_b.traffic(),
            b_to_a: self.0.b_to_a.traffic(),
            connections: self.0.connections.load(Ordering::Relaxed),
            refused: self.0.refused.load(Ordering::Relaxed),
            cut: self.0.cut.load(Ordering::Relaxed),
        }
    }

    pub(super) fn opened(&self) {
        self.0.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn refused(&self) {
        self.0.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn closed_by_cut(&self) {
        self.0.cut.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes each time the line is cut.
    pub(super) fn cuts(&self) -> watch::Receiver<u64> {
        self.0.generation.subscribe()
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new(Shape::default())
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
