//! Federation catch-up over an emulated slow link (`cargo bench --bench link`; prints a table
//! for `docs/BENCHMARKS.md`).
//!
//! For each link profile, a hub, Jakarta (prov-31) and NTT (prov-53) run in one process with
//! the background workers on and the node's own retry and timeout defaults; every line between
//! two nodes has the profile's shape. The NTT–hub line is cut; NTT files
//! `LAPOR_BENCH_EVENTS` reports (one `created` event each, handled in NTT, so only the hub
//! receives them); the line is restored and the clock runs until the hub holds every event:
//!
//! - **catch-up** ÷ the **information bound**: the zstd-19 size of the same events' JSON
//!   concatenated, divided by the line's rate (and by the share of time it is up, when it
//!   flaps);
//! - **uplink bytes per event** (NTT → hub payload on the line: requests, answers, TLS) ÷ the
//!   zstd-19 bytes per event; the downlink's beside it;
//! - **connections** opened on the line during the catch-up (and closed by flaps);
//! - **first attempt**: the time from the restore to the first byte NTT sends;
//! - **forward after idle**: after 8 s of quiet, a ticket filed at NTT is dispatched to a
//!   Jakarta agency; the time from the dispatch's commit until Jakarta holds the same state
//!   (median of 3), and its ratio to 3 round trips.
//!
//! Environment: `LAPOR_BENCH_EVENTS` (default 300), `LAPOR_BENCH_PROFILES` (comma-separated
//! names, default all: `loopback,100k-600ms,2M-600ms,200k-800ms,flap-5s`),
//! `LAPOR_BENCH_TIMEOUT_SECS` (per catch-up; default 10 × the bound, at least 120 s),
//! `LAPOR_BENCH_OUTAGE_SECS` (default 10), `RUST_LOG` (the nodes' logs on stderr). Every wait
//! is bounded: a stall prints a "stalled" row.

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    dead_code,
    reason = "a benchmark program: it reports on stdout, stops on any setup failure, and uses \
              one helper of the shared set-up"
)]

use std::time::{Duration, Instant};

use lapor_node::config::NodeRole;
use lapor_node::demo::cluster::{Cluster, ClusterNode, NodeSpec, Options, state_hash};
use lapor_node::demo::linksim::{Shape, Traffic};
use lapor_node::demo::scenario::{AGENCY, HUB, JAKARTA, NTT};
use lapor_node::domain::{Actor, AgencyCode, RegionCode, Role, TicketId, Timestamp};
use lapor_node::tickets::Action;

mod common;

/// Quiet before each forwarded ticket: longer than the server keeps an idle connection (5 s),
/// so each one starts from a cold connection as it would after a quiet spell.
const IDLE: Duration = Duration::from_secs(8);

struct Profile {
    name: &'static str,
    label: &'static str,
    shape: Shape,
    /// Up, down.
    flap: Option<(Duration, Duration)>,
}

