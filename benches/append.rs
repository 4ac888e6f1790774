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
use lapor_node::domain::{Actor, Timestamp};

mod common;

fn main() {
    let n = common::bench_n(5000);
    let node = common::node();
    let (db, tickets, report) = (node.db.clone(), node.tickets.clone(), common::report());

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
    println!(
        "store benchmark: {n} operations each, one transaction per operation, SQLite WAL, events signed with {}",
        node.key.id()
    );
    println!("| operation | per second |");
    println!("|---|---|");
    println!("| bare single-row insert (baseline) | {raw:.0} |");
    println!("| Tickets::submit | {submit:.0} |");
    println!("submit / bare insert = {:.3}", submit / raw);
}
