//! National statistics at scale, on PostgreSQL: generates N/10 tickets (realistic signed
//! events across the 38 provinces, `hub::generate`) into a fresh hub database, measures the
//! four national queries (p50/p95 over repeated runs, through `hub::report::answer`, the
//! function the API calls), grows the database to N and measures again. Prints a table.
//!
//! Generation runs on this thread while the database writer stores the previous batch (one
//! batch in flight); the writer's session has `synchronous_commit = off` (a crash could lose
//! the last commits of a benchmark database, nothing else). Each phase prints the events/s
//! written, the share of that time spent generating, the cells, the database's size on disk
//! and this process's peak RSS.
//!
//! First, in a database of its own, `BENCH_BASELINE` tickets (default 10,000) are written the
//! way the generator wrote them before (events and tickets in 100-row `INSERT`s, one upsert per
//! statistics cell, batches of 2,000 written one after the other), then as many again the way
//! it writes now, and both rates are printed.
//!
//! `LAPOR_BENCH_PG_URL` (or `LAPOR_TEST_PG_URL`) names the server; `BENCH_N` the tickets
//! (default 200,000); `BENCH_BASELINE=0` skips the before/after generation rates;
//! `BENCH_KEEP=1` keeps the database for a look afterwards. Run:
//! `cargo bench --profile release --bench hub`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints and fails loudly"
)]

use std::time::Instant;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use lapor_node::db::{Db, DbConn, DbError};
use lapor_node::domain::{NodeId, Timestamp};
use lapor_node::hub::cells::Cells;
use lapor_node::hub::cells::wib_date;
use lapor_node::hub::generate::{Batch, Nation, StdRng, province_codes, write_heads};
use lapor_node::hub::query::{Dataset, parse};
use lapor_node::hub::report::{Audience, answer};
use lapor_node::hub::store::apply;
use rand::SeedableRng as _;

const QUERIES: [(&str, Dataset, &str); 4] = [
    (
        "national stats (province × kind, a year)",
        Dataset::Stats,
        "group_by=province,kind",
    ),
    ("SLA (province, a year)", Dataset::Sla, "group_by=province"),
    (
        "flows (origin × handler, a year)",
        Dataset::Flows,
        "group_by=origin,handler",
    ),
    (
        "backlog (province, by age)",
        Dataset::Backlog,
        "group_by=province",
    ),
];
const RUNS: usize = 200;

fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn measure(db: &Db) -> Vec<(f64, f64, usize)> {
    let today = wib_date(Timestamp::now());
    let mut out = Vec::new();
    for (_, dataset, q) in QUERIES {
        let req = parse(dataset, &pairs(q), today).unwrap();
        let mut times = Vec::with_capacity(RUNS);
        let mut rows = 0;
        for _ in 0..RUNS {
            let mut c = db.read().unwrap();
            let t = Instant::now();
            let table = answer(&mut c, &req, today, Audience::Officials).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            rows = table.rows.len();
        }
        times.sort_by(f64::total_cmp);
        out.push((times[RUNS / 2], times[RUNS * 95 / 100], rows));
    }
    out
}

/// `(cells, database size in bytes)`.
fn cells_and_size(url: &str) -> (i64, i64) {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bytes: i64,
    }
    let mut c = PgConnection::establish(url).unwrap();
    let q = "SELECT (SELECT count(*) FROM stat_counts) + (SELECT count(*) FROM stat_sla) + (SELECT count(*) FROM stat_flows) AS n, pg_database_size(current_database()) AS bytes";
    let row = diesel::sql_query(q).get_result::<N>(&mut c).unwrap();
    (row.n, row.bytes)
}

/// This process's peak resident set (`VmHWM`), in MiB, where `/proc` tells it.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A fresh hub database with the generated nation's agencies.
struct Hub {
    name: String,
    url: url::Url,
    db: Db,
    nation: Nation,
    _dir: tempfile::TempDir,
}

