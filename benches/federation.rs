//! Federation throughput on loopback, in one run (`cargo bench --bench federation`;
//! `BENCH_N` sets the number of events, default 6000):
//!
//! - **replicate**: signed events delivered from NTT (prov-53) to Jakarta (prov-31) over mTLS —
//!   batched, zstd-compressed, several batches in flight — and verified, stored and applied
//!   at the receiver; events per second;
//! - **raw mTLS POST**: the same compressed batch bodies posted to the receiver's no-op route
//!   with the same client and concurrency: the transport ceiling;
//! - **reconnect + first batch**: after the link was cut and restored, the time from the first
//!   delivery attempt to the acknowledgement of a small batch on a fresh TLS connection.

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
use lapor_node::demo::cluster::{Cluster, NodeSpec, Options};
use lapor_node::demo::scenario::{AGENCY, HUB, JAKARTA, NTT};
use lapor_node::domain::{Actor, AgencyCode, NodeId, Role, Timestamp};
use lapor_node::tickets::Action;

mod common;

fn file(c: &Cluster, tickets: usize) {
    let t = &c.node(NTT).expect("ntt").state.tickets;
    let verifier = Actor {
        role: Role::Verifier,
        officer: Some("v".into()),
        agency: None,
    };
    let agency = AgencyCode::parse(AGENCY).expect("agency");
    for _ in 0..tickets {
        let mut r = common::report();
        r.agency = None;
        let id = t
            .submit(&r, &Actor::citizen(), Timestamp::now())
            .expect("submit")
            .event
            .ticket;
        t.act(&id, &verifier, Action::Verify, Timestamp::now())
            .expect("verify");
        let d = Action::Dispatch {
            agency: agency.clone(),
        };
        t.act(&id, &verifier, d, Timestamp::now())
            .expect("dispatch");
    }
}

fn main() -> anyhow::Result<()> {
    let n = common::bench_n(6000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let specs = [
            NodeSpec::new(HUB, "31", NodeRole::Hub),
            NodeSpec::new(JAKARTA, "31", NodeRole::Province),
            NodeSpec::new(NTT, "53", NodeRole::Province),
        ];
        let c = Cluster::start(dir.path(), &specs, &Options::default()).await?;
        let ntt = c.node(NTT).expect("ntt").federation.clone();
        let jkt_id = NodeId::parse(JAKARTA)?;
        let jkt = c.node(JAKARTA).expect("jkt");
        file(&c, n / 3);
        let events = (n / 3) * 3;
        // The raw baseline: the very bodies delivery would send, to the no-op route.
        let s = ntt.settings().clone();
        let limit = i64::try_from(events).unwrap_or(i64::MAX);
        let batches = lapor_node::federation::outbox::build_batches(
            ntt.db(),
            JAKARTA,
            0,
            lapor_node::federation::outbox::BatchSpec {
                limit,
                max_events: s.batch_max_events,
                max_bytes: s.batch_max_bytes,
                due: lapor_node::domain::Timestamp::now(),
                level: lapor_node::federation::protocol::FAST,
                dictionary: true,
            },
        )?;
        let bytes: usize = batches.iter().map(|b| b.body.len()).sum();
        let files = lapor_node::tls::config::TlsFiles {
            ca: s.ca_file.clone(),
            cert: s.cert_file.clone(),
            key: s.key_file.clone(),
        };
        let peer = s.peer(&jkt_id).expect("peer").clone();
        let addr = peer.address.expect("address");
        let client = lapor_node::tls::config::client(
            &files,
            &[(JAKARTA.to_owned(), addr)],
            Duration::from_secs(60),
        )?;
        let url = format!("https://{JAKARTA}:{}/federation/v1/noop", addr.port());
        let start = Instant::now();
        for chunk in batches.chunks(s.in_flight) {
            let sends = chunk.iter().map(|b| {
                client
                    .post(&url)
                    .header("content-encoding", "zstd")
                    .body(b.body.clone())
                    .send()
            });
            for r in futures_util::future::join_all(sends).await {
                r?.error_for_status()?;
            }
        }
        let raw = start.elapsed();

        if std::env::var_os("BENCH_PROFILE_PAUSE").is_some() {
            // Lets a profiler attach to the replication phase alone.
            eprintln!("pid {}: replication starts in 3 s", std::process::id());
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let cpu0 = cpu_seconds();
        let start = Instant::now();
        let d = ntt.drain(&jkt_id).await?;
        let replicate = start.elapsed();
        let cpu = cpu_seconds() - cpu0;
        assert_eq!(d.acknowledged, events, "every event acknowledged");
        let mut conn = jkt.federation.db().read()?;
        let held = lapor_node::event_log::store::count(&mut conn)?;
        drop(conn);
        assert_eq!(usize::try_from(held)?, events, "every event stored at the receiver");

        // Reconnect and first batch: cut (closing the pooled connections), restore, deliver.
        let link = c.link(NTT, JAKARTA).expect("link");
        let mut reconnects = Vec::new();
        for _ in 0..5 {
            link.cut();
            file(&c, 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
            link.restore();
            let t = Instant::now();
            let r = ntt.deliver_once(&jkt_id).await;
            let r = match r {
                Ok(r) => r,
                // The pooled connection died with the cut: the next round reconnects.
                Err(_) => ntt.deliver_once(&jkt_id).await?,
            };
            reconnects.push(t.elapsed());
            assert_eq!(r.acknowledged, 3);
        }
        reconnects.sort();

        let rate = |d: Duration| events as f64 / d.as_secs_f64();
        println!("federation replication on loopback (mTLS, zstd, {} batches of ≤{} events, {} in flight)", batches.len(), s.batch_max_events, s.in_flight);
        println!("| measure | events | seconds | events/s | ratio |");
        println!("|---|---:|---:|---:|---:|");
        println!("| raw mTLS POST of the same bodies to a no-op route | {events} | {:.3} | {:.0} | 1.00 |", raw.as_secs_f64(), rate(raw));
        println!("| replicate: verified, stored and applied at the receiver | {events} | {:.3} | {:.0} | {:.2} |", replicate.as_secs_f64(), rate(replicate), raw.as_secs_f64() / replicate.as_secs_f64());
        println!("CPU used while replicating: {cpu:.2} s over {:.2} s (both nodes share this machine's cores)", replicate.as_secs_f64());
        println!("compressed bytes on the wire: {bytes} ({:.0} B/event)", bytes as f64 / events as f64);
        println!("reconnect + first batch (3 events, fresh TLS connection), 5 runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
            reconnects[0].as_secs_f64() * 1e3, reconnects[2].as_secs_f64() * 1e3, reconnects[4].as_secs_f64() * 1e3);
        c.shutdown().await;
        anyhow::Ok(())
    })
}

/// CPU time (user + system) this process has used so far, in seconds.
#[must_use]
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 12th, stime 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
