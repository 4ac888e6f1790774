//! A userspace TCP link between two nodes on loopback, which can be cut and restored: the demo
//! and the tests use it to emulate an outage (this kernel has no `netem`). While cut, open
//! connections are closed and new ones are accepted and dropped at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};

/// A cuttable link. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Link(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    addr: SocketAddr,
    target: Mutex<Option<SocketAddr>>,
    up: AtomicBool,
    generation: watch::Sender<u64>,
    connections: AtomicU64,
}

impl Link {
    /// Listens on a free loopback port; forwards nowhere until [`Link::set_target`].
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let (generation, _) = watch::channel(0);
        let link = Self(Arc::new(Inner {
            addr: listener.local_addr()?,
            target: Mutex::new(None),
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

    /// Where the link leads.
    pub async fn set_target(&self, target: SocketAddr) {
        *self.0.target.lock().await = Some(target);
    }

    /// Cuts the link: open connections close, new ones are dropped.
    pub fn cut(&self) {
        self.0.up.store(false, Ordering::SeqCst);
        self.0.generation.send_modify(|g| *g += 1);
    }

    /// Restores the link.
    pub fn restore(&self) {
        self.0.up.store(true, Ordering::SeqCst);
    }

    /// Whether the link is up.
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
                continue;
            };
            if !self.is_up() {
                drop(inbound);
                continue;
            }
            let Some(target) = *self.0.target.lock().await else {
                drop(inbound);
                continue;
            };
            self.0.connections.fetch_add(1, Ordering::Relaxed);
            let mut cut = self.0.generation.subscribe();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let mut inbound = inbound;
                tokio::select! {
                    _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    }
}
