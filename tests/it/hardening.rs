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

/// Through the front door: an event carrying a member in `sig` that no signature covers is
/// refused alone with its own reason (shown in the answer and the metrics); an integer beyond
/// ±(2^53 − 1) anywhere in a request fails the request, as any strict-JSON violation does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_data_in_sig_and_unsafe_integers_are_refused_at_the_door() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    ntt_tickets(&c, 1);
    let ntt = node(&c, NTT);
    let own = stored_events(ntt, NTT);
    let key = NodeKey::load(&c.dir.join(NTT).join("keys").join("signing.pem")).unwrap();
    let hub = node(&c, HUB);
    let (client, base) = client_with(&node_files(&c, NTT), &c, HUB);
    let mut riding = own[0].clone();
    riding["sig"]["paid"] = json!(true);
    let mut events = vec![riding];
    events.extend(own.iter().cloned());
    let (st, v) = post(&client, &base, batch(events), false).await;
    assert_eq!(st, 200, "{v}");
    let r = results(&v);
    assert_eq!(r[0], "unknown_sig_member", "{v}");
    assert!(r[1..].iter().all(|x| x == "accepted"), "{v}");
    let metrics = metrics_text(&hub.api);
    assert!(
        metrics.contains("lapor_federation_rejected_total{reason=\"unknown_sig_member\"} 1"),
        "the reason is counted"
    );
    // A next event of NTT's chain with 2^53 in its body, validly signed: the whole request is
    // refused before any event is judged.
    let head = own.last().unwrap();
    let mut big = own[0].clone();
    big["seq"] = json!(head["seq"].as_i64().unwrap() + 1);
    big["prev"] = head["id"].clone();
    big["body"]["count"] = json!(9_007_199_254_740_992_u64);
    let before = count(hub, "events");
    let (st, v) = post(&client, &base, batch(vec![signed(big, &key)]), false).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"], "malformed_json", "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("outside ±(2^53 − 1)"), "{message}");
    assert_eq!(count(hub, "events"), before);
    c.shutdown().await;
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
    // The handling agency's liaison at Jakarta sees whom to call back; the hub holds nothing.
    let jkt = Api::of(node(&c, JAKARTA));
    let liaison = jkt
        .officer("l.dki", Role::Liaison, Some(AGENCY))
        .await
        .unwrap();
    let (st, v) = jkt
        .get(&format!("/api/v1/tickets/{ticket}"), Some(&liaison))
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["reporter"]["name"], name, "{v}");
    assert_eq!(count(node(&c, HUB), "reporter_contacts"), 0);
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

/// A province holds only the events of tickets it takes part in: its audit judges its own
/// chain whole and reports the others as partial, not as faults; the hub's audit judges every
/// chain whole; a broken link between two held events stays a fault everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reports_partial_chains_on_provinces_and_judges_every_chain_on_the_hub() {
    use lapor_node::event_log::audit;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    // NTT files three tickets; only the second goes to Jakarta, so Jakarta holds a stretch
    // of NTT's chain with gaps on both sides.
    let t = &node(&c, NTT).state.tickets;
    let mut r = crate::api_report();
    r.title = "lokal".into();
    t.submit(
        &r,
        &lapor_node::domain::Actor::citizen(),
        lapor_node::domain::Timestamp::now(),
    )
    .unwrap();
    ntt_tickets(&c, 1);
    t.submit(
        &r,
        &lapor_node::domain::Actor::citizen(),
        lapor_node::domain::Timestamp::now(),
    )
    .unwrap();
    c.settle(10).await.unwrap();
    let scope = |id: &str, hub: bool| audit::Scope {
        node: lapor_node::domain::NodeId::parse(id).unwrap(),
        holds_all: hub,
    };
    let run = |id: &str, hub: bool| {
        let mut conn = node(&c, id).federation.db().read().unwrap();
        audit::run(&mut conn, &scope(id, hub)).unwrap()
    };
    let jkt = run(JAKARTA, false);
    assert!(jkt.faults.is_empty(), "{:?}", jkt.faults);
    assert_eq!(jkt.partial.len(), 1, "{:?}", jkt.partial);
    assert_eq!(jkt.partial[0].origin, NTT);
    let hub = run(HUB, true);
    assert!(hub.faults.is_empty(), "{:?}", hub.faults);
    assert!(hub.partial.is_empty());
    // Judged as if it held everything, Jakarta's copy would show gaps: the scope matters.
    let strict = run(JAKARTA, true);
    assert!(
        strict
            .faults
            .iter()
            .any(|f| f.reason.contains("seq gap")
                || f.reason.contains("events before it are missing")),
        "{:?}",
        strict.faults
    );
    c.shutdown().await;
}

