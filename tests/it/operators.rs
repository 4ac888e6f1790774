//! For the provincial IT team: keys that cannot be mishandled (a running node's key is not
//! rotated under it; no command but `init` and a new node's first `serve` makes a key), backup
//! and restore, certificate signing requests, and quarantine handling.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_lapor-node");

/// `lapor-node init` of a province-31 node into `dir`; returns its config path.
fn init(dir: &Path) -> PathBuf {
    let out = Command::new(BIN)
        .args([
            "init",
            "--node-id",
            "prov-31.lapor.test",
            "--province",
            "31",
        ])
        .args(["--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    dir.join("config.toml")
}

/// Runs `lapor-node --config CONFIG ARGS…`.
fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Standard output and error together.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `serve` until its "node listening" line; returns the child (its log drained).
fn serve(config: &Path) -> Child {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("LAPOR__LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut up = false;
    for line in lines.by_ref().take(50) {
        if line.unwrap().contains("node listening") {
            up = true;
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    assert!(up, "serve did not start");
    child
}

#[test]
fn keys_rotate_is_refused_while_the_node_runs_and_serve_runs_once_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(&dir.path().join("n31"));
    let mut node = serve(&config);
    let rotate = run(&config, &["keys", "rotate"]);
    let second = run(&config, &["serve"]);
    let list = run(&config, &["keys", "list"]);
    let pid = node.id();
    node.kill().unwrap();
    node.wait().unwrap();
    assert!(!rotate.status.success(), "{}", text(&rotate));
    assert!(
        text(&rotate).contains(&format!("the node is running (pid {pid}); stop it first")),
        "{}",
        text(&rotate)
    );
    assert!(!second.status.success());
    assert!(
        text(&second).contains("the node is running"),
        "{}",
        text(&second)
    );
    assert!(list.status.success(), "{}", text(&list));
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 1);
    // Stopped: the rotation goes through.
    let rotate = run(&config, &["keys", "rotate"]);
    assert!(rotate.status.success(), "{}", text(&rotate));
    assert!(text(&rotate).contains("rotated:"));
}

#[test]
fn no_command_but_init_creates_a_signing_key_and_a_restored_node_without_one_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("n31");
    let config = init(&node_dir);
    let keys = node_dir.join("keys");
    std::fs::remove_dir_all(&keys).unwrap();
    for args in [
        &["keys", "list"][..],
        &["keys", "rotate"],
        &["erase", "31-K7QX-9F2M"],
    ] {
        let out = run(&config, args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("signing key file") && text(&out).contains("missing"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!keys.exists(), "{args:?} created a key");
    }
    // The database holds this node's public key: serve refuses instead of making a new one.
    let out = run(&config, &["serve"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("restored or mis-copied node"),
        "{}",
        text(&out)
    );
    assert!(!keys.exists());
}
