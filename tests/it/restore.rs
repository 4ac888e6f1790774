//! Restore without forking (issue 25, item 4): a node restored from a backup taken before it
//! wrote N more events holds its writes, says so in `/readyz`, fetches its own events back
//! from the hub before it writes, then continues its chain at head + 1 — and no peer ever sees
//! an equivocation. On SQLite, and on PostgreSQL when `LAPOR_TEST_PG_URL` is set (the restored
//! node's database there).

use diesel::prelude::*;
use lapor_node::config::{DatabaseUrl, Settings};
use lapor_node::demo::cluster::{Cluster, Options};
use lapor_node::demo::scenario::{HUB, JAKARTA, NTT};
use lapor_node::domain::{Actor, Timestamp};

use crate::federation::{count, node, ntt_tickets, same_state_everywhere, specs, stored_events};

/// Copies the node's database to `backup` (SQLite file) or into a new database (PostgreSQL,
/// `CREATE DATABASE … TEMPLATE`), with the node stopped.
fn take_backup(s: &Settings, backup: &str) -> anyhow::Result<()> {
    match &s.database {
        DatabaseUrl::Sqlite(path) => {
            std::fs::copy(path, backup)?;
        }
        DatabaseUrl::Postgres(_) => pg_copy(s, &db_name(s), backup)?,
    }
    Ok(())
}

/// Puts `backup` back in place of the node's database and leaves the restore marker, as
/// `lapor-node restore` does.
fn put_back(s: &Settings, backup: &str) -> anyhow::Result<()> {
    match &s.database {
        DatabaseUrl::Sqlite(path) => {
            for ext in ["-wal", "-shm"] {
                let side = format!("{}{ext}", path.display());
                if std::path::Path::new(&side).exists() {
                    std::fs::remove_file(side)?;
                }
            }
            std::fs::copy(backup, path)?;
        }
        DatabaseUrl::Postgres(_) => {
            let name = db_name(s);
            admin(s, &format!("DROP DATABASE {name} WITH (FORCE)"))?;
            pg_copy(s, backup, &name)?;
        }
    }
    lapor_node::event_log::hold::mark(&s.raw.node.data_dir, "the test's backup")?;
    Ok(())
}

