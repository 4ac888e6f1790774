//! Store-level rates, without HTTP: reports filed per second through `Tickets::submit` (one
//! transaction each: event + chain head + projection + contact + follow-up token) on embedded
//! SQLite, against bare single-row inserts on the same database in the same run.
//!
//! `cargo bench --bench append` (env `BENCH_N` for the number of operations).

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark program: it reports on stdout and stops on any setup failure"
)]

use std::time::Instant;

use diesel::RunQueryDsl;
use lapor_node::db::DbError;
use lapor_node::domain::{Actor, Category, Channel, Privacy, RegionCode, ReportKind, Timestamp};
use lapor_node::tickets::{Contact, NewReport, Tickets};

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let settings = lapor_node::config::Settings::from_toml(&text).expect("settings");
    let db = lapor_node::app::open_database(&settings).expect("db");
    let key =
        lapor_node::event_log::keys::load_or_create(&db, settings.node_id(), &settings.key_path())
            .expect("key");
    let tickets = Tickets::new(db.clone(), &settings, key);
    let report = NewReport {
        kind: ReportKind::Pengaduan,
        title: "Lampu jalan mati".into(),
        text: "Lampu penerangan jalan di depan sekolah mati sejak tiga hari.".into(),
        category: Category::parse("infrastruktur").expect("category"),
        region: RegionCode::parse("3171").expect("region"),
        agency: None,
        channel: Channel::Web,
        privacy: Privacy::default(),
        contact: Some(Contact {
            name: Some("Warga".into()),
            phone: Some("+628123456789".into()),
            email: None,
        }),
    };

    db.write(|c| {
        diesel::sql_query("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(c)
            .map_err(DbError::from)
    })
    .expect("table");
    let start = Instant::now();
    for i in 0..n {
        db.write(move |c| {
            diesel::sql_query(format!("INSERT INTO bench_rows (v) VALUES ('row {i}')"))
                .execute(c)
                .map_err(DbError::from)
        })
        .expect("insert");
    }
    let raw = n as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..n {
        tickets
            .submit(&report, &Actor::citizen(), Timestamp::now())
            .expect("submit");
    }
    let submit = n as f64 / start.elapsed().as_secs_f64();
    println!("store benchmark: {n} operations each, one transaction per operation, SQLite WAL");
    println!("| operation | per second |");
    println!("|---|---|");
    println!("| bare single-row insert (baseline) | {raw:.0} |");
    println!("| Tickets::submit | {submit:.0} |");
    println!("submit / bare insert = {:.3}", submit / raw);
}
