//! Intake throughput over HTTP: complaints accepted per second by a real node (embedded SQLite,
//! WAL) with concurrent keep-alive clients, against a trivial JSON echo route served by an
//! actix server in the same process with the node's default worker count (one per core but one;
//! `BENCH_ECHO_WORKERS` to change) — the baseline of this machine in this run. Prints a table and the ratio; also the process's peak RSS.
//!
//! The two loads alternate in rounds (echo, intake, echo, intake, …) so that a machine whose
//! speed drifts during the run (shared CPUs) drifts for both; the rates are totals over the
//! rounds.
//!
//! `cargo bench --bench intake` (env `BENCH_SECS` per route, `BENCH_ROUNDS`, `BENCH_CLIENTS`
//! to change the load; `BENCH_PREFILL_SECS` files reports for that long before measuring, to
//! measure a node that already holds many tickets).

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark program: it reports on stdout and stops on any setup failure"
)]

use std::time::{Duration, Instant};

// The node's allocator, so the echo baseline (served from this process) is served with it too.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

fn report(i: usize) -> Value {
    json!({
        "kind": "pengaduan",
        "title": format!("Lampu jalan mati #{i}"),
        "body": "Lampu penerangan jalan di depan sekolah mati sejak tiga hari, jalan gelap di malam hari.",
        "category": "infrastruktur",
        "region": "3171",
        "channel": "web",
        "reporter": {"name": "Warga", "phone": "+628123456789"}
    })
}

async fn echo(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Created().json(body.into_inner())
}

