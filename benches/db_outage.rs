//! Surviving the database, measured on PostgreSQL (`LAPOR_TEST_PG_URL`, a server where the user
//! may create databases; the bench creates and drops its own):
//!
//! 1. **Recovery after an outage under load**: a node behind a TCP proxy takes intake from
//!    `CLIENTS` clients; the proxy is cut (every connection closed, new ones refused) for
//!    `OUTAGE_SECS` and restored. Printed per round: time from the cut to the first 503, the
//!    answers during the outage by status, and the time from the database's return to the
//!    first 201.
//! 2. **Two nodes on one database**: two `App`s of one node (separate pools and writers, as
//!    two processes have) take concurrent intake for `RUN_SECS`; printed: answers by status,
//!    the 5xx rate (target 0), reports per second.
//!
//! `cargo bench --bench db_outage` (env: `OUTAGE_SECS` default 5, `ROUNDS` 3, `CLIENTS` 8,
//! `RUN_SECS` 10).

#![expect(
    clippy::print_stdout,
    reason = "a benchmark prints its table on stdout"
)]

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection as _, RunQueryDsl as _};
use lapor_node::app::App;
use lapor_node::config::Settings;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !o.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (Ok(c1), Ok(c2), Ok(s1), Ok(s2)) = (
                    client.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                if let Ok(mut held) = c.lock() {
                    held.push(c1);
                    held.push(s1);
                }
                pipe(c2, s2);
                pipe(server, client);
            }
        });
        Ok(Self { port, open, conns })
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        if let Ok(mut held) = self.conns.lock() {
            for s in held.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A fresh database, dropped with this value.
struct PgDb {
    admin: String,
    name: String,
    url: url::Url,
    dir: tempfile::TempDir,
}

impl PgDb {
    fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("lapor_bench_outage_{}", std::process::id());
        let mut c = diesel::PgConnection::establish(admin)?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut c)?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut c)?;
        let mut url = url::Url::parse(admin)?;
        url.set_path(&name);
        Ok(Self {
            admin: admin.to_owned(),
            name,
            url,
            dir: tempfile::tempdir()?,
        })
    }

    fn settings(&self, url: &str) -> anyhow::Result<Settings> {
        Ok(Settings::from_toml(&format!(
            "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = {dir:?}\n\
             [database]\nurl = {url:?}\npool_size = 4\nconnect_timeout_secs = 2\n\
             pool_timeout_ms = 500\n\
             [http]\nlisten = \"127.0.0.1:0\"\nintake_per_minute = 0\n\
             [log]\nfilter = \"error\"\n",
            dir = self.dir.path().display().to_string(),
        ))?)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = diesel::PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut c);
        }
    }
}

type Answers = Arc<Mutex<Vec<(Instant, u16)>>>;

fn report() -> serde_json::Value {
    serde_json::json!({
        "kind": "pengaduan",
        "title": "Lampu lalu lintas mati",
        "body": "Lampu lalu lintas di simpang Kuningan mati sejak kemarin malam.",
        "category": "transportasi",
        "region": "3171",
        "channel": "web"
    })
}

