//! What `PRAGMA secure_delete = ON` (decision 51: erased rows are zeroed on disk) costs the
//! node's SQLite write pattern, against the same workload with it off, in one run.
//!
//! The workload per report, in groups of 10 per transaction (WAL, synchronous=NORMAL, as the
//! node runs): an event row (≈ 700 bytes of JSON), a projection row, a contact row and two
//! outbox rows; later the outbox rows are deleted (acknowledged by the peers — the deletes
//! secure_delete zeroes), and the projection row is updated (a status change). The two
//! settings run in alternating rounds on two database files of the same directory.
//!
//! `cargo bench --bench secure_delete` (env `BENCH_REPORTS` per round, default 20,000;
//! `BENCH_ROUNDS`, default 4).

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark program: it reports on stdout and stops on any setup failure"
)]

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

fn open(path: &std::path::Path, secure: bool) -> SqliteConnection {
    let mut c = SqliteConnection::establish(&path.to_string_lossy()).expect("open");
    c.batch_execute(&format!(
        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA secure_delete = {}; \
         CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, raw TEXT NOT NULL); \
         CREATE TABLE IF NOT EXISTS tickets (id TEXT PRIMARY KEY, status TEXT NOT NULL, state TEXT NOT NULL); \
         CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, name TEXT, phone TEXT, salt TEXT); \
         CREATE TABLE IF NOT EXISTS outbox (n INTEGER PRIMARY KEY, dest TEXT NOT NULL, event TEXT NOT NULL);",
        if secure { "ON" } else { "OFF" }
    ))
    .expect("setup");
    c
}

fn round(c: &mut SqliteConnection, start: usize, n: usize) -> Duration {
    let raw = "x".repeat(700);
    let t = Instant::now();
    for g in (start..start + n).step_by(10) {
        c.transaction::<_, diesel::result::Error, _>(|c| {
            for i in g..g + 10 {
                c.batch_execute(&format!(
                    "INSERT INTO events VALUES ('e{i:016x}', '{raw}'); \
                     INSERT INTO tickets VALUES ('t{i:016x}', 'submitted', '{{\"events\":1}}'); \
                     INSERT INTO contacts VALUES ('t{i:016x}', 'Warga {i}', '+62812{i}', '{i:064x}'); \
                     INSERT INTO outbox (dest, event) VALUES ('hub', 'e{i:016x}'), ('prov-31', 'e{i:016x}');"
                ))?;
            }
            // The peers acknowledge what they received; a status changes.
            c.batch_execute(&format!(
                "DELETE FROM outbox WHERE n <= (SELECT MAX(n) FROM outbox) - 20; \
                 UPDATE tickets SET status = 'verified', state = '{{\"events\":2}}' WHERE id = 't{g:016x}';"
            ))
        })
        .expect("group");
    }
    t.elapsed()
}

fn main() {
    let n: usize = std::env::var("BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut off = open(&dir.path().join("off.sqlite"), false);
    let mut on = open(&dir.path().join("on.sqlite"), true);
    let (mut t_off, mut t_on) = (Duration::ZERO, Duration::ZERO);
    for r in 0..rounds {
        t_off += round(&mut off, r * n, n);
        t_on += round(&mut on, r * n, n);
    }
    #[expect(clippy::cast_precision_loss, reason = "a count far below 2^52")]
    let total = (n * rounds) as f64;
    let rate = |t: Duration| total / t.as_secs_f64();
    println!("| secure_delete | reports/s | µs per report |");
    println!("|---|---|---|");
    for (name, t) in [("OFF (baseline)", t_off), ("ON", t_on)] {
        println!(
            "| {name} | {:.0} | {:.1} |",
            rate(t),
            t.as_secs_f64() * 1e6 / total
        );
    }
    println!("\nON / OFF throughput: {:.3}", rate(t_on) / rate(t_off));
}
