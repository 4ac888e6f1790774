//! Two hub processes on one PostgreSQL database (issue 22, README "Several hub processes"):
//! real `lapor-node serve` children with the same config, each taking federation batches from
//! a different province and officers' requests at the same time; at the end the hub's own
//! chain is one linear chain, every province event is held once with the same ticket states,
//! the statistics equal a rebuild's, and a province received the hub's events once (one
//! process at a time delivers to a peer).

use diesel::prelude::*;
use lapor_node::db::schema::events;
use lapor_node::domain::Timestamp;
use serde_json::{Value, json};

use crate::bin::ok;
use crate::helpers;
use crate::nodes::{
    Node, federate, file_backlog, free_port, holdings, make_node, password, s, settings,
    wait_delivered,
};

const HUB: &str = "hub.lapor.test";
const P53: &str = "prov-53.lapor.test";
const P73: &str = "prov-73.lapor.test";
/// Reports each hub process takes from citizens, then verified and dispatched by an officer.
const HUB_REPORTS: usize = 40;
/// Reports waiting at each province when everything starts.
const BACKLOG: usize = 1_500;

/// Appends one more `[[federation.peers]]` entry to `n`'s config.
fn add_peer(n: &Node, id: &str, peer: &Node, role: &str, province: &str) {
    let mut text = std::fs::read_to_string(&n.config).unwrap();
    text.push_str(&format!(
        "\n[[federation.peers]]\nid = \"{id}\"\nurl = \"https://{id}:{p}\"\nrole = \"{role}\"\n\
         province = \"{province}\"\naddress = \"127.0.0.1:{p}\"\n",
        p = peer.fed_port
    ));
    std::fs::write(&n.config, text).unwrap();
}