fn open_hub(admin: &str, name: &str) -> Hub {
    let mut c = PgConnection::establish(admin).unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .unwrap();
    let mut url = url::Url::parse(admin).unwrap();
    url.set_path(name);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[node]\nid = \"hub.lapor.test\"\nrole = \"hub\"\nprovince = \"31\"\ndata_dir = {:?}\n[database]\nurl = {:?}\n",
        dir.path().display().to_string(),
        url.as_str()
    );
    let settings = lapor_node::config::Settings::from_toml(&text).unwrap();
    let db = lapor_node::app::open_database(&settings).unwrap();
    let codes = province_codes(include_str!("../config/provinces.csv"));
    let hub = NodeId::parse("hub.lapor.test").unwrap();
    let nation = Nation::new(&codes, hub, lapor_node::crypto::keys::NodeKey::generate()).unwrap();
    let agencies = nation.agencies().unwrap();
    db.write(move |c| {
        lapor_node::tickets::store::sync_agencies(c, &agencies).map_err(DbError::from)
    })
    .unwrap();
    Hub {
        name: name.to_owned(),
        url,
        db,
        nation,
        _dir: dir,
    }
}

fn drop_hub(admin: &str, hub: Hub) {
    let name = hub.name.clone();
    drop(hub);
    let mut c = PgConnection::establish(admin).unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .unwrap();
}

/// The generator's writes as they were before bulk loading: events and tickets in 100-row
/// `INSERT`s, one upsert per statistics cell (`hub::store::apply` of one cell at a time).
fn write_before(c: &mut DbConn, batch: &Batch) -> diesel::QueryResult<()> {
    lapor_node::event_log::store::insert_rows(c, &batch.events)?;
    if let DbConn::Pg(pg) = c {
        for chunk in batch.tickets.chunks(100) {
            diesel::insert_into(lapor_node::db::schema::tickets::table)
                .values(chunk)
                .execute(pg)?;
        }
    }
    for (k, n) in &batch.cells.counts {
        let mut one = Cells::default();
        one.counts.insert(k.clone(), *n);
        apply(c, &one)?;
    }
    for (k, f) in &batch.cells.sla {
        let mut one = Cells::default();
        one.sla.insert(k.clone(), *f);
        apply(c, &one)?;
    }
    for (k, f) in &batch.cells.flows {
        let mut one = Cells::default();
        one.flows.insert(k.clone(), *f);
        apply(c, &one)?;
    }
    Ok(())
}

/// Writes tickets up to `target` the way the generator writes them now: batches of 5,000, the
/// writer storing batch k while batch k + 1 is generated. Returns `(events, seconds, seconds
/// spent generating)`.
fn grow(hub: &mut Hub, rng: &mut StdRng, tickets: &mut usize, target: usize) -> (usize, f64, f64) {
    let started = Instant::now();
    let (mut made, mut generating) = (0, 0.0);
    let (done, written) = std::sync::mpsc::sync_channel::<Result<(), DbError>>(2);
    let mut in_flight = 0;
    while *tickets < target {
        let k = 5000.min(target - *tickets);
        let t = Instant::now();
        let batch = hub.nation.batch(rng, k, Timestamp::now()).unwrap();
        generating += t.elapsed().as_secs_f64();
        assert_eq!(batch.refused, 0);
        made += batch.events.len();
        if in_flight > 0 {
            written.recv().unwrap().unwrap();
            in_flight -= 1;
        }
        let done = done.clone();
        hub.db
            .write_then(
                move |c| batch.write(c).map_err(DbError::from),
                move |r| {
                    let _ = done.send(r);
                },
            )
            .unwrap();
        in_flight += 1;
        *tickets += k;
    }
    for _ in 0..in_flight {
        written.recv().unwrap().unwrap();
    }
    let heads = hub.nation.heads();
    hub.db
        .write(move |c| write_heads(c, &heads).map_err(DbError::from))
        .unwrap();
    (made, started.elapsed().as_secs_f64(), generating)
}

/// Events written per second.
fn rate(events: usize, secs: f64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let events = events as f64;
    events / secs
}