/// Runs `clients` loops posting to `url` for `secs`; returns (ok responses, elapsed).
async fn load(url: String, clients: usize, time: Duration, expect: u16) -> (usize, Duration) {
    let start = Instant::now();
    let deadline = start + time;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap_or_default();
            let mut ok = 0usize;
            let mut i = c * 1_000_000;
            while Instant::now() < deadline {
                i += 1;
                match http.post(&url).json(&report(i)).send().await {
                    Ok(r) if r.status().as_u16() == expect => {
                        let _ = r.bytes().await;
                        ok += 1;
                    }
                    Ok(r) => {
                        eprintln!("unexpected status {}", r.status());
                        break;
                    }
                    Err(e) => {
                        eprintln!("request failed: {e}");
                        break;
                    }
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    (total, start.elapsed())
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time (user + system, in clock ticks) of each thread of `pid`, summed by thread name.
fn cpu_ticks_by_thread(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The name sits in parentheses and may contain spaces; fields follow the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
        *out.entry(name).or_insert(0) += ticks(11) + ticks(12);
    }
    out
}

/// Adds to `total` what each counter (CPU ticks by thread name, I/O counters by name) grew by
/// between two samples.
fn add_ticks(
    total: &mut std::collections::BTreeMap<String, u64>,
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) {
    for (name, t) in after {
        *total.entry(name.clone()).or_insert(0) +=
            t.saturating_sub(before.get(name).copied().unwrap_or(0));
    }
}

/// Per-thread-name CPU share (in cores) of `ticks` used over `secs`.
fn cpu_shares(ticks: &std::collections::BTreeMap<String, u64>, secs: f64) -> String {
    // Linux reports these in USER_HZ, 100 ticks per second on every platform Rust targets.
    let hz = 100.0;
    let mut parts: Vec<(String, f64)> = ticks
        .iter()
        .map(|(name, used)| (name.clone(), *used as f64 / hz / secs))
        .filter(|(_, cores)| *cores >= 0.01)
        .collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = parts.iter().map(|p| p.1).sum();
    let list: Vec<String> = parts.iter().map(|(n, c)| format!("{n} {c:.2}")).collect();
    format!("{total:.2} cores ({})", list.join(", "))
}

/// The I/O counters of `pid` (`/proc/<pid>/io`: `read_bytes` and `write_bytes` are bytes
/// fetched from or sent to storage, `syscw` write calls), or `None` if unreadable.
fn io_counters(pid: u32) -> Option<std::collections::BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_owned(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// A number from the environment variable `name`, if set and valid.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn main() {
    let secs: u64 = env_number("BENCH_SECS").unwrap_or(6);
    let rounds: u32 = env_number("BENCH_ROUNDS").filter(|r| *r > 0).unwrap_or(3);
    let round = Duration::from_secs(secs) / rounds;
    let clients: usize = env_number("BENCH_CLIENTS").unwrap_or(32);
    let prefill_secs: u64 = env_number("BENCH_PREFILL_SECS").unwrap_or(0);
    // The echo baseline runs as many workers as the node does by default (one per core but
    // one): on this 2-core machine that is also the echo's fastest setting, since the clients
    // in this process need a core too.
    let echo_workers: usize = env_number("BENCH_ECHO_WORKERS")
        .unwrap_or_else(|| lapor_node::config::HttpSettings::default().worker_count());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = {:?}\n\
             [http]\nlisten = \"127.0.0.1:0\"\nintake_per_minute = 0\n[log]\nformat = \"json\"\n",
            dir.path().display().to_string()
        );
        // The node runs as its own process (the release binary), so its memory is its own.
        let config = dir.path().join("config.toml");
        std::fs::write(&config, &text).expect("config");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lapor-node"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start node");
        let pid = child.id();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
            child.stderr.take().expect("stderr"),
        ));
        let port = lines
            .by_ref()
            .take(100)
            .filter_map(Result::ok)
            .find_map(|l| {
                let v: Value = serde_json::from_str(&l).ok()?;
                (v["fields"]["message"] == "node listening")
                    .then(|| v["fields"]["port"].as_u64())
                    .flatten()
            })
            .expect("node did not start");
        std::thread::spawn(move || lines.for_each(drop));
        let node_url = format!("http://127.0.0.1:{port}/api/v1/reports");

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let echo_port = listener.local_addr().expect("addr").port();
        let echo_server = HttpServer::new(|| App::new().route("/echo", web::post().to(echo)))
            .workers(echo_workers)
            .listen(listener)
            .expect("listen")
            .run();
        tokio::spawn(echo_server);
        let echo_url = format!("http://127.0.0.1:{echo_port}/echo");

        // Warm up both, then measure the echo baseline and intake in alternating rounds.
        let second = Duration::from_secs(1);
        load(echo_url.clone(), 4, second, 201).await;
        let (mut warm_n, _) = load(node_url.clone(), 4, second, 201).await;
        // Optionally fill the database first, to measure a node that already holds many tickets.
        if prefill_secs > 0 {
            let (n, t) = load(
                node_url.clone(),
                clients,
                Duration::from_secs(prefill_secs),
                201,
            )
            .await;
            println!(
                "prefill: {n} reports in {:.1} s ({:.0}/s)",
                t.as_secs_f64(),
                n as f64 / t.as_secs_f64()
            );
            warm_n += n;
        }
        let rss_before = rss_kib(pid, "VmRSS:");
        let (mut echo_n, mut echo_t, mut intake_n, mut intake_t) =
            (0, Duration::ZERO, 0, Duration::ZERO);
        let (mut node_ticks, mut bench_ticks) = Default::default();
        // Storage traffic of the node during the intake rounds (`None` once unreadable).
        let mut node_io = Some(std::collections::BTreeMap::new());
        for _ in 0..rounds {
            let (n, t) = load(echo_url.clone(), clients, round, 201).await;
            (echo_n, echo_t) = (echo_n + n, echo_t + t);
            let (node_before, bench_before) = (
                cpu_ticks_by_thread(pid),
                cpu_ticks_by_thread(std::process::id()),
            );
            let io_before = io_counters(pid);
            let (n, t) = load(node_url.clone(), clients, round, 201).await;
            (intake_n, intake_t) = (intake_n + n, intake_t + t);
            node_io = match (node_io, io_before, io_counters(pid)) {
                (Some(mut total), Some(before), Some(after)) => {
                    add_ticks(&mut total, &before, &after);
                    Some(total)
                }
                _ => None,
            };
            add_ticks(&mut node_ticks, &node_before, &cpu_ticks_by_thread(pid));
            add_ticks(
                &mut bench_ticks,
                &bench_before,
                &cpu_ticks_by_thread(std::process::id()),
            );
        }
        let per_report = |ticks: u64| ticks as f64 * 10_000.0 / intake_n.max(1) as f64;
        let node_us = per_report(node_ticks.values().sum());
        let writer_us = per_report(node_ticks.get("db-writer").copied().unwrap_or(0));
        let node_cpu = cpu_shares(&node_ticks, intake_t.as_secs_f64());
        let bench_cpu = cpu_shares(&bench_ticks, intake_t.as_secs_f64());
        let echo_rate = echo_n as f64 / echo_t.as_secs_f64();
        let intake_rate = intake_n as f64 / intake_t.as_secs_f64();
        println!(
            "intake benchmark: {clients} concurrent keep-alive clients, {secs} s per route in \
             {rounds} alternating rounds, SQLite WAL; echo on {echo_workers} HTTP \
             workers, the node on {}",
            lapor_node::config::HttpSettings::default().worker_count()
        );
        println!("| route | requests | req/s |");
        println!("|---|---|---|");
        println!("| POST /echo (baseline) | {echo_n} | {echo_rate:.0} |");
        println!("| POST /api/v1/reports | {intake_n} | {intake_rate:.0} |");
        println!("intake / echo = {:.3}", intake_rate / echo_rate);
        println!(
            "node RSS: {} MiB before intake load, {} MiB after, peak {} MiB",
            rss_before / 1024,
            rss_kib(pid, "VmRSS:") / 1024,
            rss_kib(pid, "VmHWM:") / 1024
        );
        println!("CPU during intake: node {node_cpu}; clients {bench_cpu}");
        println!(
            "node CPU per report: {node_us:.0} µs, of which the writer thread {writer_us:.0} µs"
        );
        match &node_io {
            Some(io) => {
                let per = |k: &str| io.get(k).copied().unwrap_or(0) as f64 / intake_n.max(1) as f64;
                println!(
                    "node storage traffic per report: {:.1} KiB written, {:.2} KiB read; {:.1} write calls",
                    per("write_bytes") / 1024.0,
                    per("read_bytes") / 1024.0,
                    per("syscw")
                );
            }
            None => println!("node storage traffic: /proc/{pid}/io not readable"),
        }
        println!(
            "reports filed: {} ({warm_n} while warming up)",
            warm_n + intake_n
        );
        let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        let value = |name: &str, kind: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{kind=\"{kind}\"}}")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (w, i) = ("lapor_db_write_total", "lapor_intake_groups_total");
        println!(
            "writer: {:.1} jobs per group commit; intake: {:.1} reports per writer job",
            value(w, "jobs") / value(w, "groups").max(1.0),
            value(i, "reports") / value(i, "groups").max(1.0)
        );
        let _ = child.kill();
        let _ = child.wait();
    });
}
