//! Security hardening, tested as a hostile federation member would attack: a certificate
//! from the federation CA that names no member, a member squatting another province's
//! tracking codes, a poisoned event between good ones.

use lapor_node::crypto::keys::NodeKey;
use lapor_node::demo::scenario::{HUB, JAKARTA, NTT};
use lapor_node::tls::certs::{self, Validity};
use lapor_node::tls::config::TlsFiles;
use serde_json::{Value, json};

use crate::federation::{
    batch, client_with, cluster, count, node, node_files, ntt_tickets, post, signed, stored_events,
};

fn metrics_text(api: &str) -> String {
    let url = format!("{api}/metrics");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
    })
    .join()
    .unwrap()
}

/// A certificate from the federation CA proves who the caller is, not that it is a member:
/// a node id no member lists is refused on every federation route, logged and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_the_federation_ca_for_a_non_member_is_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    let tickets = ntt_tickets(&c, 1);
    c.settle(10).await.unwrap();
    let evil_id = lapor_node::domain::NodeId::parse("evil.lapor.test").unwrap();
    let evil_dir = dir.path().join("evil");
    certs::issue(&c.dir.join("ca"), &evil_id, &evil_dir, Validity::days(30)).unwrap();
    let evil = TlsFiles {
        ca: node_files(&c, NTT).ca,
        cert: evil_dir.join(certs::NODE_CERT),
        key: evil_dir.join(certs::NODE_KEY),
    };
    let held = stored_events(node(&c, HUB), NTT);
    assert!(!held.is_empty());
    for target in [HUB, JAKARTA] {
        let before = count(node(&c, target), "events");
        let (client, base) = client_with(&evil, &c, target);
        let r = client
            .get(format!("{base}/federation/v1/node"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{target}: node info");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "not_a_member", "{v}");
        for query in [
            format!("origin={NTT}&after=0"),
            format!("ticket={}", tickets[0]),
        ] {
            let r = client
                .get(format!("{base}/federation/v1/events?{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 403, "{target}: feed {query}");
        }
        // A genuine, validly signed event relayed by the non-member is not taken either.
        let (st, v) = post(&client, &base, batch(held.clone()), false).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (403, Some("not_a_member")),
            "{v}"
        );
        assert_eq!(count(node(&c, target), "events"), before);
        let metrics = metrics_text(&node(&c, target).api);
        assert!(
            metrics.contains("lapor_federation_requests_refused_total{reason=\"not_a_member\"} 4"),
            "{target}: refusals are counted"
        );
    }
    // A member's certificate still works.
    let (client, base) = client_with(&node_files(&c, NTT), &c, HUB);
    let r = client
        .get(format!("{base}/federation/v1/node"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    c.shutdown().await;
}

/// `event` re-signed by `key` as the next event of `origin`'s chain after `head`, for a new
/// ticket with the tracking code `code`.
fn forged_created(template: &Value, head: &Value, code: &str, key: &NodeKey) -> Value {
    let mut e = template.clone();
    e["ticket"] = json!(lapor_node::domain::TicketId::new().to_string());
    e["seq"] = json!(head["seq"].as_i64().unwrap() + 1);
    e["prev"] = head["id"].clone();
    e["body"]["tracking_code"] = json!(code);
    signed(e, key)
}

fn results(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["reason"]
                .as_str()
                .unwrap_or(r["result"].as_str().unwrap())
                .to_owned()
        })
        .collect()
}

/// A member cannot squat another province's tracking codes, and an event that cannot be
/// stored for a reason in its content is refused alone: the good events around it are stored
/// and the sender's queue moves on. On both backends (the hub on PostgreSQL when available).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_event_is_refused_alone_and_the_good_ones_around_it_are_stored() {
    poisoned_batch(None).await;
    if let Some(pg) = crate::helpers::postgres() {
        poisoned_batch(Some(&pg)).await;
    }
}

async fn poisoned_batch(pg: Option<&crate::helpers::TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), pg).await;
    // Two NTT tickets filed and not yet delivered anywhere.
    ntt_tickets(&c, 2);
    let ntt = node(&c, NTT);
    let own = stored_events(ntt, NTT);
    let key = NodeKey::load(&c.dir.join(NTT).join("keys").join("signing.pem")).unwrap();
    let created: Vec<&Value> = own.iter().filter(|e| e["kind"] == "created").collect();
    let head = own.last().unwrap();
    let existing_code = created[0]["body"]["tracking_code"].as_str().unwrap();
    let jakarta_code = format!("31{}", &existing_code[2..]);
    let squat = forged_created(created[0], head, &jakarta_code, &key);
    let duplicate_code = forged_created(created[0], head, existing_code, &key);
    let (first, rest) = own.split_at(own.len() / 2);

    let hub = node(&c, HUB);
    let (client, base) = client_with(&node_files(&c, NTT), &c, HUB);
    // The squat: refused by rule.
    let mut events: Vec<Value> = first.to_vec();
    events.push(squat);
    let (st, v) = post(&client, &base, batch(events), false).await;
    assert_eq!(st, 200, "{v}");
    let r = results(&v);
    assert_eq!(r.last().unwrap(), "code_not_of_origin", "{v}");
    assert!(r[..r.len() - 1].iter().all(|x| x == "accepted"), "{v}");
    // A second report under a code NTT already used: every rule passes, the database's
    // unique code refuses it. It is refused alone; the good events after it are stored.
    let mut events: Vec<Value> = vec![duplicate_code];
    events.extend(rest.iter().cloned());
    let (st, v) = post(&client, &base, batch(events), false).await;
    assert_eq!(st, 200, "a content conflict must not fail the batch: {v}");
    let r = results(&v);
    assert_eq!(r[0], "unstorable", "{v}");
    assert!(r[1..].iter().all(|x| x == "accepted"), "{v}");
    assert_eq!(count(hub, "events"), i64::try_from(own.len()).unwrap());
    assert_eq!(count(hub, "quarantine"), 2);
    // NTT's own queue drains (everything is already held by the hub: duplicates).
    c.settle(10).await.unwrap();
    assert_eq!(c.undelivered().unwrap(), 0);
    c.shutdown().await;
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The node's files hold reporters' names and phone numbers and its keys: its owner's only,
/// whatever the umask; a database or TLS key that others may read stops the node.
#[test]
fn the_data_directory_database_and_keys_are_private_whatever_the_umask() {
    use std::process::Command;
    const BIN: &str = env!("CARGO_BIN_EXE_lapor-node");
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("data").join("n31");
    let under_umask = |args: &[&str]| {
        Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(BIN)
            .args(args)
            .output()
            .unwrap()
    };
    let dir_arg = node_dir.to_str().unwrap();
    let out = under_umask(&[
        "init",
        "--node-id",
        "prov-31.lapor.test",
        "--province",
        "31",
        "--dir",
        dir_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = node_dir.join("config.toml");
    let migrate = || under_umask(&["--config", config.to_str().unwrap(), "migrate"]);
    assert!(migrate().status.success());
    assert_eq!(mode(&node_dir), 0o700, "data directory");
    let db = node_dir.join("lapor.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    for entry in std::fs::read_dir(&node_dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
    }
    // A database file others can read: refused with the fix named.
    std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = migrate();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("readable by others") && err.contains("chmod 600"),
        "{err}"
    );

    // A TLS private key others can read: refused, like the signing key.
    let ca = dir.path().join("ca");
    let tls = dir.path().join("tls");
    certs::create_ca(&ca, "test CA", 30).unwrap();
    let id = lapor_node::domain::NodeId::parse("prov-31.lapor.test").unwrap();
    certs::issue(&ca, &id, &tls, Validity::days(30)).unwrap();
    let files = TlsFiles {
        ca: ca.join(certs::CA_CERT),
        cert: tls.join(certs::NODE_CERT),
        key: tls.join(certs::NODE_KEY),
    };
    assert!(lapor_node::tls::config::server_config(&files).is_ok());
    std::fs::set_permissions(
        &files.key,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let err = lapor_node::tls::config::server_config(&files).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    let err = lapor_node::tls::config::client(&files, &[], std::time::Duration::from_secs(1))
        .unwrap_err();
    assert!(err.to_string().contains("readable by others"), "{err}");
}

/// Whether any of `needles` occurs in the bytes of the SQLite database of `node_dir` or its
/// write-ahead log.
fn on_disk(db_file: &std::path::Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for suffix in ["", "-wal"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db_file.display()));
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push(format!("{n} in {}", f.display()));
            }
        }
    }
    found
}

