//! Federation over real mTLS on loopback, in one process: a hub and two provinces
//! (`lapor_node::demo::cluster`), workers driven by the test (`deliver_round`, `pull_round`,
//! `settle`), links cut and restored by userspace proxies.

use std::time::Duration;

use lapor_node::config::NodeRole;
use lapor_node::crypto::keys::NodeKey;
use lapor_node::demo::cluster::{Cluster, ClusterNode, NodeSpec, Options, state_hash};
use lapor_node::demo::scenario::{AGENCY, Api, HUB, JAKARTA, NTT, ntt_report};
use lapor_node::domain::{Actor, Role, TicketId, Timestamp};
use lapor_node::tickets::Action;
use lapor_node::tls::certs::{self, Validity};
use lapor_node::tls::config::TlsFiles;
use serde_json::{Value, json};

pub(crate) fn specs(pg: Option<&crate::helpers::TestDb>) -> Vec<NodeSpec> {
    let mut v = vec![
        NodeSpec::new(HUB, "31", NodeRole::Hub),
        NodeSpec::new(JAKARTA, "31", NodeRole::Province),
        NodeSpec::new(NTT, "53", NodeRole::Province),
    ];
    // The hub on PostgreSQL when available (its production backend).
    if let Some(db) = pg {
        v[0].database_url = Some(db.url.clone());
    }
    v
}

pub(crate) async fn cluster(dir: &std::path::Path, pg: Option<&crate::helpers::TestDb>) -> Cluster {
    Cluster::start(dir, &specs(pg), &Options::default())
        .await
        .unwrap()
}

pub(crate) fn node<'a>(c: &'a Cluster, id: &str) -> &'a ClusterNode {
    c.node(id).unwrap()
}

pub(crate) fn count(n: &ClusterNode, sql_table: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = n.federation.db().read().unwrap();
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {sql_table}"))
        .get_result::<N>(&mut c)
        .unwrap()
        .n
}

pub(crate) fn same_state_everywhere(c: &Cluster, ticket: &str, nodes: &[&str]) {
    let hashes: Vec<_> = nodes
        .iter()
        .map(|n| state_hash(node(c, n), ticket).unwrap())
        .collect();
    assert!(hashes[0].is_some(), "{} does not hold {ticket}", nodes[0]);
    assert!(
        hashes.iter().all(|h| h == &hashes[0]),
        "state of {ticket} differs: {hashes:?}"
    );
}

