//! The throttles through the real front door (a node on port 0, driven over HTTP): lookups,
//! refused follow-up tokens, login address limit and lockout, the password-hash queue, client
//! addresses from trusted proxies, and weak passwords refused by `officer add`.
//!
//! Every limit here is configured small and nothing depends on timing: a bucket refills at
//! its rate per minute, far slower than a test runs, and the hash queue is filled by holding
//! its only slot.

use std::process::{Command, Stdio};

use lapor_node::domain::{Role, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{Node, report_body};
use crate::helpers;

/// Status, `Retry-After` and body of a response.
async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Option<u64>, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let text = resp.text().await.unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn assert_limited(r: &(StatusCode, Option<u64>, Value), what: &str) {
    assert_eq!(r.0, StatusCode::TOO_MANY_REQUESTS, "{what}: {}", r.2);
    assert!(r.1.is_some_and(|s| s >= 1), "{what}: Retry-After {:?}", r.1);
    assert_eq!(r.2["error"], "rate_limited", "{what}: {}", r.2);
    assert!(
        r.2["message"].as_str().unwrap().contains("retry in"),
        "{}",
        r.2
    );
}

async fn metrics(node: &Node) -> String {
    let r = node.http.get(node.url("/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

fn login(node: &Node, username: &str, password: &str) -> reqwest::RequestBuilder {
    node.http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_beyond_the_limit_get_429_with_retry_after() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "intake_per_minute = 0\nlookups_per_minute = 3").await;
    let (code, token, _) = node.file(&report_body()).await;
    let show = format!("/api/v1/reports/{code}");
    for _ in 0..3 {
        let r = call(node.http.get(node.url(&show))).await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    }
    assert_limited(&call(node.http.get(node.url(&show))).await, "lookup");
    // The follow-up routes share the bucket, even with the right token.
    let reply = node
        .http
        .post(node.url(&format!("{show}/replies")))
        .header("X-Follow-Up-Token", &token)
        .json(&json!({"message": "Masih mati."}));
    let before = node.event_count();
    assert_limited(&call(reply).await, "reply");
    assert_eq!(node.event_count(), before);
    // Unknown codes cost the same: enumerating codes is throttled too.
    let unknown = node.http.get(node.url("/api/v1/reports/31-AAAA-AAAA"));
    assert_limited(&call(unknown).await, "unknown code");
    let text = metrics(&node).await;
    assert!(
        text.contains("lapor_rate_limited_total{limit=\"lookup\"} 3"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_follow_up_tokens_beyond_the_limit_get_429() {
    let db = helpers::sqlite();
    let http = "intake_per_minute = 0\nlookups_per_minute = 100\nfollow_up_failures_per_minute = 2";
    let node = Node::start(&db, http).await;
    let (code, token, _) = node.file(&report_body()).await;
    let reply = |t: &str| {
        node.http
            .post(node.url(&format!("/api/v1/reports/{code}/replies")))
            .header("X-Follow-Up-Token", t)
            .json(&json!({"message": "Masih mati."}))
    };
    let before = node.event_count();
    for n in 0..2 {
        let r = call(reply(&format!("wrong-token-{n}"))).await;
        assert!(
            r.0 == StatusCode::UNAUTHORIZED || r.0 == StatusCode::NOT_FOUND,
            "{}",
            r.2
        );
    }
    assert_limited(&call(reply("wrong-token-3")).await, "wrong token");
    // Reading with a (wrong) token is a token check too.
    let show = node
        .http
        .get(node.url(&format!("/api/v1/reports/{code}")))
        .header("X-Follow-Up-Token", "wrong-token-4");
    assert_limited(&call(show).await, "show with token");
    // While the bucket is empty even the right token waits: guessing gains nothing.
    assert_limited(&call(reply(&token)).await, "right token");
    assert_eq!(node.event_count(), before);
    // A public lookup without a token is not held by the token limit.
    let r = call(node.http.get(node.url(&format!("/api/v1/reports/{code}")))).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    let text = metrics(&node).await;
    assert!(
        text.contains("lapor_rate_limited_total{limit=\"follow_up_token\"} 3"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_lockout_looks_the_same_for_known_and_unknown_usernames() {
    let db = helpers::sqlite();
    let extra = "login_per_minute = 0\n[auth]\nlockout_after_failures = 3\nlockout_secs = 60";
    let node = Node::start(&db, extra).await;
    let pw = "correct horse battery";
    node.app_state
        .auth
        .add("verif", pw, Role::Verifier, None, Timestamp::now())
        .unwrap();
    let mut locked = Vec::new();
    for name in ["verif", "ghost"] {
        for _ in 0..3 {
            let r = call(login(&node, name, "wrong password!!")).await;
            assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{name}: {}", r.2);
        }
        let r = call(login(&node, name, "wrong password!!")).await;
        assert_limited(&r, name);
        locked.push(r);
    }
    assert_eq!(
        locked[0], locked[1],
        "a locked unknown username looks like a known one"
    );
    assert!(
        locked[0].2["message"]
            .as_str()
            .unwrap()
            .contains("failed logins for this username"),
        "{}",
        locked[0].2
    );
    // Locked means locked: the right password waits too.
    assert_limited(&call(login(&node, "verif", pw)).await, "right password");
    // Other usernames are not affected; a success resets the streak.
    node.app_state
        .auth
        .add("verif2", pw, Role::Verifier, None, Timestamp::now())
        .unwrap();
    for _ in 0..2 {
        let r = call(login(&node, "verif2", "wrong password!!")).await;
        assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(call(login(&node, "verif2", pw)).await.0, StatusCode::OK);
    for _ in 0..2 {
        let r = call(login(&node, "verif2", "wrong password!!")).await;
        assert_eq!(r.0, StatusCode::UNAUTHORIZED, "the streak restarted");
    }
    let text = metrics(&node).await;
    assert!(text.contains("lapor_login_lockouts_total 2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_per_client_address_are_limited() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "login_per_minute = 2").await;
    for n in 0..2 {
        let r = call(login(&node, &format!("user{n}"), "wrong password!!")).await;
        assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{}", r.2);
    }
    let r = call(login(&node, "user9", "wrong password!!")).await;
    assert_limited(&r, "login address");
    assert!(
        r.2["message"]
            .as_str()
            .unwrap()
            .contains("from this address")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_queues_while_other_routes_answer() {
    let db = helpers::sqlite();
    let extra = "intake_per_minute = 0\nlogin_per_minute = 0\n\
                 [auth]\nhash_concurrency = 1\nhash_queue = 4";
    let node = Node::start(&db, extra).await;
    let pw = "correct horse battery";
    node.app_state
        .auth
        .add("verif", pw, Role::Verifier, None, Timestamp::now())
        .unwrap();
    let (code, _, _) = node.file(&report_body()).await;
    // Hold the only hash slot, as a long argon2 run would.
    let gate = node.app_state.limits.hash_gate().clone();
    let slot = gate.acquire(gate.enter().unwrap()).await.unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        let req = login(&node, "verif", pw);
        queued.push(tokio::spawn(async move { call(req).await }));
    }
    for _ in 0..1000 {
        if gate.waiting() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(gate.waiting(), 4, "the logins queue for the slot");
    // Beyond the queue: refused at once, not queued.
    assert_limited(&call(login(&node, "verif", pw)).await, "login queue full");
    // Other routes answer while the logins wait.
    let r = call(node.http.get(node.url(&format!("/api/v1/reports/{code}")))).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    assert_eq!(
        call(node.http.get(node.url("/healthz"))).await.0,
        StatusCode::OK
    );
    node.file(&report_body()).await;
    assert_eq!(gate.waiting(), 4, "the logins were still queued meanwhile");
    drop(slot);
    for q in queued {
        let r = q.await.unwrap();
        assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    }
    assert_eq!(gate.admitted(), 0);
}

/// GET a report with an `X-Forwarded-For` header.
async fn lookup_as(node: &Node, code: &str, xff: Option<&str>) -> StatusCode {
    let mut req = node.http.get(node.url(&format!("/api/v1/reports/{code}")));
    if let Some(x) = xff {
        req = req.header("X-Forwarded-For", x);
    }
    call(req).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_clients_get_their_own_buckets_only_through_a_trusted_proxy() {
    let db = helpers::sqlite();
    let http = "intake_per_minute = 1\nlookups_per_minute = 2\n\
                trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]";
    let node = Node::start(&db, http).await;
    // Intake: one report per forwarded client.
    let file = |xff: &str| {
        node.http
            .post(node.url("/api/v1/reports"))
            .header("X-Forwarded-For", xff)
            .json(&report_body())
    };
    let r = call(file("203.0.113.1")).await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.2);
    let code = r.2["tracking_code"].as_str().unwrap().to_owned();
    assert_limited(&call(file("203.0.113.1")).await, "same client");
    assert_eq!(call(file("203.0.113.2")).await.0, StatusCode::CREATED);
    // Lookups: client A's bucket runs out, client B's (behind a second proxy) does not.
    let (a, b) = ("203.0.113.1", "198.51.100.7, 10.0.0.5");
    assert_eq!(lookup_as(&node, &code, Some(a)).await, StatusCode::OK);
    assert_eq!(lookup_as(&node, &code, Some(a)).await, StatusCode::OK);
    assert_eq!(
        lookup_as(&node, &code, Some(a)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client cannot escape by writing its own entry: the proxy appended the real one.
    let spoof = "192.0.2.99, 203.0.113.1";
    assert_eq!(
        lookup_as(&node, &code, Some(spoof)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(lookup_as(&node, &code, Some(b)).await, StatusCode::OK);
    // Malformed from a trusted proxy: the proxy's own address (counted).
    assert_eq!(lookup_as(&node, &code, Some("junk")).await, StatusCode::OK);
    assert_eq!(lookup_as(&node, &code, Some("junk")).await, StatusCode::OK);
    assert_eq!(
        lookup_as(&node, &code, None).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let text = metrics(&node).await;
    assert!(text.contains("lapor_forwarded_malformed_total 2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_header_from_an_untrusted_peer_is_ignored() {
    let db = helpers::sqlite();
    let http = "intake_per_minute = 0\nlookups_per_minute = 2\ntrusted_proxies = [\"10.0.0.0/8\"]";
    let node = Node::start(&db, http).await;
    let (code, _, _) = node.file(&report_body()).await;
    assert_eq!(
        lookup_as(&node, &code, Some("203.0.113.1")).await,
        StatusCode::OK
    );
    assert_eq!(
        lookup_as(&node, &code, Some("203.0.113.2")).await,
        StatusCode::OK
    );
    for xff in ["203.0.113.3", "10.0.0.1", "198.51.100.1, 203.0.113.4"] {
        assert_eq!(
            lookup_as(&node, &code, Some(xff)).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{xff}"
        );
    }
    let text = metrics(&node).await;
    assert!(!text.contains("lapor_forwarded_malformed_total"), "{text}");
}

#[test]
fn officer_add_and_reset_refuse_weak_passwords_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let toml = "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = \"d\"\n";
    std::fs::write(&config, toml).unwrap();
    let officer = |args: &[&str], password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lapor-node"))
            .arg("--config")
            .arg(&config)
            .arg("officer")
            .args(args)
            .arg("--password-stdin")
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let add = ["add", "budi.s", "--role", "admin"];
    for (password, rule) in [
        ("short", "at least 12 characters"),
        ("Password2024!", "common password"),
        ("bismillah12345", "common password"),
        ("aaaaaaaaaaaaaaaa", "different characters"),
        ("i am budi.s, hello", "must not contain the username"),
    ] {
        let (ok, text) = officer(&add, password);
        assert!(!ok, "{password:?} accepted: {text}");
        assert!(
            text.contains("password") && text.contains(rule),
            "{password:?}: {text}"
        );
    }
    let (ok, text) = officer(&add, "lampu kuningan mati lagi");
    assert!(ok, "{text}");
    let (ok, text) = officer(&["reset", "budi.s"], "qwertyuiop123");
    assert!(!ok && text.contains("common password"), "{text}");
    let (ok, text) = officer(&["reset", "budi.s"], "another long passphrase");
    assert!(ok, "{text}");
}

/// Latency of a lookup while 16 clients flood the login route, with as many hash slots as
/// flooders (what an unbounded pool did) and with the default gate. A measurement, not a check:
/// `cargo test --test it login_flood_latency_table -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; prints a table"]
async fn login_flood_latency_table() {
    use std::time::{Duration, Instant};
    println!("| hash slots | flood | lookup median ms | lookup p90 ms | logins/s |");
    println!("|---|---|---|---|---|");
    for (slots, flood) in [(0, false), (16, true), (0, true)] {
        let db = helpers::sqlite();
        let extra = format!(
            "intake_per_minute = 0\nlookups_per_minute = 0\nlogin_per_minute = 0\n\
             [auth]\nlockout_after_failures = 0\nhash_concurrency = {slots}\nhash_queue = 1000"
        );
        let node = Node::start(&db, &extra).await;
        let (code, _, _) = node.file(&report_body()).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut flooders = Vec::new();
        for n in 0..if flood { 16 } else { 0 } {
            let (http, url) = (reqwest::Client::new(), node.url("/api/v1/auth/login"));
            let (stop, done) = (stop.clone(), done.clone());
            flooders.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = json!({"username": format!("u{n}"), "password": "wrong password!!"});
                    let _ = http.post(&url).json(&body).send().await;
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = Instant::now();
        let before = done.load(std::sync::atomic::Ordering::Relaxed);
        let mut ms = Vec::new();
        while start.elapsed() < Duration::from_secs(4) {
            let t = Instant::now();
            let r = node
                .http
                .get(node.url(&format!("/api/v1/reports/{code}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let _ = r.bytes().await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let logins = done.load(std::sync::atomic::Ordering::Relaxed) - before;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for f in flooders {
            f.await.unwrap();
        }
        ms.sort_by(f64::total_cmp);
        let at = |percent: usize| ms[(ms.len() - 1) * percent / 100];
        let slots = if slots == 0 {
            "default".to_owned()
        } else {
            slots.to_string()
        };
        println!(
            "| {slots} | {} | {:.1} | {:.1} | {:.0} |",
            if flood { "16 clients" } else { "none" },
            at(50),
            at(90),
            logins as f64 / start.elapsed().as_secs_f64()
        );
    }
}
