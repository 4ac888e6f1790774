//! Nodes run as child processes of the built binary, set up as README and
//! `certs/README.md` say: `init`, a CSR signed at the federation CA, a `[federation]` section.
//! Shared by the operator's walk and the crash tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use lapor_node::config::Settings;
use lapor_node::db::schema::{events, tickets};
use lapor_node::domain::{Actor, Timestamp};

use crate::bin::{lapor, ok, serve_with};

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node the walk runs: its config and, while serving, its process and API base URL.
pub(crate) struct Node {
    pub(crate) config: PathBuf,
    pub(crate) fed_port: u16,
    pub(crate) child: Option<Child>,
    pub(crate) api: String,
}

impl Node {
    pub(crate) fn cfg(&self) -> &str {
        s(&self.config)
    }

    /// `lapor-node --config CONFIG ARGS…`, succeeding.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let mut all = vec!["--config", self.cfg()];
        all.extend_from_slice(args);
        ok(&all)
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--config", self.cfg()];
        all.extend_from_slice(args);
        lapor(&all)
    }

    /// `serve`, until the node says it listens.
    pub(crate) fn serve(&mut self) {
        self.serve_with(&[]);
    }

    /// `serve` with more environment variables.
    pub(crate) fn serve_with(&mut self, env: &[(&str, &str)]) {
        let (child, port) = serve_with(&self.config, env);
        self.api = format!("http://127.0.0.1:{port}");
        self.child = Some(child);
    }

    /// Stops the node as systemd does (SIGTERM), waiting for it to exit.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let term = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            assert!(term.success());
            let t = Instant::now();
            while c.try_wait().unwrap().is_none() {
                assert!(t.elapsed() < Duration::from_secs(30), "did not stop");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// README, Create and run a node; Joining the federation step 1 (key and CSR on the node,
/// signed at the CA) and step 2 (the `[federation]` section).
pub(crate) fn make_node(walk: &Path, id: &str, province: &str, role: &str) -> Node {
    let dir = walk.join(id);
    let said = ok(&[
        "init",
        "--node-id",
        id,
        "--province",
        province,
        "--role",
        role,
        "--dir",
        s(&dir),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(said.contains("signing key: ed25519:"), "{said}");
    let tls = dir.join("tls");
    ok(&["certs", "csr", "--node-id", id, "--out", s(&tls)]);
    let csr = tls.join("node.csr");
    ok(&[
        "certs",
        "issue",
        "--ca",
        s(&walk.join("ca")),
        "--csr",
        s(&csr),
        "--node-id",
        id,
        "--out",
        s(&tls),
    ]);
    Node {
        config: dir.join("config.toml"),
        fed_port: free_port(),
        child: None,
        api: String::new(),
    }
}

pub(crate) fn federate(n: &Node, peer_id: &str, peer: &Node, peer_role: &str, peer_province: &str) {
    let tls = n.config.parent().unwrap().join("tls");
    let q = |p: PathBuf| toml::Value::String(s(&p).to_owned()).to_string();
    let section = format!(
        "\n[federation]\nlisten = \"127.0.0.1:{port}\"\nca_file = {ca}\ncert_file = {cert}\nkey_file = {key}\n\
         backoff_base_ms = 200\nbackoff_cap_ms = 2000\npull_interval_secs = 2\n\n\
         [[federation.peers]]\nid = \"{peer_id}\"\nurl = \"https://{peer_id}:{pport}\"\nrole = \"{peer_role}\"\n\
         province = \"{peer_province}\"\naddress = \"127.0.0.1:{pport}\"\n",
        port = n.fed_port,
        ca = q(tls.join("ca.pem")),
        cert = q(tls.join("node.pem")),
        key = q(tls.join("node.key")),
        pport = peer.fed_port,
    );
    let mut text = std::fs::read_to_string(&n.config).unwrap();
    text.push_str(&section);
    std::fs::write(&n.config, text).unwrap();
}

pub(crate) fn password(said: &str) -> String {
    said.lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password in {said}"))
        .to_owned()
}

/// Waits until `check` holds for `n`'s `lapor-node peers` output (at most 60 s).
pub(crate) fn wait_peers(n: &Node, what: &str, check: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let said = n.ok(&["peers"]);
        if check(&said) {
            return said;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{what}: {said}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The row of `peer` in a `peers` table: (outbox, refused, quarantined).
pub(crate) fn figures(said: &str, peer: &str) -> (i64, i64, i64) {
    let row = said
        .lines()
        .find(|l| l.starts_with(peer))
        .unwrap_or_else(|| panic!("{peer} not in {said}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let n = |i: usize| cols[cols.len() - i].parse::<i64>().unwrap();
    (n(4), n(2), n(1))
}

pub(crate) fn settings(n: &Node) -> Settings {
    Settings::load(Some(&n.config)).unwrap()
}

/// Files `count` reports at a stopped node through its own intake (as its API would, without
/// HTTP), at `at`, many at a time so that they are committed in large groups.
pub(crate) fn file_backlog(n: &Node, count: usize, at: Timestamp) {
    let settings = settings(n);
    let db = lapor_node::app::open_database(&settings).unwrap();
    let key =
        lapor_node::event_log::keys::load_or_create(&db, settings.node_id(), &settings.key_path())
            .unwrap();
    let t = lapor_node::tickets::Tickets::new(db, &settings, key).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let citizen = Actor::citizen();
    rt.block_on(async {
        let mut filed = 0;
        while filed < count {
            let chunk = (count - filed).min(500);
            let reports: Vec<_> = (filed..filed + chunk)
                .map(|i| {
                    let mut r = crate::store::report();
                    r.title = format!("Laporan tertunda {i}");
                    r.region = lapor_node::domain::RegionCode::parse("5371").unwrap();
                    r
                })
                .collect();
            let all = reports.iter().map(|r| t.submit_async(r, &citizen, at));
            for r in futures_util::future::join_all(all).await {
                r.unwrap();
            }
            filed += chunk;
        }
    });
}

/// What a stopped node holds: each ticket's folded state, and the events written by `origin`.
pub(crate) fn holdings(n: &Node, origin: &str) -> (BTreeMap<String, String>, i64) {
    let db = lapor_node::app::open_database(&settings(n)).unwrap();
    let mut conn = db.read().unwrap();
    let states: Vec<(String, String)> = tickets::table
        .select((tickets::id, tickets::state))
        .load(&mut *conn)
        .unwrap();
    let count: i64 = events::table
        .filter(events::origin.eq(origin))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    (states.into_iter().collect(), count)
}

/// Waits until `sender`'s outbox for `peer` is empty (nothing refused on the way), at most
/// `limit`; returns how long after the wait began the first event left (the depth fell below
/// what it was at the start).
pub(crate) fn wait_delivered(sender: &Node, peer: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut initial = None;
    let mut first = None;
    loop {
        let said = sender.ok(&["peers"]);
        let (outbox, refused, _) = figures(&said, peer);
        assert_eq!(refused, 0, "{said}");
        let initial = *initial.get_or_insert(outbox);
        if first.is_none() && outbox < initial {
            first = Some(start.elapsed());
        }
        if outbox == 0 {
            return first.unwrap_or_default();
        }
        assert!(
            start.elapsed() < limit,
            "not delivered after {limit:?}: {said}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Once both nodes are stopped: `receiver` holds every event `origin` wrote (none lost, none
/// twice) and both derive the same state for every ticket; returns the tickets compared.
pub(crate) fn assert_converged(origin: &Node, receiver: &Node, origin_id: &str) -> usize {
    let (here, written) = holdings(origin, origin_id);
    let (there, received) = holdings(receiver, origin_id);
    assert_eq!(
        received, written,
        "events of {origin_id} held by the receiver"
    );
    assert_eq!(there.len(), here.len(), "tickets held by the receiver");
    let differ: Vec<&String> = here
        .iter()
        .filter(|(id, state)| there.get(*id) != Some(state))
        .map(|(id, _)| id)
        .take(5)
        .collect();
    assert!(differ.is_empty(), "tickets whose state differs: {differ:?}");
    here.len()
}
