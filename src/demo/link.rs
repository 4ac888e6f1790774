//! A userspace TCP proxy between two nodes, over a [`Line`] (the link emulator): the demo,
//! the tests and the benchmarks use it to emulate outages and slow links (this kernel has no
//! `netem`). While the proxy or its line is cut, open connections are closed and new ones are
//! accepted and dropped at once.
//!
//! ```text
//!  client ──► listener ──► accept ──► relay ──┬─ reader ─► Pipe (side's direction) ─► writer ─► target
//!                                             └─ writer ◄─ Pipe (other direction)  ◄─ reader ◄─┘
//! ```
//!
//! Each direction of a connection is a reader task that schedules chunks on the line's pipe
//! into a bounded channel and a writer that sleeps until each chunk's arrival: see
//! [`super::linksim`] for the clock they share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::time::Instant;

use super::linksim::{Line, Pipe, Side};

/// Bytes a connection may hold between its reader and its writer, per direction (bounds the
/// channel's length; the line's queue bounds what waits to be serialised).
const IN_FLIGHT_BUDGET: usize = 2 * 1024 * 1024;
/// Socket receive buffer on a shaped line's sockets: small, so the line's queue (not the
/// kernel's) is where a sender's bytes wait.
const SHAPED_RECV_BUFFER: u32 = 32 * 1024;

/// A cuttable proxy over a line. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Link(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    addr: SocketAddr,
    target: Mutex<Option<SocketAddr>>,
    line: Line,
    side: Side,
    up: AtomicBool,
    generation: watch::Sender<u64>,
    connections: AtomicU64,
}

impl Link {
    /// Listens on a free loopback port over a line of its own with no limit and no delay;
    /// forwards nowhere until [`Link::set_target`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(&Line::default(), Side::A).await
    }

    /// Listens on a free loopback port; its clients sit at `side` of `line`, its target at
    /// the other side.
    pub async fn start_on(line: &Line, side: Side) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), line, side).await
    }

    /// Listens on `addr`; its clients sit at `side` of `line`, its target at the other side.
    pub async fn bind(addr: SocketAddr, line: &Line, side: Side) -> std::io::Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if !line.pipe(side).shape().is_transparent() {
            // Accepted sockets inherit it.
            socket.set_recv_buffer_size(SHAPED_RECV_BUFFER)?;
        }
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        let (generation, _) = watch::channel(0);
        let link = Self(Arc::new(Inner {
            addr: listener.local_addr()?,
            target: Mutex::new(None),
            line: line.clone(),
            side,
            up: AtomicBool::new(true),
            generation,
            connections: AtomicU64::new(0),
        }));
        let l = link.clone();
        tokio::spawn(async move { l.accept(listener).await });
        Ok(link)
    }

    /// Where peers connect.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// The line this proxy carries its connections over.
    #[must_use]
    pub fn line(&self) -> &Line {
        &self.0.line
    }

    /// Which side of the line its clients sit at.
    #[must_use]
    pub fn side(&self) -> Side {
        self.0.side
    }

    /// Where the link leads.
    pub async fn set_target(&self, target: SocketAddr) {
        *self.0.target.lock().await = Some(target);
    }

    /// Cuts this proxy (not the line's other proxies): open connections close, new ones are
    /// dropped. The line's queue keeps its clock (other proxies' bytes may be in it): what
    /// this proxy's connections had queued still occupies the wire until it would have left.
    pub fn cut(&self) {
        self.0.up.store(false, Ordering::SeqCst);
        self.0.generation.send_modify(|g| *g += 1);
    }

    /// Restores this proxy.
    pub fn restore(&self) {
        self.0.up.store(true, Ordering::SeqCst);
    }

    /// Whether this proxy is up (its line may still be down: see [`Line::is_up`]).
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::SeqCst)
    }

    /// Connections forwarded so far.
    #[must_use]
    pub fn connections(&self) -> u64 {
        self.0.connections.load(Ordering::Relaxed)
    }

    async fn accept(self, listener: TcpListener) {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                // Out of descriptors or the like: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let line = self.0.line.clone();
            if !self.is_up() || !line.is_up() {
                line.refused();
                drop(inbound);
                continue;
            }
            let Some(target) = *self.0.target.lock().await else {
                drop(inbound);
                continue;
            };
            self.0.connections.fetch_add(1, Ordering::Relaxed);
            line.opened();
            let mut cut = self.0.generation.subscribe();
            let mut line_cut = line.cuts();
            let side = self.0.side;
            tokio::spawn(async move {
                let accepted = Instant::now();
                let Ok(outbound) = connect(target, &line, side).await else {
                    return;
                };
                tokio::select! {
                    _ = relay(inbound, outbound, &line, side, accepted) => {}
                    _ = cut.changed() => line.closed_by_cut(),
                    _ = line_cut.changed() => line.closed_by_cut(),
                }
            });
        }
    }
}

async fn connect(target: SocketAddr, line: &Line, side: Side) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if !line.pipe(side.other()).shape().is_transparent() {
        socket.set_recv_buffer_size(SHAPED_RECV_BUFFER)?;
    }
    socket.connect(target).await
}

/// Carries one connection both ways until both directions end or either fails.
async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    line: &Line,
    side: Side,
    accepted: Instant,
) -> std::io::Result<()> {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (from_client, to_client) = inbound.into_split();
    let (from_server, to_server) = outbound.into_split();
    let up = line.pipe(side);
    // The client's first bytes wait for the handshake's round trip it did not pay.
    let handshake = accepted + up.shape().delay * 2;
    tokio::try_join!(
        carry(from_client, to_server, up, handshake),
        carry(from_server, to_client, line.pipe(side.other()), accepted),
    )?;
    Ok(())
}

/// One direction of a connection: a reader scheduling chunks on `pipe`, a writer delivering
/// each at its time; the end of the stream is passed on after the last chunk.
async fn carry(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    pipe: &Arc<Pipe>,
    not_before: Instant,
) -> std::io::Result<()> {
    let chunk = pipe.shape().chunk_bytes();
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>((IN_FLIGHT_BUDGET / chunk).max(16));
    let reader = async move {
        if not_before > Instant::now() {
            tokio::time::sleep_until(not_before).await;
        }
        let mut buf = vec![0u8; chunk];
        let mut last = Instant::now();
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            // A connection's bytes never overtake each other, whatever the jitter.
            let at = pipe.admit(n).await.max(last);
            last = at;
            if tx.send((at, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = rx.recv().await {
            if at > Instant::now() {
                tokio::time::sleep_until(at).await;
            }
            to.write_all(&bytes).await?;
            pipe.delivered(bytes.len());
        }
        to.shutdown().await
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}
