//! National statistics at scale, on PostgreSQL: generates N/10 tickets (realistic signed
//! events across the 38 provinces, `hub::generate`) into a fresh hub database, measures the
//! four national queries (p50/p95 over repeated runs, through `hub::report::answer`, the
//! function the API calls), grows the database to N and measures again. Prints a table.
//!
//! `LAPOR_BENCH_PG_URL` (or `LAPOR_TEST_PG_URL`) names the server; `BENCH_N` the tickets
//! (default 200,000). Run: `cargo bench --bench hub`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints and fails loudly"
)]

use std::time::Instant;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use lapor_node::db::{Db, DbError};
use lapor_node::domain::{NodeId, Timestamp};
use lapor_node::hub::cells::wib_date;
use lapor_node::hub::generate::{Nation, StdRng, province_codes, write_heads};
use lapor_node::hub::query::{Dataset, parse};
use lapor_node::hub::report::{Audience, answer};
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

fn cells(url: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = PgConnection::establish(url).unwrap();
    let q = "SELECT (SELECT count(*) FROM stat_counts) + (SELECT count(*) FROM stat_sla) + (SELECT count(*) FROM stat_flows) AS n";
    diesel::sql_query(q).get_result::<N>(&mut c).unwrap().n
}

fn main() {
    let admin = std::env::var("LAPOR_BENCH_PG_URL")
        .or_else(|_| std::env::var("LAPOR_TEST_PG_URL"))
        .expect("set LAPOR_BENCH_PG_URL or LAPOR_TEST_PG_URL to a PostgreSQL server");
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let name = format!("lapor_bench_hub_{}", std::process::id());
    let mut c = PgConnection::establish(&admin).unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
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
    let mut nation =
        Nation::new(&codes, hub, lapor_node::crypto::keys::NodeKey::generate()).unwrap();
    let agencies = nation.agencies().unwrap();
    db.write(move |c| {
        lapor_node::tickets::store::sync_agencies(c, &agencies).map_err(DbError::from)
    })
    .unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let (mut tickets, mut events) = (0usize, 0usize);
    let mut results = Vec::new();
    for target in [n / 10, n] {
        let started = Instant::now();
        let mut made = 0;
        while tickets < target {
            let k = 2000.min(target - tickets);
            let batch = nation.batch(&mut rng, k, Timestamp::now()).unwrap();
            assert_eq!(batch.refused, 0);
            events += batch.events.len();
            made += batch.events.len();
            db.write(move |c| batch.write(c).map_err(DbError::from))
                .unwrap();
            tickets += k;
        }
        let heads = nation.heads();
        db.write(move |c| write_heads(c, &heads).map_err(DbError::from))
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let rate = made as f64 / secs;
        println!(
            "generated {tickets} tickets, {events} events ({rate:.0} events/s written), {} cells",
            cells(url.as_str())
        );
        let mut v = PgConnection::establish(url.as_str()).unwrap();
        diesel::sql_query("VACUUM ANALYZE").execute(&mut v).unwrap();
        results.push((tickets, events, measure(&db)));
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
    drop(db);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .unwrap();
}