fn profiles() -> Vec<Profile> {
    let ms = Duration::from_millis;
    let all = vec![
        Profile {
            name: "loopback",
            label: "loopback (no limit)",
            shape: Shape::default(),
            flap: None,
        },
        Profile {
            name: "100k-600ms",
            label: "100 kbit/s, 600 ms RTT",
            shape: Shape::new(100_000, ms(300)),
            flap: None,
        },
        Profile {
            name: "2M-600ms",
            label: "2 Mbit/s, 600 ms RTT",
            shape: Shape::new(2_000_000, ms(300)),
            flap: None,
        },
        Profile {
            name: "200k-800ms",
            label: "200 kbit/s, 800 ms RTT",
            shape: Shape::new(200_000, ms(400)),
            flap: None,
        },
        Profile {
            name: "flap-5s",
            label: "100 kbit/s, 600 ms RTT, 5 s up / 1 s down",
            shape: Shape::new(100_000, ms(300)),
            flap: Some((Duration::from_secs(5), Duration::from_secs(1))),
        },
    ];
    match std::env::var("LAPOR_BENCH_PROFILES") {
        Ok(list) => {
            let want: Vec<&str> = list.split(',').map(str::trim).collect();
            all.into_iter().filter(|p| want.contains(&p.name)).collect()
        }
        Err(_) => all,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// What one profile measured.
struct Row {
    events: usize,
    /// Catch-up time, or how many events the hub held when the wait ended.
    catch_up: Result<Duration, (usize, Duration)>,
    bound: Duration,
    first_attempt: Option<Duration>,
    up: Traffic,
    down: Traffic,
    zstd19: usize,
    json: usize,
    connections: u64,
    cut: u64,
    forward: Vec<Option<Duration>>,
    outage: Duration,
    timeout: Duration,
}

fn file_local(ntt: &ClusterNode, n: usize) {
    let t = &ntt.state.tickets;
    let region = RegionCode::parse("5371").expect("region");
    for _ in 0..n {
        let mut r = common::report();
        r.region = region.clone();
        t.submit(&r, &Actor::citizen(), Timestamp::now())
            .expect("submit");
    }
}

/// Files a report at NTT and dispatches it to the Jakarta agency; returns the ticket and the
/// time the dispatch was committed.
fn forward_one(ntt: &ClusterNode) -> (TicketId, Instant) {
    let t = &ntt.state.tickets;
    let verifier = Actor {
        role: Role::Verifier,
        officer: Some("v".into()),
        agency: None,
    };
    let mut r = common::report();
    r.region = RegionCode::parse("5371").expect("region");
    let id = t
        .submit(&r, &Actor::citizen(), Timestamp::now())
        .expect("submit")
        .event
        .ticket;
    t.act(&id, &verifier, Action::Verify, Timestamp::now())
        .expect("verify");
    let agency = AgencyCode::parse(AGENCY).expect("agency");
    t.act(
        &id,
        &verifier,
        Action::Dispatch { agency },
        Timestamp::now(),
    )
    .expect("dispatch");
    (id, Instant::now())
}

fn held(node: &ClusterNode) -> usize {
    let mut conn = node.federation.db().read().expect("db");
    let n = lapor_node::event_log::store::count(&mut conn).expect("count");
    usize::try_from(n).unwrap_or(0)
}

/// The JSON of every event NTT holds, one per line, and its zstd-19 size.
fn information(ntt: &ClusterNode) -> (usize, usize) {
    let mut conn = ntt.federation.db().read().expect("db");
    let mut all = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let key = after.as_ref().map(|(t, i)| (t.as_str(), i.as_str()));
        let page = lapor_node::event_log::store::page(&mut conn, key, 1000).expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.ticket.clone(), last.id.clone()));
        for e in page.iter().filter(|e| e.origin == NTT) {
            all.extend_from_slice(e.raw.as_bytes());
            all.push(b'\n');
        }
    }
    let packed = zstd::bulk::compress(&all, 19).expect("zstd");
    (all.len(), packed.len())
}