/// The generation rate before and after bulk loading, in one database: `k` tickets each way.
fn baseline(admin: &str, k: usize) {
    let mut hub = open_hub(
        admin,
        &format!("lapor_bench_hub_base_{}", std::process::id()),
    );
    let mut rng = StdRng::seed_from_u64(7);
    let started = Instant::now();
    let mut before = 0;
    let mut tickets = 0;
    while tickets < k {
        let n = 2000.min(k - tickets);
        let batch = hub.nation.batch(&mut rng, n, Timestamp::now()).unwrap();
        before += batch.events.len();
        hub.db
            .write(move |c| write_before(c, &batch).map_err(DbError::from))
            .unwrap();
        tickets += n;
    }
    let before_rate = rate(before, started.elapsed().as_secs_f64());
    hub.db
        .with_writer(|c| diesel::sql_query("SET synchronous_commit = off").execute(c))
        .unwrap()
        .unwrap();
    let (now, secs, _) = grow(&mut hub, &mut rng, &mut tickets, 2 * k);
    let now_rate = rate(now, secs);
    println!(
        "generation, {k} tickets each way: before {before_rate:.0} events/s ({before} events), \
         now {now_rate:.0} events/s ({now} events): {:.1}×",
        now_rate / before_rate
    );
    drop_hub(admin, hub);
}

fn main() {
    let admin = std::env::var("LAPOR_BENCH_PG_URL")
        .or_else(|_| std::env::var("LAPOR_TEST_PG_URL"))
        .expect("set LAPOR_BENCH_PG_URL or LAPOR_TEST_PG_URL to a PostgreSQL server");
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let k: usize = std::env::var("BENCH_BASELINE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    if k > 0 {
        baseline(&admin, k);
    }
    let mut hub = open_hub(&admin, &format!("lapor_bench_hub_{}", std::process::id()));
    hub.db
        .with_writer(|c| diesel::sql_query("SET synchronous_commit = off").execute(c))
        .unwrap()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let (mut tickets, mut events) = (0usize, 0usize);
    let mut results = Vec::new();
    for target in [n / 10, n] {
        let (made, secs, generating) = grow(&mut hub, &mut rng, &mut tickets, target);
        events += made;
        let (cells, bytes) = cells_and_size(hub.url.as_str());
        println!(
            "generated {tickets} tickets, {events} events ({:.0} events/s written, {secs:.0} s, \
             {:.0} % of it generating), {cells} cells, database {} MiB, bench peak RSS {} MiB",
            rate(made, secs),
            generating / secs * 100.0,
            bytes / (1 << 20),
            peak_rss_mib().map_or_else(|| "?".to_owned(), |m| m.to_string()),
        );
        let t = Instant::now();
        let mut v = PgConnection::establish(hub.url.as_str()).unwrap();
        diesel::sql_query("VACUUM ANALYZE").execute(&mut v).unwrap();
        println!("VACUUM ANALYZE: {:.0} s", t.elapsed().as_secs_f64());
        let measured = measure(&hub.db);
        for ((label, _, _), (p50, p95, rows)) in QUERIES.iter().zip(&measured) {
            println!("  {label}: p50 {p50:.2} ms, p95 {p95:.2} ms, {rows} rows");
        }
        results.push((tickets, events, measured));
    }
    println!(
        "\n| query | rows | p50 ms at N/10 | p95 ms at N/10 | p50 ms at N | p95 ms at N | p95 N vs N/10 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let (small, large) = (&results[0].2, &results[1].2);
    for (i, (label, _, _)) in QUERIES.iter().enumerate() {
        let (a, b) = (small[i], large[i]);
        println!(
            "| {label} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}× |",
            b.2,
            a.0,
            a.1,
            b.0,
            b.1,
            b.1 / a.1
        );
    }
    println!(
        "\nN = {} tickets, {} events; N/10 = {} tickets, {} events",
        results[1].0, results[1].1, results[0].0, results[0].1
    );
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept the database {} (BENCH_KEEP)", hub.name);
    } else {
        drop_hub(&admin, hub);
    }
}