/// After an erasure the reporter's name, phone and the commitment's salt cannot be read from
/// the database files — on the origin and on the handler that held a copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_personal_data_is_gone_from_the_database_files() {
    use lapor_node::demo::scenario::{AGENCY, Api, ntt_report};
    use lapor_node::domain::Role;
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
    let salt = {
        let mut conn = node(&c, NTT).federation.db().read().unwrap();
        let t = lapor_node::domain::TicketId::parse(&ticket).unwrap();
        lapor_node::tickets::store::contact(&mut conn, &t)
            .unwrap()
            .unwrap()
            .salt
            .unwrap()
    };
    let report = ntt_report(0);
    let name = report["reporter"]["name"].as_str().unwrap();
    let phone = report["reporter"]["phone"].as_str().unwrap();
    let needles = [name, phone, salt.as_str()];
    let file = |id: &str| c.dir.join(id).join("lapor.sqlite");
    // The scan finds the data while it is held (so that finding nothing later means something).
    for id in [NTT, JAKARTA] {
        let found = on_disk(&file(id), &needles);
        for n in needles {
            assert!(
                found.iter().any(|f| f.starts_with(n)),
                "{id} holds the contact: {found:?}"
            );
        }
    }
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
    assert_eq!(count(node(&c, JAKARTA), "reporter_contacts"), 0);
    for id in [NTT, JAKARTA] {
        let found = on_disk(&file(id), &needles);
        assert!(found.is_empty(), "{id} still holds erased data: {found:?}");
    }
    c.shutdown().await;
}