async fn run(p: &Profile, n: usize) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let specs = [
        NodeSpec::new(HUB, "31", NodeRole::Hub),
        NodeSpec::new(JAKARTA, "31", NodeRole::Province),
        NodeSpec::new(NTT, "53", NodeRole::Province),
    ];
    let opts = Options {
        workers: true,
        pull_interval_secs: 60,
        link: p.shape,
        fast_retries: false,
        ..Options::default()
    };
    let c = Cluster::start(dir.path(), &specs, &opts).await?;
    let line = c.line(NTT, HUB).expect("line").clone();
    let (ntt, hub) = (c.node(NTT).expect("ntt"), c.node(HUB).expect("hub"));

    // The outage: NTT files its reports alone.
    let outage = Instant::now();
    line.cut();
    tokio::task::block_in_place(|| file_local(ntt, n));
    let (json, zstd19) = tokio::task::block_in_place(|| information(ntt));
    let outage_secs = env_u64("LAPOR_BENCH_OUTAGE_SECS").unwrap_or(10);
    tokio::time::sleep_until((outage + Duration::from_secs(outage_secs)).into()).await;

    let duty = p.flap.map_or(1.0, |(up, down)| {
        up.as_secs_f64() / (up + down).as_secs_f64()
    });
    let bound = Duration::from_secs_f64(p.shape.serialise(zstd19).as_secs_f64() / duty);
    let timeout = env_u64("LAPOR_BENCH_TIMEOUT_SECS").map_or_else(
        || (bound * 10).max(Duration::from_secs(120)),
        Duration::from_secs,
    );
    let outage = outage.elapsed();
    let base = held(hub);
    let before = (
        c.traffic(NTT, HUB).expect("up"),
        c.traffic(HUB, NTT).expect("down"),
    );
    let counters = line.counters();
    line.restore();
    if let Some((up, down)) = p.flap {
        line.flap(up, down);
    }
    let start = Instant::now();
    let mut first_attempt = None;
    let mut report = start;
    let catch_up = loop {
        let got = held(hub) - base;
        if first_attempt.is_none() && c.traffic(NTT, HUB).expect("up").sent > before.0.sent {
            first_attempt = Some(start.elapsed());
        }
        if got >= n {
            break Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            break Err((got, start.elapsed()));
        }
        if report.elapsed() > Duration::from_secs(30) {
            report = Instant::now();
            eprintln!(
                "  {}: {:.0} s, hub holds {got} of {n}, uplink {} B, {} connection(s)",
                p.name,
                start.elapsed().as_secs_f64(),
                (c.traffic(NTT, HUB).expect("up") - before.0).delivered,
                (line.counters() - counters).connections,
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let after = line.counters() - counters;
    let up = c.traffic(NTT, HUB).expect("up") - before.0;
    let down = c.traffic(HUB, NTT).expect("down") - before.1;
    line.steady();

    // Forward latency after idle, over the NTT–Jakarta line.
    let jakarta = c.node(JAKARTA).expect("jakarta");
    let mut forward = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(IDLE).await;
        let (id, committed) = tokio::task::block_in_place(|| forward_one(ntt));
        let want = state_hash(ntt, &id.to_string())?;
        let deadline = committed + Duration::from_secs(60);
        let mut got = None;
        while Instant::now() < deadline {
            if state_hash(jakarta, &id.to_string())? == want {
                got = Some(committed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        forward.push(got);
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), c.shutdown()).await;
    Ok(Row {
        events: n,
        catch_up,
        bound,
        first_attempt,
        up,
        down,
        zstd19,
        json,
        connections: after.connections,
        cut: after.cut,
        forward,
        outage,
        timeout,
    })
}

fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

fn print_row(p: &Profile, r: &Row) {
    let n = r.events as f64;
    let per = |b: u64| b as f64 / n;
    let z = r.zstd19 as f64 / n;
    let (catch_up, ratio) = match r.catch_up {
        Ok(d) if r.bound.is_zero() => (secs(d), "—".to_owned()),
        Ok(d) => (
            secs(d),
            format!("{:.1}×", d.as_secs_f64() / r.bound.as_secs_f64()),
        ),
        Err((got, d)) => (
            format!("stalled: {got} of {} after {}", r.events, secs(d)),
            "—".to_owned(),
        ),
    };
    let mut fwd: Vec<Duration> = r.forward.iter().flatten().copied().collect();
    fwd.sort();
    let rtt = p.shape.delay * 2;
    let forward = match fwd.get(fwd.len() / 2) {
        None => "stalled".to_owned(),
        Some(m) if rtt.is_zero() => format!("{:.0} ms", m.as_secs_f64() * 1e3),
        Some(m) => format!(
            "{:.2} s ({:.2}× 3 RTT)",
            m.as_secs_f64(),
            m.as_secs_f64() / (rtt * 3).as_secs_f64()
        ),
    };
    let stalled = r.forward.iter().filter(|f| f.is_none()).count();
    let forward = if stalled > 0 {
        format!("{forward}, {stalled} of 3 stalled")
    } else {
        forward
    };
    println!(
        "| {} | {} | {catch_up} | {:.2} | {ratio} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {} ({} cut) | {forward} |",
        p.label,
        r.events,
        r.bound.as_secs_f64(),
        r.first_attempt.map_or_else(|| "—".to_owned(), secs),
        per(r.up.delivered),
        z,
        per(r.up.delivered) / z,
        per(r.down.delivered),
        r.connections,
        r.cut,
    );
}

fn print_note(p: &Profile, r: &Row) {
    let n = r.events as f64;
    println!(
        "- {}: events' JSON {:.0} B/event, zstd-19 {:.0} B/event ({:.1}× smaller); outage {} s; catch-up wait {} s at most",
        p.label,
        r.json as f64 / n,
        r.zstd19 as f64 / n,
        r.json as f64 / r.zstd19 as f64,
        secs(r.outage),
        secs(r.timeout),
    );
}

fn main() -> anyhow::Result<()> {
    let n = usize::try_from(env_u64("LAPOR_BENCH_EVENTS").unwrap_or(300))?;
    // The nodes' logs on stderr when asked for (e.g. `RUST_LOG=lapor_node::federation=debug`).
    let _log = std::env::var("RUST_LOG").ok().map(|filter| {
        lapor_node::telemetry::init(&lapor_node::config::LogSettings {
            format: lapor_node::config::LogFormat::Text,
            filter,
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "federation catch-up over an emulated link: {n} events filed at NTT while its line to the hub was cut"
    );
    println!(
        "| link | events | catch-up s | bound s | ratio | first attempt s | uplink B/event | zstd-19 B/event | uplink ÷ zstd-19 | downlink B/event | connections | forward after idle (median of 3) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut done = Vec::new();
    for p in profiles() {
        let r = rt.block_on(run(&p, n))?;
        print_row(&p, &r);
        done.push((p, r));
    }
    println!();
    for (p, r) in &done {
        print_note(p, r);
    }
    Ok(())
}
