//! The provincial IT officer's walk, with the installed binary and nothing else, in the order
//! and with the commands of README and `certs/README.md`: a new province node (72, Sulawesi
//! Tengah) and a hub from `init`; certificates from a signing request; the province's agency
//! added on both; officers; a complaint handled end to end over the HTTP API and replicated to
//! the hub; a backup restored into a fresh directory; a key rotation tried with the node
//! running (refused), done with it stopped, and taken by the hub from its signed statement with
//! nothing refused or quarantined.

use serde_json::{Value, json};

use crate::bin::{ok, text};
use crate::nodes::{Node, federate, figures, make_node, password, s, wait_peers};

const P72: &str = "prov-72.lapor.test";
const HUB: &str = "hub.lapor.test";
const AGENCY: &str = "SULTENG-DINKES";

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

async fn login(c: &reqwest::Client, n: &Node, user: &str, pass: &str) -> String {
    let (st, v) = call(
        c,
        reqwest::Method::POST,
        format!("{}/api/v1/auth/login", n.api),
        None,
        Some(json!({"username": user, "password": pass})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

async fn act(c: &reqwest::Client, n: &Node, token: &str, ticket: &str, action: Value) -> Value {
    let (st, v) = call(
        c,
        reqwest::Method::POST,
        format!("{}/api/v1/tickets/{ticket}/actions", n.api),
        Some(token),
        Some(action.clone()),
    )
    .await;
    assert_eq!(st, 200, "{action}: {v}");
    v
}

async fn file(c: &reqwest::Client, n: &Node, title: &str) -> (String, String) {
    let (st, v) = call(
        c,
        reqwest::Method::POST,
        format!("{}/api/v1/reports", n.api),
        None,
        Some(json!({
            "kind": "pengaduan", "title": title,
            "body": "Puskesmas di Kecamatan Palu Barat tutup pada jam layanan.",
            "category": "kesehatan", "region": "7271", "agency": AGENCY, "channel": "web",
            "anonymous": false, "confidential": false,
            "reporter": {"name": "Rahmat", "phone": "+6281234500072"}
        })),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    (
        v["tracking_code"].as_str().unwrap().to_owned(),
        v["follow_up_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_province_follows_the_docs_from_init_to_a_rotated_key() {
    let dir = tempfile::tempdir().unwrap();
    let walk = dir.path();
    let http = reqwest::Client::new();

    // The hub operator runs the federation CA (certs/README.md).
    ok(&["certs", "ca", "--out", s(&walk.join("ca"))]);
    let mut p72 = make_node(walk, P72, "72", "province");
    let mut hub = make_node(walk, HUB, "31", "hub");
    federate(&p72, HUB, &hub, "hub", "31");
    federate(&hub, P72, &p72, "province", "72");

    // Agencies: the province's own, added here and at the hub that receives its tickets.
    let add = [
        "agencies",
        "add",
        AGENCY,
        "--name",
        "Dinas Kesehatan Provinsi Sulawesi Tengah",
        "--region",
        "72",
    ];
    p72.ok(&add);
    hub.ok(&[&add[..], &["--owner", P72]].concat());
    assert!(p72.ok(&["agencies", "list"]).contains(AGENCY));
    for n in [&p72, &hub] {
        let said = n.ok(&["config", "check"]);
        assert!(said.contains("checks passed"), "{said}");
    }

    // Officers.
    let verifier = password(&p72.ok(&["officer", "add", "verif72", "--role", "verifier"]));
    let liaison = password(&p72.ok(&[
        "officer", "add", "dinkes72", "--role", "liaison", "--agency", AGENCY,
    ]));

    // Step 4: start and check.
    hub.serve();
    p72.serve();

    // A complaint end to end at the province.
    let (code, token) = file(&http, &p72, "Puskesmas tutup").await;
    assert!(code.starts_with("72-"), "{code}");
    let vt = login(&http, &p72, "verif72", &verifier).await;
    let lt = login(&http, &p72, "dinkes72", &liaison).await;
    let (st, list) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/tickets?status=submitted", p72.api),
        Some(&vt),
        None,
    )
    .await;
    assert_eq!(st, 200, "{list}");
    let ticket = list["items"][0]["id"].as_str().unwrap().to_owned();
    act(&http, &p72, &vt, &ticket, json!({"action": "verify"})).await;
    act(
        &http,
        &p72,
        &vt,
        &ticket,
        json!({"action": "dispatch", "agency": AGENCY}),
    )
    .await;
    act(&http, &p72, &lt, &ticket, json!({"action": "start"})).await;
    act(
        &http,
        &p72,
        &lt,
        &ticket,
        json!({"action": "respond", "message": "Jam layanan sudah kami tertibkan."}),
    )
    .await;
    let (st, seen) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/reports/{code}", p72.api),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{seen}");
    assert_eq!(seen["status"], "responded", "{seen}");
    let rate = http
        .post(format!("{}/api/v1/reports/{code}/replies", p72.api))
        .header("X-Follow-Up-Token", &token)
        .json(&json!({"message": "Terima kasih."}))
        .send()
        .await
        .unwrap();
    assert!(rate.status().is_success(), "{}", rate.text().await.unwrap());

    // Replicated to the hub: the province's outbox drains, nothing refused.
    let said = wait_peers(&p72, "delivered to the hub", |t| {
        figures(t, HUB) == (0, 0, 0)
    });
    assert!(!said.contains("last error"), "{said}");

    // Backup while running, restored into a fresh directory that audits clean.
    let backup = walk.join("backups").join("p72");
    p72.ok(&["backup", "--out", s(&backup)]);
    let restored = walk.join("restored").join(P72);
    let said = ok(&["restore", "--from", s(&backup), "--dir", s(&restored)]);
    assert!(said.contains(" 0 fault(s)"), "{said}");
    let said = ok(&[
        "--config",
        s(&restored.join("config.toml")),
        "audit",
        "verify",
    ]);
    assert!(said.contains("verified"), "{said}");

    // Key rotation: refused while the node runs…
    let refused = p72.run(&["keys", "rotate"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("stop it first"),
        "{}",
        text(&refused)
    );
    // …done with it stopped, then started again.
    p72.stop();
    let said = p72.ok(&["keys", "rotate"]);
    assert!(said.contains("rotated:"), "{said}");
    let keys = p72.ok(&["keys", "list"]);
    let new_key = keys
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("ed25519:")))
        .unwrap()
        .to_owned();
    p72.serve();
    let _ = file(&http, &p72, "Jalan berlubang").await;

    // The rotation's statement, signed by the old key and the new one, comes with the events
    // the new key signs: the hub pins the key from it, with no operator; nothing is refused or
    // quarantined.
    let said = wait_peers(&p72, "delivered under the new key", |t| {
        figures(t, HUB) == (0, 0, 0)
    });
    assert!(!said.contains("refused by it:"), "{said}");
    let at_hub = wait_peers(&hub, "nothing quarantined", |t| figures(t, P72).2 == 0);
    assert!(!at_hub.contains("quarantined here:"), "{at_hub}");
    let said = hub.ok(&["peers", "pin", "--peer", P72, "--key", &new_key]);
    assert!(said.contains("already pinned"), "{said}");
    p72.stop();
    hub.stop();
    let said = hub.ok(&["audit", "verify"]);
    assert!(said.contains("verified"), "{said}");
}
