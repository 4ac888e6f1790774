//! One physical line between side A and side B: a pipe per direction, an up/down state with
//! scheduled cuts and flapping, and the counters of what it carried.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::pipe::{Pipe, Traffic};
use super::shape::{Shape, Side};

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

    pub(in crate::demo) fn opened(&self) {
        self.0.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::demo) fn refused(&self) {
        self.0.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::demo) fn closed_by_cut(&self) {
        self.0.cut.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes each time the line is cut.
    pub(in crate::demo) fn cuts(&self) -> watch::Receiver<u64> {
        self.0.generation.subscribe()
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new(Shape::default())
    }
}
