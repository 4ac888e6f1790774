//! What the provincial IT team meets when installing the node as a service: plain log lines in
//! journald (no colour codes when stderr is not a terminal), `config check`, and a clear
//! message when there is no configuration.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_lapor-node");

/// A fresh province-31 node made by `lapor-node init` in `dir`; its config file.
fn fresh_node(dir: &Path) -> std::path::PathBuf {
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("config.toml")
}

fn config_check(config: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(BIN);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out: Output = cmd
        .args(["config", "check"])
        .env_remove("LAPOR_CONFIG")
        .env_remove("LAPOR__NODE__ID")
        .env_remove("LAPOR__NODE__PROVINCE")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn text_logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_node(&dir.path().join("n31"));
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("LAPOR__LOG__FORMAT", "text")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .take(50)
    {
        let line = line.unwrap();
        let listening = line.contains("node listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = seen.join("\n");
    assert!(text.contains("node listening"), "{text}");
    assert!(text.contains(" INFO "), "{text}");
    assert!(
        !text.contains("\x1b["),
        "colour codes in piped logs: {text:?}"
    );
}

#[test]
fn config_check_passes_on_a_fresh_node_and_names_each_fault_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("n31");
    let config = fresh_node(&node_dir);
    let (ok, out) = config_check(Some(&config));
    assert!(ok, "{out}");
    for item in [
        "config",
        "data_dir",
        "signing key",
        "database",
        "database file",
    ] {
        assert!(out.contains(&format!("ok    {item}: ")), "{item}: {out}");
    }
    assert!(!out.contains("FAIL"), "{out}");

    // A key and a data directory others can read: each named, with the chmod that fixes it.
    let key = node_dir.join("keys").join("signing.pem");
    chmod(&key, 0o644);
    chmod(&node_dir, 0o755);
    let (ok, out) = config_check(Some(&config));
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  signing key"), "{out}");
    assert!(
        out.contains(&format!("chmod 600 {}", key.display())),
        "{out}"
    );
    assert!(out.contains("FAIL  data_dir"), "{out}");
    assert!(
        out.contains(&format!("chmod 700 {}", node_dir.display())),
        "{out}"
    );
    assert!(out.contains("2 of "), "{out}");
    chmod(&key, 0o600);
    chmod(&node_dir, 0o700);

    // The key gone while the database stays: not a first start.
    std::fs::rename(&key, node_dir.join("keys").join("moved.pem")).unwrap();
    let (ok, out) = config_check(Some(&config));
    assert!(!ok && out.contains("restore the key file"), "{out}");
}

#[test]
fn config_check_of_a_new_node_accepts_what_the_first_start_creates() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let data = dir.path().join("not-yet").join("data");
    std::fs::write(
        &config,
        format!(
            "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let (ok, out) = config_check(Some(&config));
    assert!(ok, "{out}");
    assert!(
        out.contains("absent; created (mode 0700) on first start"),
        "{out}"
    );
    assert!(out.contains("absent; created on first start"), "{out}");
    assert!(!data.exists(), "config check created {}", data.display());
}

#[test]
fn config_check_reads_the_federation_files() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("n31");
    let config = fresh_node(&node_dir);
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ca = dir.path().join("ca");
    let tls = dir.path().join("tls");
    let wrong = dir.path().join("wrong");
    run(&["certs", "ca", "--out", ca.to_str().unwrap()]);
    for (out, id) in [(&tls, "prov-31.lapor.test"), (&wrong, "prov-53.lapor.test")] {
        run(&[
            "certs",
            "issue",
            "--ca",
            ca.to_str().unwrap(),
            "--node-id",
            id,
            "--out",
            out.to_str().unwrap(),
        ]);
    }
    let base = std::fs::read_to_string(&config).unwrap();
    let with_tls = |tls: &Path| {
        let section = format!(
            "\n[federation]\nlisten = \"127.0.0.1:0\"\nca_file = {ca:?}\ncert_file = {cert:?}\n\
             key_file = {key:?}\n\n[[federation.peers]]\nid = \"hub.lapor.test\"\n\
             url = \"https://hub.lapor.test:8443\"\nrole = \"hub\"\nprovince = \"31\"\n",
            ca = tls.join("ca.pem").display().to_string(),
            cert = tls.join("node.pem").display().to_string(),
            key = tls.join("node.key").display().to_string(),
        );
        std::fs::write(&config, format!("{base}{section}")).unwrap();
    };
    with_tls(&tls);
    let (ok, out) = config_check(Some(&config));
    assert!(ok, "{out}");
    for item in [
        "federation CA",
        "federation certificate",
        "federation key",
        "federation TLS",
        "peer hub.lapor.test",
    ] {
        assert!(out.contains(&format!("ok    {item}: ")), "{item}: {out}");
    }

    with_tls(&wrong);
    let (ok, out) = config_check(Some(&config));
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  federation certificate")
            && out.contains("names prov-53.lapor.test but node.id is prov-31.lapor.test"),
        "{out}"
    );

    chmod(&tls.join("node.key"), 0o640);
    with_tls(&tls);
    let (ok, out) = config_check(Some(&config));
    assert!(!ok && out.contains("FAIL  federation key"), "{out}");
}

#[test]
fn no_configuration_says_what_to_give() {
    let (ok, out) = config_check(None);
    assert!(!ok, "{out}");
    assert!(
        out.contains("no configuration: give --config FILE")
            && out.contains("LAPOR__NODE__ID")
            && out.contains("missing field `node`"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = config_check(Some(&dir.path().join("absent.toml")));
    assert!(!ok && out.contains("absent.toml does not exist"), "{out}");
    let (ok, out) = config_check(Some(dir.path()));
    assert!(!ok && out.contains("is not a file"), "{out}");
    let partial = dir.path().join("partial.toml");
    std::fs::write(&partial, "[http]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
    let (ok, out) = config_check(Some(&partial));
    assert!(!ok && out.contains("has no [node] section"), "{out}");
    let err = lapor_node::config::Settings::from_toml("")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no [node] section"), "{err}");
}
