//! The SMS channel's throughput and latency, against baselines measured in the same run.
//!
//! 1. Inbound: `LAPOR` messages handled per second through Kannel's HTTP call
//!    (`GET /sms/kannel…`, as smsbox's `get-url` calls it, a new number and message id each)
//!    vs the same node's JSON intake (`POST /api/v1/reports`), alternating in rounds, with
//!    concurrent keep-alive clients. Each SMS also queues its answer in the same transaction.
//! 2. Outbound: the time from an officer's change (`verify`) to the node's `sendsms` call,
//!    with the sender running in the background, vs a bare `sendsms` round trip to the same
//!    stand-in gateway (the baseline).
//!
//! Not measured here: the rate of the whole Kannel chain (fakesmsc → bearerbox → smsbox →
//! node). fakesmsc's interactive mode reads one typed line per wake-up, so it, not Kannel or
//! the node, would set the figure; the end-to-end test (`tests/it/kannel.rs`) covers the chain.
//!
//! `cargo bench --bench sms` (`BENCH_SECS` per round, `BENCH_ROUNDS`, `BENCH_CLIENTS`,
//! `BENCH_LATENCY_N`).

#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark program: it reports on stdout and stops on any setup failure"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use actix_web::{App as ActixApp, HttpResponse, HttpServer, web};
use lapor_node::app::App;
use lapor_node::config::Settings;
use lapor_node::domain::{Actor, Role, Timestamp};
use lapor_node::tickets::Action;
use serde_json::json;

