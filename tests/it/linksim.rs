//! The link emulator (`demo::linksim` under `demo::link`): bandwidth shared by every
//! connection in a direction, delay, a queue that holds senders back, cuts, flapping and
//! counters — over real TCP on loopback, against small echo and sink servers. Each test takes
//! a few seconds at most; every wait is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lapor_node::demo::link::Link;
use lapor_node::demo::linksim::{Line, Shape, Side};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

/// A server that answers every byte with the same byte.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A server that reads everything and answers nothing.
async fn sink_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

async fn link(shape: Shape, target: SocketAddr) -> Link {
    let link = Link::start_on(&Line::new(shape), Side::A).await.unwrap();
    link.set_target(target).await;
    link
}

/// Sends `bytes` on each of `conns` connections at once to a sink; returns the time until the
/// line delivered them all.
async fn push(link: &Link, conns: usize, bytes: usize) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let addr = link.addr();
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&vec![7u8; bytes]).await.unwrap();
            s.shutdown().await.unwrap();
            // Keep the connection until the other side closes it.
            let _ = tokio::time::timeout(WAIT, s.read(&mut [0u8; 1])).await;
        }));
    }
    let total = u64::try_from(conns * bytes).unwrap();
    let deadline = start + WAIT;
    while link.line().counters().a_to_b.delivered < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    assert_eq!(
        link.line().counters().a_to_b.delivered,
        total,
        "all delivered in time"
    );
    for t in tasks {
        t.abort();
    }
    took
}

async fn round_trip(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
    t.elapsed()
}

/// Never faster than the line allows; at most `slack` slower, plus 100 ms for the scheduling
/// of a loaded machine (other builds share these cores, and timers wake late).
fn within(got: Duration, ideal: Duration, slack: f64) -> bool {
    let (g, i) = (got.as_secs_f64(), ideal.as_secs_f64());
    g >= i * 0.97 && g <= i * (1.0 + slack) + 0.1
}

/// 1 MB at 4 Mbit/s takes 2 s, on one connection or spread over four: one clock per
/// direction, so parallel connections cannot beat the line's rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_keeps_to_the_rate_and_parallel_connections_share_it() {
    let sink = sink_server().await;
    let shape = Shape::new(4_000_000, Duration::from_millis(20));
    let mb = 1_000_000;
    let ideal = shape.serialise(mb) + shape.delay * 3;

    let one = push(&link(shape, sink).await, 1, mb).await;
    assert!(
        within(one, ideal, 0.10),
        "one connection: {one:?} for {ideal:?}"
    );

    let l = link(shape, sink).await;
    let four = push(&l, 4, mb / 4).await;
    assert!(
        within(four, ideal, 0.10),
        "four connections: {four:?} for {ideal:?}"
    );
    let c = l.line().counters();
    assert_eq!((c.connections, l.connections()), (4, 4));
    assert_eq!(c.a_to_b.sent, u64::try_from(mb).unwrap());
    assert_eq!(c.b_to_a, Default::default(), "the sink answered nothing");
}

/// A request and its answer take one round trip (twice the one-way delay); a new
/// connection's first exchange also pays the TCP handshake's round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_answer_take_two_one_way_delays() {
    let echo = echo_server().await;
    let delay = Duration::from_millis(200);
    let l = link(Shape::new(1_000_000, delay), echo).await;
    let mut s = TcpStream::connect(l.addr()).await.unwrap();
    let first = round_trip(&mut s).await;
    assert!(within(first, delay * 4, 0.15), "first exchange {first:?}");
    let mut rtts = Vec::new();
    for _ in 0..3 {
        rtts.push(round_trip(&mut s).await);
    }
    // Every one at least a round trip; the quickest close to it.
    let best = *rtts.iter().min().unwrap();
    assert!(rtts.iter().all(|r| within(*r, delay * 2, 0.5)), "{rtts:?}");
    assert!(within(best, delay * 2, 0.10), "{rtts:?}");
    let c = l.line().counters();
    assert_eq!((c.a_to_b.sent, c.a_to_b.delivered), (16, 16));
    assert_eq!((c.b_to_a.sent, c.b_to_a.delivered), (16, 16));
    assert_eq!(c.connections, 1);
}

/// A full queue stops the proxy reading: what the line holds is the queue plus what is in
/// flight, however much the sender has written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_holds_the_sender_back() {
    let sink = sink_server().await;
    let shape = Shape::new(400_000, Duration::from_millis(50)).with_queue(16 * 1024);
    let l = link(shape, sink).await;
    let addr = l.addr();
    let writer = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(&vec![1u8; 4_000_000]).await;
    });
    let mut worst = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let c = l.line().counters().a_to_b;
        worst = worst.max(c.sent - c.delivered);
    }
    writer.abort();
    // Queue + one packet being admitted + 50 ms at 50 kB/s in flight.
    let bound = 16 * 1024 + 1500 + 2500;
    assert!(worst > 8 * 1024, "the line was busy ({worst} bytes held)");
    assert!(worst <= bound, "held {worst} bytes, more than {bound}");
    let sent = l.line().counters().a_to_b.sent;
    assert!(sent < 70_000, "at 50 kB/s for ≈ 1 s, {sent} bytes taken");
}

