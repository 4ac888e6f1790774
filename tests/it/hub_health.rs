//! The federation's health at the hub: a gap in an origin's chain (an event lost from the
//! hub's database) and an equivocation (a second event signed for a place already held) are
//! shown with their origin and raise alerts; each province's signed status is shown beside
//! what the hub holds, and a status that is not the sender's own, wrongly signed, from a
//! non-member or older than the held one is refused, counted and changes nothing.

use lapor_node::crypto::keys::NodeKey;
use lapor_node::demo::scenario::{HUB, JAKARTA, NTT};
use lapor_node::domain::Role;
use serde_json::{Value, json};

use crate::federation::{
    batch, client_with, cluster, count, node, node_files, ntt_tickets, post, signed, stored_events,
};

fn member<'a>(health: &'a Value, node: &str) -> &'a Value {
    health["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("{node} not among the nodes: {health}"))
}

fn alerts_of<'a>(health: &'a Value, node: &str) -> Vec<&'a Value> {
    health["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["node"] == node)
        .collect()
}

fn alert<'a>(health: &'a Value, kind: &str, node: &str) -> &'a Value {
    alerts_of(health, node)
        .into_iter()
        .find(|a| a["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} alert on {node}: {health}"))
}

/// `id` sends the hub its status now; returns the bytes on the wire.
async fn send_status(c: &lapor_node::demo::cluster::Cluster, id: &str) -> usize {
    let n = node(c, id);
    n.federation
        .send_status(n.state.tickets.signing_key())
        .await
        .unwrap()
        .bytes
}

fn chain<'a>(health: &'a Value, origin: &str) -> &'a Value {
    health["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["origin"] == origin)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_shows_a_gap_and_an_equivocation_in_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    ntt_tickets(&c, 2);
    c.settle(10).await.unwrap();
    let hub = node(&c, HUB);
    let api = lapor_node::demo::scenario::Api::of(hub);
    let analyst = api.officer("analis", Role::Analyst, None).await.unwrap();

    let (st, health) = api
        .get("/api/v1/hub/federation", Some(&analyst))
        .await
        .unwrap();
    assert_eq!(st, 200, "{health}");
    assert_eq!(
        chain(&health, NTT)["audit"],
        json!({"state": "ok"}),
        "{health}"
    );
    assert_eq!(chain(&health, NTT)["head_held"], 6);

    // A gap: the hub loses NTT's third event.
    {
        use diesel::RunQueryDsl as _;
        let mut conn = hub.federation.db().read().unwrap();
        let sql = format!("DELETE FROM events WHERE origin = '{NTT}' AND seq = 3");
        assert_eq!(diesel::sql_query(sql).execute(&mut conn).unwrap(), 1);
    }
    let (_, health) = api
        .get("/api/v1/hub/federation", Some(&analyst))
        .await
        .unwrap();
    assert_eq!(
        chain(&health, NTT)["audit"],
        json!({"state": "gap", "missing": 1}),
        "{health}"
    );
    assert_eq!(
        alert(&health, "gap", NTT)["detail"],
        "1 event(s) missing below seq 6",
        "{health}"
    );
    // NTT's status says its head is 6: one event of it is missing at the hub.
    send_status(&c, NTT).await;
    let (_, health) = api
        .get("/api/v1/hub/federation", Some(&analyst))
        .await
        .unwrap();
    let n = member(&health, NTT);
    assert_eq!(
        (&n["head_reported"], &n["head_held"], &n["missing_at_hub"]),
        (&json!(6), &json!(6), &json!(1)),
        "{n}"
    );
    assert_eq!(n["audit"], json!({"state": "gap", "missing": 1}), "{n}");

    // An equivocation: NTT signs a second, different event for its first place.
    let ntt_key = NodeKey::load(&c.dir.join(NTT).join("keys").join("signing.pem")).unwrap();
    let first = stored_events(hub, NTT)[0].clone();
    let mut other = first.clone();
    other["body"]["title"] = json!("versi lain");
    let other = signed(other, &ntt_key);
    let (client, base) = client_with(&node_files(&c, NTT), &c, HUB);
    let (st, v) = post(&client, &base, batch(vec![other.clone()]), false).await;
    assert_eq!(
        (st, v["results"][0]["reason"].as_str()),
        (200, Some("equivocation")),
        "{v}"
    );
    let (_, health) = api
        .get("/api/v1/hub/federation", Some(&analyst))
        .await
        .unwrap();
    assert_eq!(
        chain(&health, NTT)["audit"],
        json!({"state": "equivocation", "events": [other["id"]]}),
        "{health}"
    );
    let id = other["id"].as_str().unwrap();
    // The gap's alert gave way to the equivocation's, which names the refused event.
    assert!(
        alerts_of(&health, NTT).iter().all(|a| a["kind"] != "gap"),
        "{health}"
    );
    assert_eq!(
        alert(&health, "equivocation", NTT)["detail"],
        format!("refused events: {id}"),
        "{health}"
    );
    assert_eq!(
        member(&health, NTT)["audit"],
        json!({"state": "equivocation", "events": [id]}),
        "{health}"
    );
    let lines =
        lapor_node::ops::federation_status::run(&hub.settings, hub.federation.db()).unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(NTT) && l.contains(&format!("EQUIVOCATION: refused {id}"))),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("ALERT EQUIVOCATION {NTT}: refused events: {id}"))),
        "{lines:#?}"
    );
    // The peers' links are listed beside the chains.
    assert!(
        health["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["node"] == NTT),
        "{health}"
    );
    let metrics = reqwest::get(format!("{}/metrics", hub.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "lapor_federation_chain_alerts_total{kind=\"gap\"} 1",
        "lapor_federation_chain_alerts_total{kind=\"equivocation\"} 1",
        "lapor_federation_alerts_raised_total{kind=\"gap\"} 1",
        "lapor_federation_alerts_raised_total{kind=\"equivocation\"} 1",
        "lapor_federation_alerts{kind=\"equivocation\"} 1",
        "lapor_federation_alerts{kind=\"gap\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle} missing");
    }
    // Other roles may not read it.
    let verifier = api.officer("verif", Role::Verifier, None).await.unwrap();
    assert_eq!(
        api.get("/api/v1/hub/federation", Some(&verifier))
            .await
            .unwrap()
            .0,
        403
    );
    c.shutdown().await;
}