fn load(
    bases: &[String],
    clients: u64,
    stop: &Arc<AtomicBool>,
) -> (Answers, Vec<tokio::task::JoinHandle<()>>) {
    let answers: Answers = Arc::default();
    let http = reqwest::Client::new();
    let tasks = (0..clients)
        .map(|i| {
            let (http, stop, answers, bases) =
                (http.clone(), stop.clone(), answers.clone(), bases.to_vec());
            tokio::spawn(async move {
                let mut n = usize::try_from(i).unwrap_or(0);
                while !stop.load(Ordering::SeqCst) {
                    let base = &bases[n % bases.len()];
                    n += 1;
                    let status = match http
                        .post(format!("{base}/api/v1/reports"))
                        .json(&report())
                        .send()
                        .await
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    if let Ok(mut a) = answers.lock() {
                        a.push((Instant::now(), status));
                    }
                    if status != 201 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    (answers, tasks)
}

fn count(answers: &[(Instant, u16)], f: impl Fn(u16) -> bool) -> usize {
    answers.iter().filter(|a| f(a.1)).count()
}

async fn outage(admin: &str) -> anyhow::Result<()> {
    let (rounds, secs, clients) = (env("ROUNDS", 3), env("OUTAGE_SECS", 5), env("CLIENTS", 8));
    let db = PgDb::create(admin)?;
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(
        db.url.host_str().unwrap_or("127.0.0.1"),
        db.url.port().unwrap_or(5432),
    ))?
    .next()
    .ok_or_else(|| anyhow::anyhow!("no address"))?;
    let proxy = Proxy::start(upstream)?;
    let mut via = db.url.clone();
    via.set_port(Some(proxy.port))
        .map_err(|()| anyhow::anyhow!("port"))?;
    let app = App::build(&db.settings(via.as_str())?)?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped());
    println!(
        "\nRecovery after an outage under load ({clients} clients, outage {secs} s, PostgreSQL via a TCP proxy)\n"
    );
    println!(
        "| round | cut → first 503 | answers during outage (503 / other) | return → first 201 | 201 before / after |"
    );
    println!("|---|---|---|---|---|");
    for round in 1..=rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let (answers, tasks) = load(std::slice::from_ref(&base), clients, &stop);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cut = Instant::now();
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let back = Instant::now();
        proxy.restore();
        let deadline = back + Duration::from_secs(60);
        let first_201 = loop {
            let found = answers
                .lock()
                .ok()
                .and_then(|a| a.iter().find(|x| x.0 > back && x.1 == 201).map(|x| x.0));
            if let Some(t) = found {
                break Some(t - back);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            let _ = t.await;
        }
        let a = answers.lock().map(|a| a.clone()).unwrap_or_default();
        let first_503 = a
            .iter()
            .find(|x| x.0 > cut && x.1 == 503)
            .map(|x| x.0 - cut);
        let during: Vec<(Instant, u16)> = a
            .iter()
            .copied()
            .filter(|x| x.0 > cut && x.0 < back)
            .collect();
        println!(
            "| {round} | {} | {} / {} | {} | {} / {} |",
            first_503.map_or("—".into(), |d| format!("{} ms", d.as_millis())),
            count(&during, |s| s == 503),
            count(&during, |s| s != 503),
            first_201.map_or("none in 60 s".into(), |d| format!("{} ms", d.as_millis())),
            a.iter().filter(|x| x.0 < cut && x.1 == 201).count(),
            a.iter().filter(|x| x.0 > back && x.1 == 201).count(),
        );
    }
    server.abort();
    Ok(())
}

async fn two_nodes(admin: &str) -> anyhow::Result<()> {
    let (secs, clients) = (env("RUN_SECS", 10), env("CLIENTS", 8));
    let db = PgDb::create(admin)?;
    let settings = db.settings(db.url.as_str())?;
    let mut bases = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let app = App::build(&settings)?;
        bases.push(format!("http://127.0.0.1:{}", app.port()));
        servers.push(tokio::spawn(app.run_until_stopped()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (answers, tasks) = load(&bases, clients, &stop);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let took = started.elapsed().as_secs_f64();
    let a = answers.lock().map(|a| a.clone()).unwrap_or_default();
    let created = count(&a, |s| s == 201);
    let five = count(&a, |s| s >= 500);
    println!("\nTwo nodes on one PostgreSQL database ({clients} clients round robin, {secs} s)\n");
    println!("| answers | 201 | 5xx | other | 5xx rate | reports/s |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {created} | {five} | {} | {:.3} % | {:.0} |",
        a.len(),
        a.len() - created - five,
        100.0 * five as f64 / a.len().max(1) as f64,
        created as f64 / took,
    );
    for s in servers {
        s.abort();
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let Ok(admin) = std::env::var("LAPOR_TEST_PG_URL") else {
        eprintln!("db_outage: set LAPOR_TEST_PG_URL to a PostgreSQL server to run this bench");
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        outage(&admin).await?;
        two_nodes(&admin).await
    })
}