const SECRET: &str = "benchsmssecret0123456789";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A stand-in `sendsms`: records when each call arrived.
fn gateway(arrivals: Arc<Mutex<Vec<Instant>>>) -> String {
    let server = HttpServer::new(move || {
        let a = arrivals.clone();
        ActixApp::new().default_service(web::to(move || {
            let a = a.clone();
            async move {
                a.lock().unwrap().push(Instant::now());
                HttpResponse::Accepted().body("0: Accepted for delivery")
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("http://127.0.0.1:{port}/cgi-bin/sendsms")
}

fn node(dir: &std::path::Path, sendsms: &str, worker: bool) -> App {
    let text = format!(
        "[node]\nid = \"prov-53.lapor.test\"\nprovince = \"53\"\ndata_dir = {dir:?}\n\
         [http]\nlisten = \"127.0.0.1:0\"\nintake_per_minute = 0\n\
         [sms]\nshared_secret = {SECRET:?}\nsendsms_url = {sendsms:?}\nsendsms_username = \"lapor\"\n\
         sendsms_password = \"pw\"\nper_number_per_hour = 1000000\nglobal_per_minute = 100000000\n\
         daily_cap_per_number = 1000000\nworker = {worker}\n",
        dir = dir.display().to_string()
    );
    App::build(&Settings::from_toml(&text).expect("settings")).expect("node")
}

/// `clients` loops for `time`, each sending requests built by `req(client, i)`; ok answers.
async fn load<F>(clients: usize, time: Duration, req: F) -> (usize, Duration)
where
    F: Fn(&reqwest::Client, usize, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let req = Arc::new(req);
    let start = Instant::now();
    let deadline = start + time;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap_or_default();
            let mut ok = 0;
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                match req(&http, c, i).send().await {
                    Ok(r) if r.status().is_success() => {
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

fn pct(sorted: &[f64], p: f64) -> f64 {
    // The nearest rank: index ⌊(n − 1)·p⌉, computed in integers (p in hundredths).
    let hundredths = (0..=100usize)
        .find(|h| *h as f64 >= p * 100.0)
        .unwrap_or(100);
    let i = (sorted.len().saturating_sub(1) * hundredths + 50) / 100;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() {
    let _log = lapor_node::telemetry::init(&lapor_node::config::LogSettings {
        format: lapor_node::config::LogFormat::Text,
        filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let secs = env("BENCH_SECS", 3);
    let rounds = env("BENCH_ROUNDS", 3);
    let clients = usize::try_from(env("BENCH_CLIENTS", 8)).unwrap_or(8);
    let n_latency = usize::try_from(env("BENCH_LATENCY_N", 30)).unwrap_or(30);

    // 1. Inbound: the Kannel call vs JSON intake, on one node, sender off.
    let dir = tempfile::tempdir().expect("tempdir");
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let sendsms = gateway(arrivals.clone());
    let app = node(dir.path(), &sendsms, false);
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let (mut sms_ok, mut sms_t, mut json_ok, mut json_t) = (0, Duration::ZERO, 0, Duration::ZERO);
    for round in 0..rounds {
        let url = format!("{base}/api/v1/reports");
        let (ok, t) = load(clients, Duration::from_secs(secs), move |h, c, i| {
            h.post(&url).json(&json!({
                "kind": "pengaduan", "title": format!("Jalan rusak {c}-{i}"),
                "body": "Jalan desa rusak parah sejak Januari, mohon diperbaiki.",
                "category": "infrastruktur", "region": "5371", "channel": "api",
                "anonymous": true, "reporter": {"phone": "+6281234567890"}
            }))
        })
        .await;
        json_ok += ok;
        json_t += t;
        let url = format!("{base}/sms/kannel");
        let (ok, t) = load(clients, Duration::from_secs(secs), move |h, c, i| {
            let from = format!("08{:02}{:08}", c % 100, round * 10_000_000 + i as u64);
            let id = format!("r{round}-c{c}-{i}");
            h.get(&url).query(&[
                ("secret", SECRET),
                ("from", from.as_str()),
                ("to", "1708"),
                (
                    "text",
                    "LAPOR Jalan desa rusak parah sejak Januari, mohon diperbaiki #infrastruktur",
                ),
                ("time", "1796596296"),
                ("id", id.as_str()),
                ("smsc", "bench"),
                ("coding", "0"),
                ("charset", "UTF-8"),
            ])
        })
        .await;
        sms_ok += ok;
        sms_t += t;
    }
    let json_rate = json_ok as f64 / json_t.as_secs_f64();
    let sms_rate = sms_ok as f64 / sms_t.as_secs_f64();
    println!(
        "\n## Inbound ({clients} clients, {rounds} rounds of {secs} s each, alternating; SQLite)\n"
    );
    println!("| path | reports | per second | vs JSON intake |");
    println!("|---|---|---|---|");
    println!(
        "| JSON intake `POST /api/v1/reports` (baseline) | {json_ok} | {json_rate:.0} | 1.00× |"
    );
    println!(
        "| Kannel's call `GET /sms/kannel` (LAPOR, answer queued) | {sms_ok} | {sms_rate:.0} | {:.2}× |",
        sms_rate / json_rate
    );

    // 2. Outbound latency: change → sendsms, sender running.
    let dir = tempfile::tempdir().expect("tempdir");
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let sendsms = gateway(arrivals.clone());
    let app = node(dir.path(), &sendsms, true);
    let base = format!("http://127.0.0.1:{}", app.port());
    let tickets = app.state().tickets.clone();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    // The baseline: a bare sendsms round trip.
    let mut bare = Vec::new();
    for _ in 0..n_latency {
        let t = Instant::now();
        http.get(&sendsms)
            .send()
            .await
            .expect("sendsms")
            .bytes()
            .await
            .ok();
        bare.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let verifier = Actor {
        role: Role::Verifier,
        officer: Some("bench".into()),
        agency: None,
    };
    let mut lat = Vec::new();
    for i in 0..n_latency {
        let from = format!("0813{:08}", i);
        let want = arrivals.lock().unwrap().len() + 1;
        let r = http
            .get(format!("{base}/sms/kannel"))
            .query(&[
                ("secret", SECRET),
                ("from", from.as_str()),
                ("text", "LAPOR lampu jalan mati"),
                ("id", &format!("lat-{i}")),
                ("smsc", "bench"),
            ])
            .send()
            .await
            .expect("sms");
        assert!(r.status().is_success());
        // Wait for the tracking code to go out, then time the change → its notice.
        let until = Instant::now() + Duration::from_secs(20);
        while arrivals.lock().unwrap().len() < want {
            assert!(Instant::now() < until, "the tracking code was never sent");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ticket = {
            let mut c = tickets.db().read().unwrap();
            let rows = lapor_node::tickets::store::all(&mut c).unwrap();
            rows.into_iter().max_by_key(|r| r.created_at_ms).unwrap().id
        };
        let id = lapor_node::domain::TicketId::parse(&ticket).unwrap();
        let before = arrivals.lock().unwrap().len();
        let t0 = Instant::now();
        let t = tickets.clone();
        let v = verifier.clone();
        tokio::task::spawn_blocking(move || {
            t.act(&id, &v, Action::Verify, Timestamp::now()).unwrap()
        })
        .await
        .unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < until, "the notice was never sent");
            let arrived = arrivals.lock().unwrap().get(before).copied();
            if let Some(at) = arrived {
                lat.push((at - t0).as_secs_f64() * 1000.0);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    bare.sort_by(f64::total_cmp);
    lat.sort_by(f64::total_cmp);
    println!(
        "\n## Outbound latency ({n_latency} changes; sender in the background; stand-in sendsms)\n"
    );
    println!("| | p50 ms | p95 ms | p50 vs bare call |");
    println!("|---|---|---|---|");
    println!(
        "| bare `sendsms` round trip (baseline) | {:.2} | {:.2} | 1.00× |",
        pct(&bare, 0.5),
        pct(&bare, 0.95)
    );
    println!(
        "| officer's `verify` → the node's `sendsms` call | {:.2} | {:.2} | {:.1}× |",
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 0.5) / pct(&bare, 0.5)
    );
}