fn metric(text: &str, needle: &str) -> bool {
    text.lines().any(|l| l == needle)
}

/// Posts a status body (signed JSON, plain) with the client of `files` to the hub.
async fn post_status(
    c: &lapor_node::demo::cluster::Cluster,
    files: &lapor_node::tls::config::TlsFiles,
    body: &Value,
) -> (u16, Value) {
    let (client, base) = client_with(files, c, HUB);
    let r = client
        .post(format!("{base}/federation/v1/status"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// NTT's status now, as `federation::status::build` makes it (unsigned).
fn ntt_status(
    c: &lapor_node::demo::cluster::Cluster,
) -> lapor_node::federation::protocol::NodeStatus {
    use lapor_node::domain::{NodeId, Timestamp};
    let n = node(c, NTT);
    let mut conn = n.federation.db().read().unwrap();
    let peers = [NodeId::parse(HUB).unwrap(), NodeId::parse(JAKARTA).unwrap()];
    lapor_node::federation::status::build(
        &mut conn,
        &NodeId::parse(NTT).unwrap(),
        &peers,
        Timestamp::now(),
    )
    .unwrap()
}

fn held_sent_at(c: &lapor_node::demo::cluster::Cluster, of: &str) -> i64 {
    use diesel::prelude::*;
    use lapor_node::db::schema::node_status;
    let mut conn = node(c, HUB).federation.db().read().unwrap();
    node_status::table
        .find(of)
        .select(node_status::sent_at_ms)
        .first(&mut conn)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_shows_each_nodes_signed_status_and_refuses_forged_or_stale_ones() {
    use lapor_node::federation::status::sign;
    for pg in [None, crate::helpers::postgres()] {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster(dir.path(), pg.as_ref()).await;
        ntt_tickets(&c, 2);
        c.settle(10).await.unwrap();
        let hub = node(&c, HUB);
        let api = lapor_node::demo::scenario::Api::of(hub);
        let analyst = api.officer("analis", Role::Analyst, None).await.unwrap();

        // Accepted and shown: both provinces report; NTT's head and outbox are what it holds.
        let bytes = send_status(&c, NTT).await;
        send_status(&c, JAKARTA).await;
        eprintln!("a province's status on the wire: {bytes} bytes (zstd)");
        assert!(bytes < 1024, "{bytes} bytes");
        let (st, health) = api
            .get("/api/v1/hub/federation", Some(&analyst))
            .await
            .unwrap();
        assert_eq!(st, 200, "{health}");
        let n = member(&health, NTT);
        assert_eq!(n["role"], "province");
        assert_eq!(n["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            (&n["head_reported"], &n["head_held"], &n["missing_at_hub"]),
            (&json!(6), &json!(6), &json!(0)),
            "{n}"
        );
        assert_eq!(n["head_event_reported"], stored_events(hub, NTT)[5]["id"]);
        assert_eq!(n["quarantined"], 0);
        assert_eq!(n["audit"], json!({"state": "ok"}));
        assert!(n["clock_skew_ms"].as_i64().unwrap().abs() < 5_000, "{n}");
        let outbox = n["outbox"].as_array().unwrap();
        assert_eq!(outbox.len(), 2, "{n}");
        assert!(outbox.iter().all(|o| o["depth"] == 0), "{n}");
        assert!(outbox.iter().any(|o| o["peer"] == JAKARTA), "{n}");
        assert!(n["last_contact_ms"].as_i64().is_some());
        assert_eq!(member(&health, JAKARTA)["head_reported"], 0);
        assert_eq!(member(&health, HUB)["role"], "hub");
        assert!(health["alerts"].as_array().unwrap().is_empty(), "{health}");
        // The CLI prints the same table.
        let lines =
            lapor_node::ops::federation_status::run(&hub.settings, hub.federation.db()).unwrap();
        let row = lines.iter().find(|l| l.starts_with(NTT)).unwrap();
        assert!(
            row.contains(env!("CARGO_PKG_VERSION")) && row.ends_with("ok"),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start().starts_with(NTT) && l.contains(&format!("→ {HUB} 0"))),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l == "alerts: none"), "{lines:#?}");

        // Refused, counted, nothing stored.
        let held = held_sent_at(&c, NTT);
        let ntt_key = NodeKey::load(&c.dir.join(NTT).join("keys").join("signing.pem")).unwrap();
        let ntt_files = node_files(&c, NTT);
        let mut newer = ntt_status(&c);
        newer.sent_at_ms = held + 1000;
        newer.quarantined = 99;
        // Signed with a key the hub has not pinned for NTT.
        let stranger = sign(&newer, &NodeKey::generate()).unwrap();
        // Signed by NTT, then changed.
        let mut tampered = sign(&newer, &ntt_key).unwrap();
        tampered["quarantined"] = json!(98);
        // NTT's own, signed by NTT, sent over Jakarta's certificate.
        let good = sign(&newer, &ntt_key).unwrap();
        // Older than the held one.
        let mut older = ntt_status(&c);
        older.sent_at_ms = held - 1;
        let older = sign(&older, &ntt_key).unwrap();
        let evil_id = lapor_node::domain::NodeId::parse("evil.lapor.test").unwrap();
        let evil_dir = dir.path().join("evil");
        lapor_node::tls::certs::issue(
            &c.dir.join("ca"),
            &evil_id,
            &evil_dir,
            lapor_node::tls::certs::Validity::days(30),
        )
        .unwrap();
        let evil = lapor_node::tls::config::TlsFiles {
            ca: ntt_files.ca.clone(),
            cert: evil_dir.join(lapor_node::tls::certs::NODE_CERT),
            key: evil_dir.join(lapor_node::tls::certs::NODE_KEY),
        };
        let cases = [
            (&ntt_files, &stranger, 403, "unknown_key"),
            (&ntt_files, &tampered, 403, "bad_signature"),
            (&node_files(&c, JAKARTA), &good, 403, "node_mismatch"),
            (&ntt_files, &older, 409, "stale_status"),
            (&evil, &good, 403, "not_a_member"),
        ];
        for (files, body, status, code) in cases {
            let (st, v) = post_status(&c, files, body).await;
            assert_eq!((st, v["error"].as_str()), (status, Some(code)), "{v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        }
        let (st, v) = post_status(&c, &ntt_files, &json!({"node": NTT})).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (422, Some("malformed_status")),
            "{v}"
        );
        let mut long = newer.clone();
        long.version = "9".repeat(300);
        let (st, v) = post_status(&c, &ntt_files, &sign(&long, &ntt_key).unwrap()).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (422, Some("malformed_status")),
            "{v}"
        );
        assert_eq!(
            held_sent_at(&c, NTT),
            held,
            "a refused status changed the held one"
        );
        assert_eq!(count(hub, "node_status"), 2);
        let (_, health) = api
            .get("/api/v1/hub/federation", Some(&analyst))
            .await
            .unwrap();
        assert_eq!(member(&health, NTT)["quarantined"], 0, "{health}");
        let metrics = reqwest::get(format!("{}/metrics", hub.api))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (reason, n) in [
            ("unknown_key", 1),
            ("bad_signature", 1),
            ("node_mismatch", 1),
            ("stale_status", 1),
            ("not_a_member", 1),
            ("malformed_status", 2),
        ] {
            let needle =
                format!("lapor_federation_status_refused_total{{reason=\"{reason}\"}} {n}");
            assert!(metric(&metrics, &needle), "{needle} missing");
        }
        // A province does not take statuses.
        let (client, base) = client_with(&ntt_files, &c, JAKARTA);
        let r = client
            .post(format!("{base}/federation/v1/status"))
            .body(serde_json::to_vec(&good).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);

        // The same NTT status, signed by NTT and sent over its own certificate, is accepted;
        // one whose clock is ten minutes ahead raises a skew alert.
        let (st, v) = post_status(&c, &ntt_files, &good).await;
        assert_eq!(st, 200, "{v}");
        let mut ahead = ntt_status(&c);
        ahead.sent_at_ms += 600_000;
        let (st, v) = post_status(&c, &ntt_files, &sign(&ahead, &ntt_key).unwrap()).await;
        assert_eq!(st, 200, "{v}");
        let (_, health) = api
            .get("/api/v1/hub/federation", Some(&analyst))
            .await
            .unwrap();
        assert!(
            member(&health, NTT)["clock_skew_ms"].as_i64().unwrap() > 590_000,
            "{health}"
        );
        assert!(
            alert(&health, "skew", NTT)["detail"]
                .as_str()
                .unwrap()
                .starts_with("clock off by"),
            "{health}"
        );
        c.shutdown().await;
    }
}
