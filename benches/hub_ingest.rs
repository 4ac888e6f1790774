//! Hub ingest with one and with two hub processes on one PostgreSQL database
//! (`cargo bench --bench hub_ingest`; needs `LAPOR_TEST_PG_URL`, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`; `BENCH_N` sets the events, default 20000).
//!
//! Four province nodes (real `lapor-node serve` processes, SQLite) start with a backlog of
//! `BENCH_N / 4` signed events each; the hub (one process, or two from the same config with
//! two provinces sending to each) receives them over mTLS, verifies, judges, stores and
//! applies them with its statistics. Measured from the provinces' start until the hub's
//! database holds every event: events per second, the hub processes' CPU seconds and their
//! peak resident memory (VmHWM). Every process shares this machine's cores.

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    dead_code,
    reason = "a benchmark program: it reports on stdout, stops on any setup failure, and uses \
              one helper of the shared set-up"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use lapor_node::config::Settings;
use lapor_node::domain::{Actor, RegionCode, Timestamp};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_lapor-node");
const HUB: &str = "hub.lapor.test";
const PROVINCES: [&str; 4] = ["11", "53", "73", "94"];

fn lapor(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run lapor-node");
    assert!(
        out.status.success(),
        "lapor-node {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// A node directory from `init`, with a certificate from the bench's CA.
fn node(root: &Path, id: &str, province: &str, role: &str) -> PathBuf {
    let dir = root.join(id);
    lapor(&[
        "init",
        "--node-id",
        id,
        "--province",
        province,
        "--role",
        role,
        "--dir",
        s(&dir),
        "--listen",
        "127.0.0.1:0",
    ]);
    let tls = dir.join("tls");
    lapor(&[
        "certs",
        "issue",
        "--ca",
        s(&root.join("ca")),
        "--node-id",
        id,
        "--out",
        s(&tls),
    ]);
    dir.join("config.toml")
}

fn append(config: &Path, text: &str) {
    let mut all = std::fs::read_to_string(config).expect("config");
    all.push_str(text);
    std::fs::write(config, all).expect("config");
}

fn federation(config: &Path, port: u16) {
    let tls = config.parent().expect("dir").join("tls");
    append(
        config,
        &format!(
            "\n[federation]\nlisten = \"127.0.0.1:{port}\"\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
            s(&tls.join("ca.pem")),
            s(&tls.join("node.pem")),
            s(&tls.join("node.key"))
        ),
    );
}

fn peer(config: &Path, id: &str, role: &str, province: &str, port: u16) {
    append(
        config,
        &format!(
            "\n[[federation.peers]]\nid = \"{id}\"\nurl = \"https://{id}:{port}\"\nrole = \"{role}\"\n\
             province = \"{province}\"\naddress = \"127.0.0.1:{port}\"\n"
        ),
    );
}

/// Files `count` reports at a stopped province node, through its own intake.
fn backlog(config: &Path, province: &str, count: usize) {
    let settings = Settings::load(Some(config)).expect("settings");
    let db = lapor_node::app::open_database(&settings).expect("db");
    let key =
        lapor_node::event_log::keys::load_or_create(&db, settings.node_id(), &settings.key_path())
            .expect("key");
    let t = lapor_node::tickets::Tickets::new(db, &settings, key).expect("tickets");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let citizen = Actor::citizen();
    rt.block_on(async {
        let mut filed = 0;
        while filed < count {
            let chunk = (count - filed).min(500);
            let reports: Vec<_> = (0..chunk)
                .map(|_| {
                    let mut r = common::report();
                    r.region = RegionCode::parse(province).expect("region");
                    r
                })
                .collect();
            let all = reports
                .iter()
                .map(|r| t.submit_async(r, &citizen, Timestamp::now()));
            for r in futures_util::future::join_all(all).await {
                r.expect("submit");
            }
            filed += chunk;
        }
    });
}

/// `serve`, until it says it listens.
fn serve(config: &Path, env: &[(&str, String)]) -> Child {
    let mut child = Command::new(BIN)
        .args(["serve", "--config", s(config)])
        .env("LAPOR__LOG__FORMAT", "json")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    assert!(
        lines
            .by_ref()
            .take(200)
            .map_while(Result::ok)
            .any(|l| l.contains("node listening")),
        "{} did not start",
        config.display()
    );
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// (CPU seconds, peak resident KiB) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    ((ticks(11) + ticks(12)) / 100.0, hwm)
}

struct Figures {
    secs: f64,
    events: i64,
    cpu: f64,
    rss_kib: Vec<u64>,
}

/// One run: a fresh hub database and four provinces with their backlogs; `processes` hub
/// processes; returns when the hub holds every event.
fn run(admin_url: &str, processes: usize, per_province: usize) -> Figures {
    let name = format!("lapor_bench_ingest_{}_{processes}", std::process::id());
    let mut admin = PgConnection::establish(admin_url).expect("postgres");
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .expect("drop");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("create");
    let (base, _) = admin_url.rsplit_once('/').expect("database url");
    let url = format!("{base}/{name}");

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    lapor(&["certs", "ca", "--out", s(&root.join("ca"))]);
    let hub = node(root, HUB, "31", "hub");
    append(&hub, &format!("\n[database]\nurl = \"{url}\"\n"));
    let hub_ports: Vec<u16> = (0..processes).map(|_| free_port()).collect();
    federation(&hub, hub_ports[0]);
    let mut provinces = Vec::new();
    for (i, code) in PROVINCES.iter().enumerate() {
        let id = format!("prov-{code}.lapor.test");
        let config = node(root, &id, code, "province");
        let port = free_port();
        federation(&config, port);
        peer(&config, HUB, "hub", "31", hub_ports[i % processes]);
        peer(&hub, &id, "province", code, port);
        backlog(&config, code, per_province);
        provinces.push(config);
    }
    let mut hubs: Vec<Child> = hub_ports
        .iter()
        .map(|p| {
            serve(
                &hub,
                &[("LAPOR__FEDERATION__LISTEN", format!("127.0.0.1:{p}"))],
            )
        })
        .collect();
    let total = i64::try_from(per_province * PROVINCES.len()).expect("events");
    let start = Instant::now();
    let mut senders: Vec<Child> = provinces.iter().map(|c| serve(c, &[])).collect();
    let mut conn = PgConnection::establish(&url).expect("hub database");
    let mut peak = vec![0; hubs.len()];
    let held = loop {
        for (h, p) in hubs.iter().zip(peak.iter_mut()) {
            *p = (*p).max(usage(h.id()).1);
        }
        let n: i64 = lapor_node::db::schema::events::table
            .filter(lapor_node::db::schema::events::origin.ne(HUB))
            .count()
            .get_result(&mut conn)
            .expect("count");
        if n >= total || start.elapsed() > Duration::from_secs(600) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu = hubs.iter().map(|h| usage(h.id()).0).sum();
    for h in hubs.iter().map(|h| usage(h.id()).1).zip(peak.iter_mut()) {
        *h.1 = (*h.1).max(h.0);
    }
    for c in senders.iter_mut().chain(hubs.iter_mut()) {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(conn);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .expect("drop");
    assert_eq!(
        held, total,
        "the hub did not receive every event within 10 min"
    );
    Figures {
        secs,
        events: held,
        cpu,
        rss_kib: peak,
    }
}

fn main() {
    let Ok(admin) = std::env::var("LAPOR_TEST_PG_URL") else {
        println!("hub_ingest: set LAPOR_TEST_PG_URL (PostgreSQL) to run this benchmark");
        return;
    };
    let n = common::bench_n(20_000);
    let per = n / PROVINCES.len();
    println!(
        "hub ingest on PostgreSQL: {} events from {} provinces (real processes), machine: {} cores",
        per * PROVINCES.len(),
        PROVINCES.len(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!();
    println!(
        "| hub processes | events | seconds | events/s | ratio to one | hub CPU s | hub peak RSS (MiB, per process) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let one = run(&admin, 1, per);
    let two = run(&admin, 2, per);
    for (k, f) in [(1, &one), (2, &two)] {
        let rss: Vec<String> = f
            .rss_kib
            .iter()
            .map(|k| format!("{:.0}", *k as f64 / 1024.0))
            .collect();
        println!(
            "| {k} | {} | {:.2} | {:.0} | {:.2} | {:.1} | {} |",
            f.events,
            f.secs,
            f.events as f64 / f.secs,
            one.secs / f.secs,
            f.cpu,
            rss.join(", ")
        );
    }
}