fn pg_url(s: &Settings) -> String {
    use secrecy::ExposeSecret;
    match &s.database {
        DatabaseUrl::Postgres(u) => u.expose_secret().to_owned(),
        DatabaseUrl::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

fn db_name(s: &Settings) -> String {
    let url = url::Url::parse(&pg_url(s)).unwrap();
    url.path().trim_start_matches('/').to_owned()
}

fn admin(s: &Settings, sql: &str) -> anyhow::Result<()> {
    let mut url = url::Url::parse(&pg_url(s))?;
    url.set_path("/postgres");
    let mut c = diesel::PgConnection::establish(url.as_str())?;
    diesel::sql_query(sql).execute(&mut c)?;
    Ok(())
}

fn pg_copy(s: &Settings, from: &str, to: &str) -> anyhow::Result<()> {
    admin(s, &format!("CREATE DATABASE {to} TEMPLATE {from}"))
}

async fn readyz(c: &Cluster, id: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("{}/readyz", node(c, id).api))
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn own_head(c: &Cluster) -> u64 {
    stored_events(node(c, NTT), NTT)
        .last()
        .map_or(0, |e| e["seq"].as_u64().unwrap())
}

async fn restore_without_forking(pg: Option<crate::helpers::TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let mut v = specs(None);
    if let Some(db) = &pg {
        v[2].database_url = Some(db.url.clone());
    }
    let mut c = Cluster::start(dir.path(), &v, &Options::default())
        .await
        .unwrap();
    ntt_tickets(&c, 2);
    c.settle(10).await.unwrap();
    let backup = match &pg {
        Some(_) => format!("lapor_backup_{}", std::process::id()),
        None => dir.path().join("ntt-backup.sqlite").display().to_string(),
    };
    c.stop(NTT).await.unwrap();
    let b = backup.clone();
    c.restart_with(NTT, move |s| take_backup(s, &b))
        .await
        .unwrap();
    let at_backup = own_head(&c);

    // N more events after the backup, replicated to the hub and Jakarta.
    let later = ntt_tickets(&c, 2);
    c.settle(10).await.unwrap();
    let true_head = own_head(&c);
    let n = true_head - at_backup;
    assert_eq!(n, 6);
    same_state_everywhere(&c, &later[1], &[NTT, HUB, JAKARTA]);

    // The node is restored from the backup: it holds its writes and says why.
    c.stop(NTT).await.unwrap();
    let b = backup.clone();
    c.restart_with(NTT, move |s| put_back(s, &b)).await.unwrap();
    assert_eq!(own_head(&c), at_backup);
    let (st, body) = readyz(&c, NTT).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (503, Some("restoring")),
        "{body}"
    );
    let t = node(&c, NTT).state.tickets.clone();
    let e = t
        .submit(&crate::api_report(), &Actor::citizen(), Timestamp::now())
        .unwrap_err();
    assert!(e.to_string().contains("restored from a backup"), "{e}");
    let (st, _) = lapor_node::demo::scenario::Api::of(node(&c, NTT))
        .post(
            "/api/v1/reports",
            None,
            None,
            &lapor_node::demo::scenario::ntt_report(9),
        )
        .await
        .unwrap();
    assert_eq!(st, 503);

    // Nobody reachable: it keeps holding, and names what it waits for.
    c.isolate(NTT);
    let fed = node(&c, NTT).federation.clone();
    let hold = t.hold().clone();
    let r = fed.recover_own_chain(&hold, true).await.unwrap();
    assert!(!r.caught_up && !r.released, "{r:?}");
    let (st, body) = readyz(&c, NTT).await;
    assert_eq!(st, 503);
    assert!(
        body["message"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    assert!(t.hold().is_on());

    // Back online: its own events come back from the hub; then it goes live.
    c.reconnect(NTT);
    let r = fed.recover_own_chain(&hold, true).await.unwrap();
    assert!(r.caught_up && r.released, "{r:?}");
    assert_eq!(r.own_head, i64::try_from(true_head).unwrap());
    assert_eq!(own_head(&c), true_head);
    assert!(!t.hold().is_on());
    assert!(
        !node(&c, NTT)
            .settings
            .raw
            .node
            .data_dir
            .join("RESTORED")
            .exists()
    );
    assert_eq!(readyz(&c, NTT).await.0, 200);
    for t in &later {
        same_state_everywhere(&c, t, &[NTT, HUB, JAKARTA]);
    }

    // A new report continues the chain at head + 1; every peer takes it; nobody saw an
    // equivocation (nothing quarantined anywhere).
    let s = t
        .submit(&crate::api_report(), &Actor::citizen(), Timestamp::now())
        .unwrap();
    assert_eq!(s.event.seq, true_head + 1);
    c.settle(10).await.unwrap();
    same_state_everywhere(&c, &s.event.ticket.to_string(), &[NTT, HUB]);
    for id in [HUB, JAKARTA, NTT] {
        assert_eq!(count(node(&c, id), "quarantine"), 0, "{id}");
    }
    assert_eq!(c.undelivered().unwrap(), 0);
    if pg.is_some() {
        let s = node(&c, NTT).settings.clone();
        let _ = admin(
            &s,
            &format!("DROP DATABASE IF EXISTS {backup} WITH (FORCE)"),
        );
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_node_fetches_its_own_events_before_writing_sqlite() {
    restore_without_forking(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_node_fetches_its_own_events_before_writing_postgres() {
    let Some(pg) = crate::helpers::postgres() else {
        return;
    };
    restore_without_forking(Some(pg)).await;
}
