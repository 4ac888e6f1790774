//! Surviving the database: a PostgreSQL outage (a TCP proxy between node and server that the
//! test cuts and restores), a server address that accepts and never answers, two processes
//! migrating one new database at once, two nodes sharing one database under concurrent intake,
//! and a SQLite start while another connection reads the file. The PostgreSQL tests skip
//! cleanly when `LAPOR_TEST_PG_URL` is unset. Bounds are generous: nothing here measures speed.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, RunQueryDsl as _};
use lapor_node::app::App;
use reqwest::StatusCode;

use crate::api::report_body;
use crate::helpers::{self, TestDb};

/// A TCP proxy the test can cut (every connection closed, new ones closed on accept) and
/// restore.
pub struct Proxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, s, c) = (open.clone(), stop.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if !o.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut held = c.lock().unwrap();
                    held.push(client.try_clone().unwrap());
                    held.push(server.try_clone().unwrap());
                }
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self {
            port,
            open,
            stop,
            conns,
        }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// The server address of a PostgreSQL URL and the URL through `proxy_port`.
pub fn through_proxy(url: &str, proxy_port: u16) -> (SocketAddr, String) {
    let mut u = url::Url::parse(url).unwrap();
    let host = u.host_str().unwrap().to_owned();
    let port = u.port().unwrap_or(5432);
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .unwrap()
        .next()
        .unwrap();
    u.set_host(Some("127.0.0.1")).unwrap();
    u.set_port(Some(proxy_port)).unwrap();
    (upstream, u.to_string())
}

/// One intake answer: when, status, tracking code (201 only).
pub type Answer = (Instant, StatusCode, Option<String>, Option<String>);