/// A cut closes open connections and refuses new ones; a restore lets them through again. The
/// proxy's own cut (one direction of a pair of nodes) works the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_closes_connections_and_refuses_new_ones_until_restored() {
    let echo = echo_server().await;
    let l = link(Shape::new(10_000_000, Duration::from_millis(10)), echo).await;
    let line = l.line().clone();
    let mut s = TcpStream::connect(l.addr()).await.unwrap();
    round_trip(&mut s).await;

    line.cut();
    assert!(!line.is_up());
    assert!(closed(&mut s).await, "the open connection was closed");
    let mut again = TcpStream::connect(l.addr()).await.unwrap();
    assert!(closed(&mut again).await, "a new connection is refused");
    // The relay counts its cut connection as it ends, which may come after the peer saw the
    // close on a loaded machine.
    let deadline = Instant::now() + WAIT;
    let mut c = line.counters();
    while c.cut == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        c = line.counters();
    }
    assert_eq!((c.connections, c.refused, c.cut), (1, 1, 1));

    line.restore();
    let mut s = TcpStream::connect(l.addr()).await.unwrap();
    round_trip(&mut s).await;

    l.cut();
    assert!(line.is_up() && !l.is_up());
    assert!(
        closed(&mut s).await,
        "the proxy's cut closes its connections"
    );
    l.restore();
    let mut s = TcpStream::connect(l.addr()).await.unwrap();
    round_trip(&mut s).await;
    assert_eq!(l.connections(), 3);
}

/// What a cut line had queued is lost with its connections: after the restore, a new
/// connection does not wait behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_empties_the_queue() {
    let echo = echo_server().await;
    let delay = Duration::from_millis(50);
    // 60 kB queued at 100 kbit/s is 4.8 s of wire time.
    let l = link(Shape::new(100_000, delay), echo).await;
    let mut s = TcpStream::connect(l.addr()).await.unwrap();
    s.write_all(&vec![5u8; 60_000]).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while l.line().counters().a_to_b.sent < 50_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    l.line().cut();
    l.line().restore();
    let mut s = TcpStream::connect(l.addr()).await.unwrap();
    let first = round_trip(&mut s).await;
    assert!(within(first, delay * 4, 0.2), "first exchange {first:?}");
}

/// Whether the peer closed the connection (end of stream or reset) within the wait.
async fn closed(s: &mut TcpStream) -> bool {
    let _ = s.write_all(b"x").await;
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A flapping line goes down and up on its schedule, and `steady` ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_line_follows_its_schedule() {
    let line = Line::new(Shape::default());
    line.flap(Duration::from_millis(300), Duration::from_millis(200));
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(line.is_up());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Up 0–300 ms, down 300–500 ms, up 500–800 ms, down 800–1000 ms.
    let downs = seen.iter().filter(|up| !**up).count();
    assert!((2..=5).contains(&downs), "{seen:?}");
    assert!(seen[0] && seen[1] && !seen[4], "{seen:?}");
    line.steady();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(line.is_up());
    line.cut_for(Duration::ZERO, Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!line.is_up());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(line.is_up());
}

/// `lapor-node linksim` carries connections with the delay asked for, reports its counters
/// while running and prints the totals on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_linksim_command_relays_reports_and_stops_on_ctrl_c() {
    use std::io::BufRead as _;
    let echo = echo_server().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--rate-kbit",
        "1000",
        "--delay-ms",
        "100",
        "--report-secs",
        "1",
    ];
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_lapor-node"))
            .args(["linksim", "--listen", &listen, "--to", &echo.to_string()])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |what: &str| {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line with {what:?}: {e}"),
            }
        }
    };
    let banner = next("linksim:");
    assert!(
        banner.contains("1000 kbit/s each way, 100 ms one way"),
        "{banner}"
    );
    let mut s = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut s).await;
    let rtt = round_trip(&mut s).await;
    assert!(
        within(rtt, Duration::from_millis(200), 0.25),
        "round trip {rtt:?}"
    );
    let report = next("delivered 8 B");
    assert!(report.contains("connections 1"), "{report}");
    let pid = child.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    next("total after");
    let totals = next("→");
    assert!(totals.contains("sent 8 B, delivered 8 B"), "{totals}");
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A child process killed if the test fails before it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
