//! The federation's health at the hub: a gap in an origin's chain (an event lost from the
//! hub's database) and an equivocation (a second event signed for a place already held) are
//! shown with their origin and counted as alerts.

use lapor_node::crypto::keys::NodeKey;
use lapor_node::demo::scenario::{HUB, NTT};
use lapor_node::domain::Role;
use serde_json::{Value, json};

use crate::federation::{
    batch, client_with, cluster, node, node_files, ntt_tickets, post, signed, stored_events,
};

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
    let lines =
        lapor_node::ops::federation_status::run(&hub.settings, hub.federation.db()).unwrap();
    let id = other["id"].as_str().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(NTT) && l.contains(&format!("EQUIVOCATION: refused {id}"))),
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