/// Every answer that needs the follow-up token is the same for an unknown code, a confidential
/// report and a wrong token: probing cannot tell which codes exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_up_answers_do_not_tell_whether_a_report_exists() {
    use crate::api::{Node, report_body};
    let db = crate::helpers::sqlite();
    // The throttles are tested elsewhere; here every probe must reach the handler.
    let node = Node::start(
        &db,
        "follow_up_failures_per_minute = 0\nlookups_per_minute = 0",
    )
    .await;
    let mut body = report_body();
    body["confidential"] = json!(true);
    let (confidential, _, _) = node.file(&body).await;
    let (public, _, _) = node.file(&report_body()).await;
    // A well-formed code of this province that was never issued.
    let unknown = if confidential.ends_with("2222") {
        format!("{}3333", &confidential[..confidential.len() - 4])
    } else {
        format!("{}2222", &confidential[..confidential.len() - 4])
    };
    let get = |code: &str, token: Option<&str>| {
        let mut r = node.http.get(node.url(&format!("/api/v1/reports/{code}")));
        if let Some(t) = token {
            r = r.header("X-Follow-Up-Token", t);
        }
        r
    };
    // Reading: no token on a confidential report, a wrong token on any report, an unknown code.
    let reference = node.send(get(&unknown, None)).await;
    assert_eq!(reference.0.as_u16(), 404);
    for (what, req) in [
        ("confidential, no token", get(&confidential, None)),
        (
            "confidential, wrong token",
            get(&confidential, Some("salah")),
        ),
        ("public, wrong token", get(&public, Some("salah"))),
        ("unknown, a token", get(&unknown, Some("salah"))),
    ] {
        let answer = node.send(req).await;
        assert_eq!(answer, reference, "{what}");
    }
    // Follow-ups: without a token, 401 whether the code exists or not; with a wrong one, the
    // same 404 as an unknown code.
    for action in ["replies", "rating", "reopen"] {
        let body = if action == "rating" {
            json!({"rating": 5})
        } else {
            json!({"message": "halo"})
        };
        let path = |code: &str| format!("/api/v1/reports/{code}/{action}");
        let none_unknown = node.post(&path(&unknown), None, &body).await;
        let none_real = node.post(&path(&confidential), None, &body).await;
        assert_eq!(none_unknown.0.as_u16(), 401, "{action}");
        assert_eq!(none_unknown, none_real, "{action} without a token");
        let wrong_unknown = node.citizen(&path(&unknown), "salah", &body).await;
        assert_eq!(wrong_unknown.0.as_u16(), 404, "{action}");
        for code in [&confidential, &public] {
            let wrong = node.citizen(&path(code), "salah", &body).await;
            assert_eq!(
                wrong, wrong_unknown,
                "{action} with a wrong token on {code}"
            );
        }
    }
}

/// Answers carry `nosniff` and are never cached (they carry tokens and identities); a body
/// keeps its line breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_not_cached_or_sniffed_and_bodies_keep_line_breaks() {
    use crate::api::{Node, report_body};
    let db = crate::helpers::sqlite();
    let node = Node::start(&db, "").await;
    let mut body = report_body();
    body["body"] = json!("Baris satu.\nBaris dua.\tSelesai.");
    let r = node
        .http
        .post(node.url("/api/v1/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    for h in [r.headers().clone(), {
        node.http
            .get(node.url("/healthz"))
            .send()
            .await
            .unwrap()
            .headers()
            .clone()
    }] {
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
    }
    let v: Value = r.json().await.unwrap();
    let code = v["tracking_code"].as_str().unwrap();
    let (_, shown) = node.get(&format!("/api/v1/reports/{code}"), None).await;
    assert_eq!(
        shown["body"], "Baris satu.\nBaris dua.\tSelesai.",
        "{shown}"
    );
}