/// Files and dispatches `n` NTT tickets to the Jakarta agency through the command layer.
pub(crate) fn ntt_tickets(c: &Cluster, n: usize) -> Vec<String> {
    let t = &node(c, NTT).state.tickets;
    let verifier = Actor {
        role: Role::Verifier,
        officer: Some("v".into()),
        agency: None,
    };
    let mut ids = Vec::new();
    for i in 0..n {
        let mut r = crate::api_report();
        r.title = format!("laporan {i}");
        let s = t.submit(&r, &Actor::citizen(), Timestamp::now()).unwrap();
        let id = s.event.ticket;
        t.act(&id, &verifier, Action::Verify, Timestamp::now())
            .unwrap();
        let dispatch = Action::Dispatch {
            agency: lapor_node::domain::AgencyCode::parse(AGENCY).unwrap(),
        };
        t.act(&id, &verifier, dispatch, Timestamp::now()).unwrap();
        ids.push(id.to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_flow_reaches_every_node_and_personal_data_only_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let pg = crate::helpers::postgres();
    let c = cluster(dir.path(), pg.as_ref()).await;
    let (ntt, jkt) = (Api::of(node(&c, NTT)), Api::of(node(&c, JAKARTA)));
    let (code, follow_up, ticket) = ntt.file(&ntt_report(0)).await.unwrap();
    let verifier = ntt.officer("v.ntt", Role::Verifier, None).await.unwrap();
    ntt.act(&verifier, &ticket, &json!({"action": "verify"}))
        .await
        .unwrap();
    ntt.act(
        &verifier,
        &ticket,
        &json!({"action": "dispatch", "agency": AGENCY}),
    )
    .await
    .unwrap();
    // Nothing moves until delivery runs: the origin never waits on the network.
    assert_eq!(jkt.status(&ticket).unwrap(), None);
    c.settle(10).await.unwrap();
    assert_eq!(jkt.status(&ticket).unwrap().as_deref(), Some("dispatched"));
    assert_eq!(
        Api::of(node(&c, HUB)).status(&ticket).unwrap().as_deref(),
        Some("dispatched")
    );
    // Personal data: the handler has it, the hub never.
    assert_eq!(count(node(&c, JAKARTA), "reporter_contacts"), 1);
    assert_eq!(count(node(&c, HUB), "reporter_contacts"), 0);
    // The origin's officers no longer handle it.
    let (st, _) = ntt
        .post(
            &format!("/api/v1/tickets/{ticket}/actions"),
            Some(&verifier),
            None,
            &json!({"action": "archive", "reason": "spam"}),
        )
        .await
        .unwrap();
    assert_eq!(st, 409);

    let liaison = jkt
        .officer("l.dki", Role::Liaison, Some(AGENCY))
        .await
        .unwrap();
    jkt.act(&liaison, &ticket, &json!({"action": "start"}))
        .await
        .unwrap();
    jkt.act(
        &liaison,
        &ticket,
        &json!({"action": "respond", "message": "Sudah kami proses."}),
    )
    .await
    .unwrap();
    c.settle(10).await.unwrap();
    let (_, view) = ntt
        .get(&format!("/api/v1/reports/{code}"), None)
        .await
        .unwrap();
    assert_eq!(view["status"], "responded", "{view}");
    assert!(view.to_string().contains("Sudah kami proses."), "{view}");
    assert!(
        !view.to_string().contains("Maria"),
        "identity leaked: {view}"
    );

    let (st, v) = ntt
        .post(
            &format!("/api/v1/reports/{code}/replies"),
            None,
            Some(&follow_up),
            &json!({"message": "Belum selesai."}),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    c.settle(10).await.unwrap();
    assert_eq!(jkt.status(&ticket).unwrap().as_deref(), Some("in_progress"));
    jkt.act(
        &liaison,
        &ticket,
        &json!({"action": "resolve", "message": "Selesai."}),
    )
    .await
    .unwrap();
    c.settle(10).await.unwrap();
    same_state_everywhere(&c, &ticket, &[NTT, JAKARTA, HUB]);
    assert_eq!(c.undelivered().unwrap(), 0);
    // Duplicate delivery is harmless: enqueue everything again and deliver.
    let before = count(node(&c, JAKARTA), "events");
    {
        use diesel::RunQueryDsl;
        let db = node(&c, NTT).federation.db().clone();
        db.write(|conn| {
            diesel::sql_query(
                "INSERT INTO outbox (destination, event_id, ticket, with_pii, enqueued_at_ms) \
                 SELECT 'prov-31.lapor.test', id, ticket, FALSE, 0 FROM events WHERE origin = 'prov-53.lapor.test'",
            )
            .execute(conn)
            .map(|_| ())
            .map_err(lapor_node::db::DbError::from)
        })
        .unwrap();
    }
    let d = node(&c, NTT)
        .federation
        .drain(&lapor_node::domain::NodeId::parse(JAKARTA).unwrap())
        .await
        .unwrap();
    assert!(d.acknowledged > 0);
    assert_eq!(count(node(&c, JAKARTA), "events"), before);
    same_state_everywhere(&c, &ticket, &[NTT, JAKARTA, HUB]);
    // The operator view shows everything delivered.
    let peers = node(&c, NTT).federation.status(Timestamp::now()).unwrap();
    assert!(
        peers.iter().all(|p| p.outbox_depth == 0 && p.reachable),
        "{peers:?}"
    );
    c.shutdown().await;
}

pub(crate) fn client_with(files: &TlsFiles, c: &Cluster, to: &str) -> (reqwest::Client, String) {
    let port = node(c, to).federation_port;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let client =
        lapor_node::tls::config::client(files, &[(to.to_owned(), addr)], Duration::from_secs(10))
            .unwrap();
    (client, format!("https://{to}:{port}"))
}

pub(crate) fn node_files(c: &Cluster, id: &str) -> TlsFiles {
    let d = c.dir.join(id).join("tls");
    TlsFiles {
        ca: d.join(certs::CA_CERT),
        cert: d.join(certs::NODE_CERT),
        key: d.join(certs::NODE_KEY),
    }
}

pub(crate) fn signed(mut v: Value, key: &NodeKey) -> Value {
    let obj = v.as_object_mut().unwrap();
    obj.remove("id");
    obj.remove("sig");
    let canonical = lapor_node::event_log::wire::canonical_bytes(&v).unwrap();
    let id = lapor_node::domain::EventId::of_bytes(&canonical);
    let sig = lapor_node::crypto::signing::sign(&canonical, key).to_value();
    let obj = v.as_object_mut().unwrap();
    obj.insert("id".into(), Value::String(id.to_string()));
    obj.insert("sig".into(), sig);
    v
}

pub(crate) fn batch(events: Vec<Value>) -> Vec<u8> {
    let id = lapor_node::federation::protocol::batch_id(&events);
    let events = Value::Array(events);
    serde_json::to_vec(&json!({"batch": id, "events": events})).unwrap()
}

pub(crate) async fn post(
    client: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
    zstd: bool,
) -> (u16, Value) {
    let mut req = client
        .post(format!("{base}/federation/v1/events"))
        .header("content-type", "application/json");
    if zstd {
        req = req.header("content-encoding", "zstd");
    }
    let r = req.body(body).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// Whether every result of a batch answer is `duplicate`.
fn all_duplicates(v: &Value) -> bool {
    v["results"]
        .as_array()
        .is_some_and(|r| r.iter().all(|r| r["result"] == "duplicate"))
}

pub(crate) fn stored_events(n: &ClusterNode, origin: &str) -> Vec<Value> {
    use diesel::prelude::*;
    use lapor_node::db::schema::events;
    let mut c = n.federation.db().read().unwrap();
    events::table
        .filter(events::origin.eq(origin))
        .order(events::seq.asc())
        .select(events::raw)
        .load::<String>(&mut c)
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_federation_input_is_refused_quarantined_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    let tickets = ntt_tickets(&c, 2);
    c.settle(10).await.unwrap();
    let jkt = node(&c, JAKARTA);
    let events_before = count(jkt, "events");
    let ntt_key = NodeKey::load(&c.dir.join(NTT).join("keys").join("signing.pem")).unwrap();
    let jkt_key = NodeKey::load(&c.dir.join(JAKARTA).join("keys").join("signing.pem")).unwrap();
    let (client, base) = client_with(&node_files(&c, NTT), &c, JAKARTA);

    // Transport layer: no certificate, another CA, an expired certificate — no handler runs.
    let other = dir.path().join("other");
    certs::create_ca(&other.join("ca"), "rogue CA", 30).unwrap();
    let ntt_id = lapor_node::domain::NodeId::parse(NTT).unwrap();
    certs::issue(
        &other.join("ca"),
        &ntt_id,
        &other.join("n"),
        Validity::days(30),
    )
    .unwrap();
    let expired = dir.path().join("expired");
    let now = time::OffsetDateTime::now_utc();
    let past = Validity {
        not_before: now - time::Duration::days(60),
        not_after: now - time::Duration::days(1),
    };
    certs::issue(&c.dir.join("ca"), &ntt_id, &expired, past).unwrap();
    let rogue = TlsFiles {
        ca: node_files(&c, NTT).ca,
        cert: other.join("n").join(certs::NODE_CERT),
        key: other.join("n").join(certs::NODE_KEY),
    };
    let old = TlsFiles {
        ca: node_files(&c, NTT).ca,
        cert: expired.join(certs::NODE_CERT),
        key: expired.join(certs::NODE_KEY),
    };
    let port = jkt.federation_port;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(node_files(&c, NTT).ca).unwrap()).unwrap();
    let anonymous = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .resolve(JAKARTA, addr)
        .build()
        .unwrap();
    for (what, cl) in [
        ("no client certificate", anonymous),
        (
            "certificate from another CA",
            client_with(&rogue, &c, JAKARTA).0,
        ),
        ("expired certificate", client_with(&old, &c, JAKARTA).0),
    ] {
        let r = cl.get(format!("{base}/federation/v1/node")).send().await;
        let r = match r {
            Ok(resp) => resp.text().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(r.is_err(), "{what}: the handshake must fail");
    }
    // The real certificate works.
    let info: Value = client
        .get(format!("{base}/federation/v1/node"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["id"], JAKARTA);

    // Request layer.
    let (st, v) = post(&client, &base, b"{\"batch\": ".to_vec(), false).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("malformed_json")),
        "{v}"
    );
    let too_many: Vec<Value> = (0..501).map(|i| json!({"id": i.to_string()})).collect();
    let (st, v) = post(&client, &base, batch(too_many), false).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (413, Some("batch_too_large")),
        "{v}"
    );
    let bomb = lapor_node::federation::protocol::compress(&vec![b' '; 20 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let (st, v) = post(&client, &base, bomb, true).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (413, Some("decompressed_too_large")),
        "{v}"
    );
    let (st, v) = post(
        &client,
        &base,
        serde_json::to_vec(&json!({"batch": "00", "events": []})).unwrap(),
        false,
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (422, Some("batch_id_mismatch")),
        "{v}"
    );

    // Event layer: each refused with its reason and quarantined.
    let held = stored_events(jkt, NTT);
    let first = held[0].clone();
    let mut forged = first.clone();
    forged["body"]["title"] = json!("diubah");
    let id = lapor_node::event_log::wire::canonical_bytes(&{
        let mut u = forged.clone();
        u.as_object_mut().unwrap().remove("id");
        u.as_object_mut().unwrap().remove("sig");
        u
    })
    .unwrap();
    forged["id"] = json!(lapor_node::domain::EventId::of_bytes(&id).to_string());
    let mut equivocating = first.clone();
    equivocating["body"]["title"] = json!("versi lain");
    let equivocating = signed(equivocating, &ntt_key);
    let mut not_owned = first.clone();
    not_owned["seq"] = json!(9000);
    not_owned["prev"] = json!("ab".repeat(32));
    let not_owned = signed(not_owned, &jkt_key);
    // NTT (not the handler) changing the status of a ticket Jakarta handles.
    let ticket = TicketId::parse(&tickets[0]).unwrap();
    let head = {
        let mut conn = jkt.federation.db().read().unwrap();
        lapor_node::tickets::store::by_id(&mut conn, &ticket)
            .unwrap()
            .unwrap()
            .head
    };
    let out_of_authority = signed(
        json!({"origin": NTT, "seq": 9001, "prev": "cd".repeat(32), "ticket": ticket.to_string(),
               "parents": [head], "kind": "started", "at": Timestamp::now(),
               "body": {"actor": {"role": "liaison", "officer": "x", "agency": AGENCY}}, "pii": null}),
        &ntt_key,
    );
    let (st, v) = post(
        &client,
        &base,
        batch(vec![forged, equivocating, not_owned, out_of_authority]),
        false,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let reasons: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["reason"]
                .as_str()
                .unwrap_or(r["result"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "bad_signature",
            "equivocation",
            "key_not_owned",
            "out_of_authority"
        ],
        "{v}"
    );
    assert_eq!(count(jkt, "events"), events_before);
    assert_eq!(count(jkt, "quarantine"), 4);
    // A replayed batch: every event a duplicate, nothing applied twice.
    let replay = batch(held.clone());
    for _ in 0..2 {
        let (st, v) = post(
            &client,
            &base,
            lapor_node::federation::protocol::compress(&replay),
            true,
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert!(all_duplicates(&v), "{v}");
    }
    assert_eq!(count(jkt, "events"), events_before);
    // A newer node's batch with an envelope field this version does not know: read, the
    // field ignored (the events inside stay strict: their signatures cover every field).
    let mut newer: Value = serde_json::from_slice(&replay).unwrap();
    newer["delivery_hints"] = json!({"link": "vsat", "window_secs": 600});
    let (st, v) = post(&client, &base, serde_json::to_vec(&newer).unwrap(), false).await;
    assert_eq!(st, 200, "{v}");
    assert!(all_duplicates(&v), "{v}");
    // Operators see it: quarantine list, metrics.
    let api = Api::of(jkt);
    let admin = api.officer("admin.dki", Role::Admin, None).await.unwrap();
    let (st, q) = api
        .get("/api/v1/federation/quarantine", Some(&admin))
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(q.as_array().unwrap().len(), 4, "{q}");
    let (st, p) = api
        .get("/api/v1/federation/peers", Some(&admin))
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert!(
        p.as_array()
            .unwrap()
            .iter()
            .any(|p| p["node"] == NTT && p["quarantined"] == 4),
        "{p}"
    );
    let metrics = reqwest::get(format!("{}/metrics", jkt.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "lapor_federation_rejected_total{reason=\"equivocation\"} 1",
        "reason=\"decompressed_too_large\"",
        "lapor_federation_outbox_depth{peer=",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from metrics");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_province_converges_through_the_hub_while_the_origin_stays_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    c.isolate(JAKARTA);
    let tickets = ntt_tickets(&c, 334); // 1,002 events
    c.settle(5).await.unwrap();
    let hub = node(&c, HUB);
    assert_eq!(count(hub, "events"), 1002);
    assert_eq!(count(node(&c, JAKARTA), "events"), 0);
    // NTT goes dark; Jakarta comes back and catches up from the hub alone.
    c.isolate(NTT);
    c.reconnect(JAKARTA);
    c.isolate(NTT);
    let p = node(&c, JAKARTA).federation.pull_once().await.unwrap();
    assert_eq!(p.accepted, 1002, "{p:?}");
    assert_eq!(count(node(&c, JAKARTA), "events"), 1002);
    for t in &tickets {
        same_state_everywhere(&c, t, &[NTT, JAKARTA, HUB]);
    }
    // NTT returns: its queued copies arrive as duplicates and leave the outbox.
    c.reconnect(NTT);
    c.settle(10).await.unwrap();
    assert_eq!(c.undelivered().unwrap(), 0);
    assert_eq!(count(node(&c, JAKARTA), "events"), 1002);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_stopped_mid_delivery_and_restarted_loses_nothing_and_applies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    // Small batches one at a time: delivery takes 120 round trips, so the receiver can be
    // stopped as soon as the first events have arrived.
    let opts = Options {
        federation_toml: "batch_max_events = 5\nin_flight = 1".into(),
        ..Options::default()
    };
    let mut c = Cluster::start(dir.path(), &specs(None), &opts)
        .await
        .unwrap();
    let tickets = ntt_tickets(&c, 200);
    let fed = node(&c, NTT).federation.clone();
    let to = lapor_node::domain::NodeId::parse(JAKARTA).unwrap();
    let sender = tokio::spawn(async move { fed.drain(&to).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while count(node(&c, JAKARTA), "events") == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    c.kill(JAKARTA).await.unwrap();
    let _ = sender.await.unwrap();
    let got = count(node(&c, JAKARTA), "events");
    assert!(
        got < 600,
        "the receiver stopped before everything arrived ({got})"
    );
    c.restart(JAKARTA).await.unwrap();
    c.settle(10).await.unwrap();
    assert_eq!(c.undelivered().unwrap(), 0);
    assert_eq!(count(node(&c, JAKARTA), "events"), 600);
    for t in &tickets {
        same_state_everywhere(&c, t, &[NTT, JAKARTA, HUB]);
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_runs_with_background_workers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        workers: true,
        pull_interval_secs: 1,
        ..Options::default()
    };
    let c = Cluster::start(dir.path(), &specs(None), &opts)
        .await
        .unwrap();
    let mut lines = Vec::new();
    // The catch-up over an emulated link, shaped so that it stays quick here.
    let link =
        lapor_node::demo::linksim::Shape::new(2_000_000, std::time::Duration::from_millis(25));
    let s = lapor_node::demo::scenario::run(&c, &mut |l| lines.push(l.to_owned()), 5, Some(link))
        .await
        .unwrap();
    assert_eq!(s.compared, 6, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("caught up in") && l.contains("information bound")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("NTT → hub [")),
        "{lines:#?}"
    );
    assert!(s.piled_up > 0);
    assert_eq!(c.undelivered().unwrap(), 0);

    // The hub URLs the demo prints show the scenario: NTT's tickets, the flow from NTT to
    // Jakarta, and the health of the three nodes.
    use lapor_node::demo::scenario::{HUB_ANALYST, HUB_PUBLIC};
    for n in c.nodes().filter(|n| n.id.as_str() != HUB) {
        n.federation
            .send_status(n.state.tickets.signing_key())
            .await
            .unwrap();
    }
    let hub = Api::of(node(&c, HUB));
    for path in HUB_PUBLIC {
        let (st, v) = hub.get(path, None).await.unwrap();
        assert_eq!(st, 200, "{path}: {v}");
        assert!(
            v.to_string().contains("\"53\"") || v.to_string().contains("53,"),
            "{path}: {v}"
        );
    }
    let analyst = hub.officer("analis", Role::Analyst, None).await.unwrap();
    let (st, flows) = hub.get(HUB_ANALYST[0], Some(&analyst)).await.unwrap();
    assert_eq!(st, 200, "{flows}");
    assert!(
        flows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["origin"] == "53" && r["handler"] == JAKARTA),
        "{flows}"
    );
    let (st, backlog) = hub.get(HUB_ANALYST[1], Some(&analyst)).await.unwrap();
    assert_eq!(st, 200, "{backlog}");
    let (st, health) = hub.get(HUB_ANALYST[2], Some(&analyst)).await.unwrap();
    assert_eq!(st, 200, "{health}");
    for id in [NTT, JAKARTA] {
        assert!(health.to_string().contains(id), "{id}: {health}");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_reaches_the_handler_and_a_late_personal_data_part_does_not_undo_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    let ntt = Api::of(node(&c, NTT));
    let (code, _, ticket) = ntt.file(&ntt_report(0)).await.unwrap();
    let verifier = ntt.officer("v.ntt", Role::Verifier, None).await.unwrap();
    for action in [
        json!({"action": "verify"}),
        json!({"action": "dispatch", "agency": AGENCY}),
    ] {
        ntt.act(&verifier, &ticket, &action).await.unwrap();
    }
    c.settle(10).await.unwrap();
    assert_eq!(count(node(&c, JAKARTA), "reporter_contacts"), 1);
    // What a delivery built before the erasure would carry: the `created` event and its
    // personal-data part.
    let created = stored_events(node(&c, NTT), NTT)
        .into_iter()
        .find(|e| e["ticket"] == ticket.as_str() && e["kind"] == "created")
        .expect("the created event");
    let part = {
        let mut conn = node(&c, NTT).federation.db().read().unwrap();
        let id = created["id"].as_str().unwrap();
        lapor_node::federation::outbox::pii_part(&mut conn, &ticket, id)
            .unwrap()
            .expect("the origin holds the part")
    };
    let admin = ntt.officer("a.ntt", Role::Admin, None).await.unwrap();
    let (st, v) = ntt
        .post(
            &format!("/api/v1/reports/{code}/erase"),
            Some(&admin),
            None,
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(st, 204, "{v}");
    c.settle(10).await.unwrap();
    assert_eq!(count(node(&c, NTT), "reporter_contacts"), 0);
    assert_eq!(count(node(&c, JAKARTA), "reporter_contacts"), 0);
    same_state_everywhere(&c, &ticket, &[NTT, JAKARTA, HUB]);

    let events = vec![created];
    let body = serde_json::to_vec(&json!({
        "batch": lapor_node::federation::protocol::batch_id(&events),
        "events": events,
        "pii": [part],
    }))
    .unwrap();
    let (client, base) = client_with(&node_files(&c, NTT), &c, JAKARTA);
    let (st, answer) = post(&client, &base, body, false).await;
    assert_eq!(st, 200, "{answer}");
    assert_eq!(answer["results"][0]["result"], "duplicate", "{answer}");
    assert_eq!(count(node(&c, JAKARTA), "reporter_contacts"), 0);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_peer_key_is_refused_until_an_operator_pins_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    ntt_tickets(&c, 1);
    c.settle(10).await.unwrap();
    let ntt_id = lapor_node::domain::NodeId::parse(NTT).unwrap();
    let jkt = &node(&c, JAKARTA).federation;
    jkt.fetch_keys(&ntt_id).await.unwrap();

    // NTT rotates its signing key: its node information now offers a key Jakarta never saw.
    let (_, new) = lapor_node::event_log::keys::rotate(
        node(&c, NTT).federation.db(),
        &ntt_id,
        &c.dir.join(NTT).join("keys").join("signing.pem"),
        Timestamp::now(),
    )
    .unwrap();
    // Without its signed statement (a node that rotated before statements existed, or whose
    // statement was lost), the new key waits for an operator.
    node(&c, NTT)
        .federation
        .db()
        .write(|c| {
            use diesel::RunQueryDsl;
            diesel::delete(lapor_node::db::schema::key_statements::table)
                .execute(c)
                .map_err(lapor_node::db::DbError::Query)
        })
        .unwrap();
    let e = jkt.fetch_keys(&ntt_id).await.unwrap_err().to_string();
    assert!(e.contains("refused until an operator pins it"), "{e}");
    let pinned_for = |key: &str| {
        let mut conn = jkt.db().read().unwrap();
        lapor_node::event_log::keys::keyring(&mut conn)
            .unwrap()
            .iter()
            .find(|(id, _)| id.to_string() == key)
            .map(|(_, k)| k.origin.to_string())
    };
    assert_eq!(pinned_for(&new.to_string()), None);

    // The operator pins it: only a key the peer really offers, only once, only for its owner.
    let e = jkt
        .pin_peer_key(&ntt_id, "ed25519:not-offered")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not offer key"), "{e}");
    let (k, added) = jkt.pin_peer_key(&ntt_id, &new.to_string()).await.unwrap();
    assert!(added);
    assert_eq!(k.id, new.to_string());
    assert_eq!(pinned_for(&new.to_string()).as_deref(), Some(NTT));
    let (_, again) = jkt.pin_peer_key(&ntt_id, &new.to_string()).await.unwrap();
    assert!(!again);
    jkt.fetch_keys(&ntt_id).await.unwrap();
    let e = lapor_node::federation::peers::pin_by_operator(
        jkt.db(),
        &lapor_node::domain::NodeId::parse(HUB).unwrap(),
        &k,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("already pinned for prov-53"), "{e}");
    c.shutdown().await;
}

/// Reports filed while the writer is busy are filed as one group, under one signature over
/// the Merkle tree of their events; each event still verifies alone: at the hub, and at a
/// province that cannot reach the origin and gets them relayed by the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_signed_as_a_group_are_relayed_and_each_verifies_alone() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    c.isolate(JAKARTA);
    let t = node(&c, NTT).state.tickets.clone();
    // Hold the writer, so that the reports queue up behind it.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (holding, running) = std::sync::mpsc::channel::<()>();
    let db = t.db().clone();
    let blocker = std::thread::spawn(move || {
        db.write(move |_| {
            holding.send(()).ok();
            held.recv().ok();
            Ok::<_, lapor_node::db::DbError>(())
        })
    });
    running.recv().unwrap();
    let mut filing = Vec::new();
    for i in 0..6 {
        let t = t.clone();
        let mut r = crate::api_report();
        r.title = format!("laporan bersama {i}");
        filing.push(tokio::spawn(async move {
            t.submit_async(&r, &Actor::citizen(), Timestamp::now())
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(()).unwrap();
    blocker.join().unwrap().unwrap();
    let mut tickets = Vec::new();
    for f in filing {
        tickets.push(f.await.unwrap().unwrap().event.ticket);
    }
    let created = stored_events(node(&c, NTT), NTT);
    assert_eq!(created.len(), 6);
    let first_sig = created[0]["sig"]["value"].clone();
    for (i, e) in created.iter().enumerate() {
        assert_eq!(e["sig"]["value"], first_sig, "one signature for the group");
        assert_eq!(e["sig"]["group"]["size"], json!(6));
        assert_eq!(e["sig"]["group"]["index"], json!(i));
    }
    let verifier = Actor {
        role: Role::Verifier,
        officer: Some("v".into()),
        agency: None,
    };
    for id in &tickets {
        t.act(id, &verifier, Action::Verify, Timestamp::now())
            .unwrap();
        let dispatch = Action::Dispatch {
            agency: lapor_node::domain::AgencyCode::parse(AGENCY).unwrap(),
        };
        t.act(id, &verifier, dispatch, Timestamp::now()).unwrap();
    }
    c.settle(5).await.unwrap();
    assert_eq!(count(node(&c, HUB), "events"), 18);
    assert_eq!(count(node(&c, HUB), "quarantine"), 0);
    // The origin goes dark; Jakarta gets the group-signed events from the hub.
    c.isolate(NTT);
    c.reconnect(JAKARTA);
    c.isolate(NTT);
    let p = node(&c, JAKARTA).federation.pull_once().await.unwrap();
    assert_eq!(p.accepted, 18, "{p:?}");
    assert_eq!(count(node(&c, JAKARTA), "quarantine"), 0);
    let relayed = stored_events(node(&c, JAKARTA), NTT);
    assert_eq!(relayed.len(), 18);
    assert_eq!(relayed[..6], created[..], "stored as signed by the origin");
    for id in &tickets {
        same_state_everywhere(&c, &id.to_string(), &[NTT, JAKARTA, HUB]);
    }
    // A whole ticket from the hub's feed (how a node fills a causal gap), by the ticket's id.
    let (client, base) = client_with(&node_files(&c, JAKARTA), &c, HUB);
    let feed = |q: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client
                .get(format!("{base}/federation/v1/events?{q}"))
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            let zstd = r
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v.as_bytes() == b"zstd");
            let mut body = r.bytes().await.unwrap().to_vec();
            if zstd {
                body = lapor_node::federation::protocol::decompress(&body, 1 << 24).unwrap();
            }
            (st, serde_json::from_slice::<Value>(&body).unwrap())
        }
    };
    let (st, page) = feed(format!("ticket={}", tickets[2])).await;
    assert_eq!(st, 200, "{page}");
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "verified", "dispatched"]);
    let ticket = tickets[2].to_string();
    let origin_copy = created.iter().find(|e| e["ticket"] == ticket.as_str());
    assert_eq!(Some(&page["events"][0]), origin_copy);
    let (st, err) = feed(format!("ticket={}", TicketId::new())).await;
    assert_eq!(
        (st, err["error"].as_str()),
        (404, Some("unknown_ticket")),
        "{err}"
    );
    c.shutdown().await;
}

/// A causal gap filled by pulling: the hub cannot reach the origin, so it first sees the
/// handler's `started` event without the origin's events before it; it asks the handler for
/// the whole ticket (`?ticket=`) and applies it in causal order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_event_whose_parents_are_missing_brings_its_whole_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    for (from, to) in [(NTT, HUB), (HUB, NTT), (JAKARTA, HUB)] {
        c.link(from, to).unwrap().cut();
    }
    let ticket = ntt_tickets(&c, 1).remove(0);
    let to_jakarta = lapor_node::domain::NodeId::parse(JAKARTA).unwrap();
    let d = node(&c, NTT).federation.drain(&to_jakarta).await.unwrap();
    assert_eq!(d.acknowledged, 3, "{d:?}");
    let liaison = Actor {
        role: Role::Liaison,
        officer: Some("l".into()),
        agency: Some(lapor_node::domain::AgencyCode::parse(AGENCY).unwrap()),
    };
    let id = TicketId::parse(&ticket).unwrap();
    node(&c, JAKARTA)
        .state
        .tickets
        .act(&id, &liaison, Action::Start, Timestamp::now())
        .unwrap();
    assert_eq!(count(node(&c, HUB), "events"), 0);
    // The hub pulls: NTT is out of reach; Jakarta's chain starts with `started`, whose parents
    // the hub does not hold.
    let p = node(&c, HUB).federation.pull_once().await.unwrap();
    assert_eq!(p.deferred, 1, "{p:?}");
    assert_eq!(count(node(&c, HUB), "events"), 4);
    assert_eq!(count(node(&c, HUB), "quarantine"), 0);
    same_state_everywhere(&c, &ticket, &[JAKARTA, HUB]);
    assert_eq!(
        Api::of(node(&c, HUB)).status(&ticket).unwrap().as_deref(),
        Some("in_progress")
    );
    c.shutdown().await;
}
