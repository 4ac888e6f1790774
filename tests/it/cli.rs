//! The binary: `init` then `serve` answers `/healthz`; bad configuration fails naming the field.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::bin::BIN;

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `lapor-node init` of a province-31 node into `dir`, with extra arguments.
fn init(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args([
            "init",
            "--node-id",
            "prov-31.lapor.test",
            "--province",
            "31",
        ])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn init_then_serve_answers_health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("n31");
    let out = init(&node_dir, &["--listen", "127.0.0.1:0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(node_dir.join("lapor.sqlite").exists());
    let config = node_dir.join("config.toml");
    // init refuses to overwrite.
    let again = init(&node_dir, &[]);
    assert!(!again.status.success());

    let (mut child, port) = crate::bin::serve(&config);
    let health = http_get(port, "/healthz");
    let ready = http_get(port, "/readyz");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.contains("ready"),
        "{ready}"
    );
}

fn migrate_with(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&path)
        .arg("migrate")
        .current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_fails_at_start_naming_the_field() {
    let base = "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = \"d\"\n";
    let (ok, err) = migrate_with(&format!("{base}colour = \"red\"\n"), &[]);
    assert!(
        !ok && err.contains("colour") && err.contains("node"),
        "{err}"
    );
    let (ok, err) = migrate_with(&base.replace("\"31\"", "\"99\""), &[]);
    assert!(
        !ok && err.contains("node.province") && err.contains("99"),
        "{err}"
    );
    let (ok, err) = migrate_with(&base.replace("\"31\"", "\"3x\""), &[]);
    assert!(!ok && err.contains("node.province"), "{err}");
    let (ok, err) = migrate_with(&base.replace("prov-31.lapor.test", "Prov 31"), &[]);
    assert!(!ok && err.contains("node.id"), "{err}");
    let (ok, err) = migrate_with(base, &[("LAPOR__DATABASE__URL", "mysql://localhost/x")]);
    assert!(!ok && err.contains("database.url"), "{err}");
    let (ok, err) = migrate_with(base, &[("LAPOR__HTTP__LISTEN", "not-an-address")]);
    assert!(!ok && err.to_lowercase().contains("http.listen"), "{err}");
    let (ok, err) = migrate_with(base, &[("LAPOR__HTTP__WORKERS", "1000")]);
    assert!(!ok && err.contains("http.workers"), "{err}");
    let (ok, err) = migrate_with(base, &[("LAPOR__HTTP__WORKERS", "3")]);
    assert!(ok, "{err}");
    // Environment overrides the file: a valid SQLite path works.
    let (ok, err) = migrate_with(base, &[("LAPOR__DATABASE__URL", "sqlite://other.sqlite")]);
    assert!(ok, "{err}");
}

#[test]
fn help_explains_each_command() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "migrate", "rebuild", "init"] {
        assert!(text.contains(cmd), "--help does not mention {cmd}");
    }
}

#[test]
fn example_configurations_are_valid() {
    for (name, text) in [
        (
            "prov-31.example.toml",
            include_str!("../../config/prov-31.example.toml"),
        ),
        (
            "hub.example.toml",
            include_str!("../../config/hub.example.toml"),
        ),
        ("dev.toml", include_str!("../../config/dev.toml")),
    ] {
        let s =
            lapor_node::config::Settings::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.provinces.len(), 38, "{name}");
    }
}

#[test]
fn an_installed_node_has_the_documented_configuration_without_the_source_tree() {
    for (args, file) in [
        (
            &["config", "example"][..],
            include_str!("../../config/prov-31.example.toml"),
        ),
        (
            &["config", "example", "--hub"][..],
            include_str!("../../config/hub.example.toml"),
        ),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let printed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(printed.trim_end(), file.trim_end(), "{args:?}");
        lapor_node::config::Settings::from_toml(&printed).unwrap();
    }
    // The config `init` writes points at that command, not at a file of the source tree.
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("n72");
    assert!(init(&node_dir, &[]).status.success());
    let written = std::fs::read_to_string(node_dir.join("config.toml")).unwrap();
    assert!(written.contains("lapor-node config example"), "{written}");
    assert!(!written.contains("source tree"), "{written}");
}

#[test]
fn audit_verify_passes_on_a_busy_node_and_names_a_tampered_event() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("n31");
    let init = init(&node_dir, &[]);
    assert!(init.status.success());
    assert!(String::from_utf8_lossy(&init.stdout).contains("signing key: ed25519:"));
    let config = node_dir.join("config.toml");
    let settings = lapor_node::config::Settings::load(Some(&config)).unwrap();
    let db = lapor_node::app::open_database(&settings).unwrap();
    let key =
        lapor_node::event_log::keys::load_or_create(&db, settings.node_id(), &settings.key_path())
            .unwrap();
    let tickets = lapor_node::tickets::Tickets::new(db.clone(), &settings, key).unwrap();
    let now = lapor_node::domain::Timestamp::now();
    for _ in 0..20 {
        tickets
            .submit(
                &crate::api_report(),
                &lapor_node::domain::Actor::citizen(),
                now,
            )
            .unwrap();
    }
    let audit = || {
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let ok = audit();
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{out}");
    assert!(
        out.contains("20 event(s) from 1 origin(s), 20 verified"),
        "{out}"
    );

    // Flip one byte of one stored event.
    let mut c = db.read().unwrap();
    let victim = lapor_node::event_log::store::page(&mut c, None, 1)
        .unwrap()
        .remove(0);
    drop(c);
    let (id, raw) = (
        victim.id.clone(),
        victim.raw.replacen("berlubang", "berlubanG", 1),
    );
    db.write(move |c| {
        use diesel::prelude::*;
        use lapor_node::db::schema::events;
        diesel::update(events::table.filter(events::id.eq(id)))
            .set(events::raw.eq(raw))
            .execute(c)
            .map_err(lapor_node::db::DbError::from)
    })
    .unwrap();
    let bad = audit();
    let out = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert!(!bad.status.success(), "{out}");
    assert!(out.contains(&format!("FAULT event {}", victim.id)), "{out}");
}

#[test]
fn peers_pin_on_a_node_without_federation_says_so() {
    let dir = tempfile::tempdir().unwrap();
    assert!(init(dir.path(), &[]).status.success());
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(dir.path().join("config.toml"))
        .args([
            "peers",
            "pin",
            "--peer",
            "prov-53.lapor.test",
            "--key",
            "ed25519:x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not federated"), "{err}");
}