/// A member that sends refused events by the thousand cannot fill the disk: the quarantine
/// keeps raw events up to its bounds per sender, then a digest and the reason, and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quarantine_is_bounded_per_sender() {
    use lapor_node::federation::quarantine::{QUARANTINE_RAW_BYTES, QUARANTINE_RAW_EVENTS};
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    let jkt = node(&c, JAKARTA);
    let (client, base) = client_with(&node_files(&c, NTT), &c, JAKARTA);
    let pad = "a".repeat(30_000);
    let mut n = 0u64;
    for _ in 0..2 {
        let events: Vec<Value> = (0..400)
            .map(|_| {
                n += 1;
                json!({"id": format!("{n:064x}"), "origin": NTT, "pad": pad})
            })
            .collect();
        let body = lapor_node::federation::protocol::compress(&batch(events));
        let (st, v) = post(&client, &base, body, true).await;
        assert_eq!(st, 200, "{v}");
        assert!(results(&v).iter().all(|r| r == "malformed"), "{v}");
    }
    #[derive(diesel::QueryableByName)]
    struct Q {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        raw_rows: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        raw_chars: i64,
    }
    let q: Q = {
        use diesel::RunQueryDsl;
        let mut conn = jkt.federation.db().read().unwrap();
        diesel::sql_query(
            "SELECT COUNT(*) AS rows, SUM(CASE WHEN raw <> '' THEN 1 ELSE 0 END) AS raw_rows, \
             SUM(LENGTH(raw)) AS raw_chars FROM quarantine",
        )
        .get_result(&mut conn)
        .unwrap()
    };
    assert_eq!(q.rows, 800, "every refusal is recorded");
    assert!(q.raw_rows <= QUARANTINE_RAW_EVENTS);
    assert!(q.raw_chars <= QUARANTINE_RAW_BYTES, "{}", q.raw_chars);
    assert!(q.raw_rows > 0 && q.raw_rows < 400, "{}", q.raw_rows);
    let metrics = metrics_text(&jkt.api);
    let line = format!(
        "lapor_federation_quarantine_over_bounds_total{{kept=\"digest_only\",peer=\"{NTT}\"}} {}",
        800 - q.raw_rows
    );
    assert!(metrics.contains(&line), "{line} missing");
    c.shutdown().await;
}

/// On PostgreSQL too, erased contact data is in no table file afterwards (a plain VACUUM
/// would leave the bytes in the page). Needs read access to PostgreSQL's data directory (the
/// test machine runs as root); skipped otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_personal_data_is_gone_from_postgresql_table_files() {
    use crate::api::{Node, report_body};
    use diesel::RunQueryDsl;
    let Some(db) = crate::helpers::postgres() else {
        return;
    };
    let node = Node::start(&db, "").await;
    let (code, _, _) = node.file(&report_body()).await;
    // Other contacts share the table's pages.
    for _ in 0..5 {
        node.file(&report_body()).await;
    }
    #[derive(diesel::QueryableByName)]
    struct P {
        #[diesel(sql_type = diesel::sql_types::Text)]
        path: String,
    }
    let table_file = || {
        let mut c = node.app_state.tickets.db().read().unwrap();
        diesel::sql_query("CHECKPOINT").execute(&mut c).unwrap();
        let p: P = diesel::sql_query(
            "SELECT current_setting('data_directory') || '/' || \
             pg_relation_filepath('reporter_contacts') AS path",
        )
        .get_result(&mut c)
        .unwrap();
        std::path::PathBuf::from(p.path)
    };
    let name = "Siti Rahayu";
    let Ok(before) = std::fs::read(table_file()) else {
        eprintln!("PostgreSQL's data directory is not readable here; file scan skipped");
        return;
    };
    let count = |bytes: &[u8]| {
        bytes
            .windows(name.len())
            .filter(|w| *w == name.as_bytes())
            .count()
    };
    assert_eq!(count(&before), 6, "the scan finds every stored contact");
    let admin = node
        .officer("admin", lapor_node::domain::Role::Admin, None)
        .await;
    let (st, v) = node
        .post(
            &format!("/api/v1/reports/{code}/erase"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(st.as_u16(), 204, "{v}");
    let after = std::fs::read(table_file()).unwrap();
    assert_eq!(
        count(&after),
        5,
        "the erased contact is gone from the table file"
    );
}