async fn call(c: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = c.post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

/// A citizen files at `filing`, an officer verifies at `other` and dispatches at `filing`
/// (the ticket moves between processes); every answer must be a success.
async fn officer_work(filing: String, other: String, token: String, tag: &str) -> Vec<String> {
    let c = reqwest::Client::new();
    let mut failures = Vec::new();
    for i in 0..HUB_REPORTS {
        let (st, v) = call(
            &c,
            format!("{filing}/api/v1/reports"),
            None,
            json!({
                "kind": "pengaduan", "title": format!("Layanan BPJS antrean{tag}{i:02}x"),
                "body": "Antrean klaim di kantor cabang tidak bergerak sejak pagi.",
                "category": "kesehatan", "region": "3171", "channel": "web",
                "anonymous": true, "confidential": false
            }),
        )
        .await;
        if st != 201 {
            failures.push(format!("file {tag} {i}: {st} {v}"));
            continue;
        }
        // The officer finds it at the other process by a word of its title.
        let word = format!("antrean{tag}{i:02}x");
        let list: Value = c
            .get(format!("{other}/api/v1/tickets?q={word}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(ticket) = list["items"][0]["id"].as_str().map(str::to_owned) else {
            failures.push(format!("{word} not in the inbox: {list}"));
            continue;
        };
        for (base, action) in [
            (&other, json!({"action": "verify"})),
            (
                &filing,
                json!({"action": "dispatch", "agency": "NTT-DINKES"}),
            ),
        ] {
            let (st, v) = call(
                &c,
                format!("{base}/api/v1/tickets/{ticket}/actions"),
                Some(&token),
                action.clone(),
            )
            .await;
            if st != 200 {
                failures.push(format!("{action} on {ticket} at {base}: {st} {v}"));
            }
        }
    }
    failures
}

#[test]
fn pg_two_hub_processes_on_one_database_keep_one_chain_and_apply_every_event_once() {
    let Some(pg) = helpers::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let walk = dir.path();
    ok(&["certs", "ca", "--out", s(&walk.join("ca"))]);
    let mut p53 = make_node(walk, P53, "53", "province");
    let mut p73 = make_node(walk, P73, "73", "province");
    let mut hub = make_node(walk, HUB, "31", "hub");
    // The hub's database is PostgreSQL; its second process runs from the same config with
    // its own listeners (another machine, in a real deployment).
    let mut text = std::fs::read_to_string(&hub.config).unwrap();
    text.push_str(&format!("\n[database]\nurl = \"{}\"\n", pg.url));
    std::fs::write(&hub.config, text).unwrap();
    let mut hub2 = Node {
        config: hub.config.clone(),
        fed_port: free_port(),
        child: None,
        api: String::new(),
    };
    federate(&p53, HUB, &hub, "hub", "31");
    federate(&p73, HUB, &hub2, "hub", "31");
    federate(&hub, P53, &p53, "province", "53");
    add_peer(&hub, P73, &p73, "province", "73");

    file_backlog(&p53, BACKLOG, Timestamp::now());
    file_backlog(&p73, BACKLOG, Timestamp::now());
    let verifier = password(&hub.ok(&["officer", "add", "verif31", "--role", "verifier"]));

    // One test client files every report: above the per-address limit citizens get.
    let intake = ("LAPOR__HTTP__INTAKE_PER_MINUTE", "10000");
    hub.serve_with(&[intake]);
    let listen = format!("127.0.0.1:{}", hub2.fed_port);
    hub2.serve_with(&[intake, ("LAPOR__FEDERATION__LISTEN", &listen)]);
    // p53 does not pull (it would fetch what the hub is about to push, a duplicate that says
    // nothing about the hub's processes).
    p53.serve_with(&[("LAPOR__FEDERATION__PULL_INTERVAL_SECS", "3600")]);
    p73.serve();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Officers work through both processes while the provinces' backlogs arrive.
    let c = reqwest::Client::new();
    rt.block_on(async {
        let (st, login) = call(
            &c,
            format!("{}/api/v1/auth/login", hub.api),
            None,
            json!({"username": "verif31", "password": verifier}),
        )
        .await;
        assert_eq!(st, 200, "{login}");
        let token = login["token"].as_str().unwrap().to_owned();
        let a = tokio::spawn(officer_work(
            hub.api.clone(),
            hub2.api.clone(),
            token.clone(),
            "a",
        ));
        let b = tokio::spawn(officer_work(hub2.api.clone(), hub.api.clone(), token, "b"));
        let mut failures = a.await.unwrap();
        failures.extend(b.await.unwrap());
        assert!(failures.is_empty(), "{failures:#?}");
    });

    let limit = std::time::Duration::from_secs(180);
    wait_delivered(&p53, HUB, limit);
    wait_delivered(&p73, HUB, limit);
    wait_delivered(&hub, P53, limit);
    // p53 received the hub's events once: one process delivered to it at a time.
    let metrics = rt.block_on(async {
        c.get(format!("{}/metrics", p53.api))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let duplicates: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("lapor_federation_events_total") && l.contains("duplicate"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        metrics.contains("lapor_federation_events_total"),
        "{metrics}"
    );
    assert_eq!(duplicates, 0.0, "events p53 received twice");

    {
        for n in [&mut p53, &mut p73, &mut hub, &mut hub2] {
            n.stop();
        }
        // Every province event once, with the same ticket states on both sides.
        let (at_hub, _) = holdings(&hub, HUB);
        let mut compared = 0;
        for (province, id) in [(&p53, P53), (&p73, P73)] {
            let (here, written) = holdings(province, id);
            let (_, received) = holdings(&hub, id);
            assert_eq!(received, written, "events of {id} held by the hub");
            for (ticket, state) in &here {
                assert_eq!(at_hub.get(ticket), Some(state), "ticket {ticket} of {id}");
                compared += 1;
            }
        }
        // p53 holds the hub's tickets dispatched to its agency, too.
        assert_eq!(compared, 2 * BACKLOG + 2 * HUB_REPORTS);
        // The hub's own chain: every officer and citizen request one event, numbered 1..n
        // without a gap or a fork, and the audit verifies it.
        let db = lapor_node::app::open_database(&settings(&hub)).unwrap();
        let seqs: Vec<i64> = {
            let mut conn = db.read().unwrap();
            events::table
                .filter(events::origin.eq(HUB))
                .select(events::seq)
                .order(events::seq.asc())
                .load(&mut *conn)
                .unwrap()
        };
        let expected: Vec<i64> = (1..=i64::try_from(HUB_REPORTS * 2 * 3).unwrap()).collect();
        assert_eq!(seqs, expected, "the hub's chain");
        let said = hub.ok(&["audit", "verify"]);
        assert!(said.contains("verified"), "{said}");
        // The statistics kept by both processes equal a recomputation.
        let kept = {
            let mut conn = db.read().unwrap();
            lapor_node::hub::store::load(&mut conn).unwrap()
        };
        drop(db);
        hub.ok(&["rebuild"]);
        let db = lapor_node::app::open_database(&settings(&hub)).unwrap();
        let mut conn = db.read().unwrap();
        assert_eq!(
            lapor_node::hub::store::load(&mut conn).unwrap(),
            kept,
            "statistics kept by two processes vs rebuilt"
        );
    }
}

/// The count of reports in a `/api/v1/hub/stats?group_by=kind` answer.
fn reports_counted(v: &Value) -> i64 {
    v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .sum()
}

/// `database.statistics_url` (README "Several hub processes"): the national statistics are
/// read from the replica, everything else from the primary; a replica that is down fails the
/// statistics alone, with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_statistics_are_read_from_the_replica_and_only_they_fail_without_it() {
    let Some(db) = helpers::postgres() else {
        return;
    };
    let admin_url = std::env::var("LAPOR_TEST_PG_URL").unwrap();
    let file = |n: usize| {
        let t = helpers::tickets(&db);
        for _ in 0..n {
            t.submit(
                &crate::api_report(),
                &lapor_node::domain::Actor::citizen(),
                Timestamp::now(),
            )
            .unwrap();
        }
    };
    // Six reports, then the replica as of then (a copy of the database), then two more.
    file(6);
    let replica = format!("{}_replica", db.name_in_server());
    let mut admin = PgConnection::establish(&admin_url).unwrap();
    for sql in [
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name_in_server()
        ),
        format!("DROP DATABASE IF EXISTS {replica}"),
        format!("CREATE DATABASE {replica} TEMPLATE {}", db.name_in_server()),
    ] {
        diesel::sql_query(sql).execute(&mut admin).unwrap();
    }
    file(2);
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    for (statistics_url, expect_stats) in [
        (format!("{base}/{replica}"), Some(6)),
        ("postgres://postgres@127.0.0.1:1/none".to_owned(), None),
    ] {
        let settings = helpers::settings_at(
            &db,
            &db.url,
            &format!(
                "statistics_url = {statistics_url:?}\nconnect_timeout_secs = 2\npool_timeout_ms = 500"
            ),
            "[http]\nlisten = \"127.0.0.1:0\"\n",
        );
        let app = lapor_node::app::App::build(&settings).unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let server = tokio::spawn(app.run_until_stopped());
        let analyst = "analis-replika";
        let _ = state.auth.add(
            analyst,
            "correct horse battery",
            lapor_node::domain::Role::Analyst,
            None,
            Timestamp::now(),
        );
        let c = reqwest::Client::new();
        let (st, login) = call(
            &c,
            format!("{base}/api/v1/auth/login"),
            None,
            json!({"username": analyst, "password": "correct horse battery"}),
        )
        .await;
        assert_eq!(st, 200, "{login}");
        let token = login["token"].as_str().unwrap();
        let resp = c
            .get(format!("{base}/api/v1/hub/stats?group_by=kind"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let st = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        match expect_stats {
            Some(n) => {
                assert_eq!(st, 200, "{v}");
                assert_eq!(reports_counted(&v), n, "the replica's figures: {v}");
            }
            None => assert_eq!(st, 503, "{v}"),
        }
        // The primary still answers everything else: the node's own counts hold all eight.
        let overview = c
            .get(format!("{base}/api/v1/stats"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(overview.status().as_u16(), 200);
        let v: Value = overview.json().await.unwrap();
        assert_eq!(v["total"], 8, "the primary's own counts: {v}");
        server.abort();
    }
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {replica} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}

/// A statistics replica needs PostgreSQL on both sides; anything else is refused at load,
/// naming the setting.
#[test]
fn a_statistics_replica_without_postgresql_is_refused_naming_the_setting() {
    let base = "[node]\nid = \"hub.lapor.test\"\nrole = \"hub\"\nprovince = \"31\"\n[database]\n";
    for (database, why) in [
        (
            "statistics_url = \"postgres://replica.hub.internal/lapor\"\n",
            "a statistics replica needs PostgreSQL",
        ),
        (
            "url = \"postgres://primary.hub.internal/lapor\"\nstatistics_url = \"sqlite:///tmp/x.sqlite\"\n",
            "a statistics replica needs PostgreSQL",
        ),
        (
            "url = \"postgres://primary.hub.internal/lapor\"\nstatistics_url = \"mysql://replica/lapor\"\n",
            "must be a postgres:// URL",
        ),
    ] {
        let e = lapor_node::config::Settings::from_toml(&format!("{base}{database}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("database.statistics_url") && e.contains(why),
            "{e}"
        );
    }
    let ok = lapor_node::config::Settings::from_toml(&format!(
        "{base}url = \"postgres://primary.hub.internal/lapor\"\n\
         statistics_url = \"postgres://replica.hub.internal/lapor\"\n"
    ))
    .unwrap();
    assert!(ok.statistics_database.is_some());
}

/// A commit that asks for a notice in one process wakes the waiters of another process on the
/// same PostgreSQL database (its delivery workers, for outbox rows it did not write), without
/// waiting for their idle check; a commit that does not ask wakes nobody else, and a process
/// does not wake itself twice for its own commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_in_one_process_wakes_the_waiters_of_another() {
    let Some(db) = helpers::postgres() else {
        return;
    };
    // Two handles on one database: to PostgreSQL, two processes (own connections, own tokens).
    let (a, b) = (helpers::open(&db), helpers::open(&db));
    let (mut a_rx, mut b_rx) = (a.notices(), b.notices());
    // Let b's listener connect and LISTEN before anything is sent.
    tokio::time::sleep(lapor_node::db::listen::POLL * 10).await;

    a.write(|_| Ok::<_, lapor_node::db::DbError>(())).unwrap();
    tokio::time::sleep(lapor_node::db::listen::POLL * 5).await;
    assert!(
        !b_rx.has_changed().unwrap(),
        "a commit without a notice woke b"
    );

    a.write(|_| {
        lapor_node::db::writer::notice_after_commit();
        Ok::<_, lapor_node::db::DbError>(())
    })
    .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), b_rx.changed())
        .await
        .expect("b was not woken by a's commit")
        .unwrap();
    // a ticked once, from its writer; its listener skipped its own notice.
    tokio::time::sleep(lapor_node::db::listen::POLL * 5).await;
    assert!(a_rx.has_changed().unwrap());
    assert_eq!(*a_rx.borrow_and_update(), 1);
}