/// Posts reports from `clients` tasks to the given bases (round robin) until `stop`.
pub fn intake_load(
    bases: &[String],
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> (Arc<Mutex<Vec<Answer>>>, Vec<tokio::task::JoinHandle<()>>) {
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let tasks = (0..clients)
        .map(|i| {
            let (http, stop, answers) = (http.clone(), stop.clone(), answers.clone());
            let bases = bases.to_vec();
            tokio::spawn(async move {
                let mut n = i;
                while !stop.load(Ordering::SeqCst) {
                    let base = &bases[n % bases.len()];
                    n += 1;
                    let sent = http
                        .post(format!("{base}/api/v1/reports"))
                        .json(&report_body())
                        .send()
                        .await;
                    let Ok(resp) = sent else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body: serde_json::Value = resp.json().await.unwrap_or_default();
                    let code = body["tracking_code"].as_str().map(str::to_owned);
                    answers
                        .lock()
                        .unwrap()
                        .push((Instant::now(), status, code, retry_after));
                    if status != StatusCode::CREATED {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    (answers, tasks)
}

/// Every tracking code is stored once, and the log audits clean with gapless chains.
pub fn assert_stored_and_chain_clean(db: &TestDb, codes: &[String]) -> usize {
    let distinct: std::collections::HashSet<&String> = codes.iter().collect();
    assert_eq!(
        distinct.len(),
        codes.len(),
        "a tracking code was given twice"
    );
    let mut c = diesel::PgConnection::establish(&db.url).unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let list = codes
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(",");
    if !codes.is_empty() {
        let found: N = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM tickets WHERE tracking_code IN ({list})"
        ))
        .get_result(&mut c)
        .unwrap();
        assert_eq!(
            usize::try_from(found.n).unwrap(),
            codes.len(),
            "a 201 is missing from the database"
        );
    }
    let stored: N = diesel::sql_query("SELECT count(*) AS n FROM tickets")
        .get_result(&mut c)
        .unwrap();
    let d = helpers::open(db);
    let mut conn = d.read().unwrap();
    let scope = lapor_node::event_log::audit::Scope {
        node: lapor_node::domain::NodeId::parse("prov-31.lapor.test").unwrap(),
        holds_all: true,
    };
    let report = lapor_node::event_log::audit::run(&mut conn, &scope).unwrap();
    assert!(report.faults.is_empty(), "audit: {:?}", report.faults);
    assert_eq!(report.origins, 1);
    usize::try_from(stored.n).unwrap()
}

fn http_settings() -> &'static str {
    "[http]\nlisten = \"127.0.0.1:0\"\nintake_per_minute = 0\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_writes_resume_after_an_outage_and_every_201_is_stored() {
    let Some(db) = helpers::postgres() else {
        return;
    };
    let upstream = through_proxy(&db.url, 1).0;
    let proxy = Proxy::start(upstream);
    let (_, url) = through_proxy(&db.url, proxy.port);
    let settings = helpers::settings_at(
        &db,
        &url,
        "connect_timeout_secs = 2\npool_timeout_ms = 500\nstart_timeout_secs = 10",
        http_settings(),
    );
    let app = App::build(&settings).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (answers, tasks) = intake_load(std::slice::from_ref(&base), 4, &stop);

    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.cut();
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = Instant::now();
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "readiness took {:?} during the outage",
        asked.elapsed()
    );
    proxy.restore();
    let back = Instant::now();
    // Writes resume by themselves; readiness follows.
    let deadline = back + Duration::from_secs(30);
    loop {
        let resumed = answers
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.0 > back && a.1 == StatusCode::CREATED);
        if resumed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 201 within 30 s of the return"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_201 = back.elapsed();
    loop {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready within 30 s of the return"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.0 > cut + Duration::from_millis(500) && a.0 < back)
        .collect();
    assert!(!during.is_empty(), "no answer during the outage");
    for a in &answers {
        assert!(
            a.1 == StatusCode::CREATED || a.1 == StatusCode::SERVICE_UNAVAILABLE,
            "unexpected status {}",
            a.1
        );
        if a.1 == StatusCode::SERVICE_UNAVAILABLE {
            assert!(a.3.is_some(), "a 503 without Retry-After");
        }
    }
    assert!(
        during
            .iter()
            .all(|a| a.1 == StatusCode::SERVICE_UNAVAILABLE)
    );
    let codes: Vec<String> = answers.iter().filter_map(|a| a.2.clone()).collect();
    let stored = assert_stored_and_chain_clean(&db, &codes);
    assert!(stored >= codes.len());
    eprintln!(
        "outage: {} answers, {} created, first 201 {first_201:?} after the return",
        answers.len(),
        codes.len()
    );
    server.abort();
}

#[test]
fn a_database_that_accepts_and_never_answers_fails_start_within_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let db = helpers::sqlite();
    let url = format!("postgres://postgres@127.0.0.1:{port}/lapor");
    let settings = helpers::settings_at(
        &db,
        &url,
        "connect_timeout_secs = 2\nstart_timeout_secs = 3",
        "",
    );
    let started = Instant::now();
    let e = lapor_node::app::open_database(&settings).unwrap_err();
    let took = started.elapsed();
    let message = e.to_string();
    assert!(took < Duration::from_secs(30), "start hung for {took:?}");
    assert!(
        message.contains("database not available after waiting 3 s")
            && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );
}

#[test]
fn pg_two_processes_migrate_a_new_database_at_once() {
    let Some(db) = helpers::postgres() else {
        return;
    };
    let settings = helpers::settings(&db, "");
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (s, b) = (settings.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                lapor_node::app::open_database(&s)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap().unwrap();
    }
    let d = helpers::open(&db);
    let applied = d
        .with_writer(lapor_node::db::migrations::all_applied)
        .unwrap()
        .unwrap();
    assert!(applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_two_nodes_on_one_database_answer_no_5xx_and_keep_one_chain() {
    let Some(db) = helpers::postgres() else {
        return;
    };
    let settings = helpers::settings(&db, http_settings());
    let mut bases = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let app = App::build(&settings).unwrap();
        bases.push(format!("http://127.0.0.1:{}", app.port()));
        servers.push(tokio::spawn(app.run_until_stopped()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (answers, tasks) = intake_load(&bases, 8, &stop);
    let deadline = Instant::now() + Duration::from_secs(60);
    while answers.lock().unwrap().len() < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let bad: Vec<StatusCode> = answers
        .iter()
        .map(|a| a.1)
        .filter(|s| *s != StatusCode::CREATED)
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {}: {bad:?}",
        bad.len(),
        answers.len()
    );
    let codes: Vec<String> = answers.iter().filter_map(|a| a.2.clone()).collect();
    assert_eq!(codes.len(), answers.len());
    assert_eq!(assert_stored_and_chain_clean(&db, &codes), codes.len());
    for s in servers {
        s.abort();
    }
}

#[test]
fn sqlite_start_succeeds_while_another_connection_reads() {
    let db = helpers::sqlite();
    let path = db.url.strip_prefix("sqlite://").unwrap().to_owned();
    // A file in rollback-journal mode (a copy, or one made by a tool), read by another
    // process: switching it to WAL needs a moment without readers.
    let mut c = diesel::SqliteConnection::establish(&path).unwrap();
    c.batch_execute("CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1);")
        .unwrap();
    drop(c);
    // The node refuses a database file others may read.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let reading = Arc::new(std::sync::Barrier::new(2));
    let r = reading.clone();
    let reader = std::thread::spawn(move || {
        let mut c = diesel::SqliteConnection::establish(&path).unwrap();
        c.batch_execute("PRAGMA busy_timeout = 10000; BEGIN; SELECT x FROM probe;")
            .unwrap();
        r.wait();
        std::thread::sleep(Duration::from_millis(700));
        c.batch_execute("COMMIT;").unwrap();
        let mut reads = 0u64;
        while !s.load(Ordering::SeqCst) {
            c.batch_execute("BEGIN; SELECT count(*) FROM probe; COMMIT;")
                .unwrap();
            reads += 1;
        }
        reads
    });
    reading.wait();
    let opened = lapor_node::app::open_database(&helpers::settings(&db, ""));
    stop.store(true, Ordering::SeqCst);
    let reads = reader.join().unwrap();
    let db_handle = opened.unwrap();
    assert!(reads > 0);
    assert!(db_handle.health().is_up());
}
