//! For the provincial IT team: keys that cannot be mishandled (a running node's key is not
//! rotated under it; no command but `init` and a new node's first `serve` makes a key), backup
//! and restore, certificate signing requests, and quarantine handling.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use crate::bin::{BIN, text};

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

/// `serve` until its "node listening" line; returns the child (its log drained).
fn serve(config: &Path) -> Child {
    crate::bin::serve(config).0
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

/// Files `n` reports on the node of `config` (stopped) through the library.
fn file_reports(config: &Path, n: usize) {
    let settings = lapor_node::config::Settings::load(Some(config)).unwrap();
    let db = lapor_node::app::open_database(&settings).unwrap();
    let key =
        lapor_node::event_log::keys::load(&db, settings.node_id(), &settings.key_path()).unwrap();
    let tickets = lapor_node::tickets::Tickets::new(db, &settings, key).unwrap();
    let now = lapor_node::domain::Timestamp::now();
    for _ in 0..n {
        tickets
            .submit(
                &crate::api_report(),
                &lapor_node::domain::Actor::citizen(),
                now,
            )
            .unwrap();
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn backup_of_a_running_node_restores_into_a_fresh_directory_that_audits_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(&dir.path().join("n31"));
    file_reports(&config, 5);
    let backup = dir.path().join("backups").join("b1");
    // Online: the node keeps serving while the snapshot is taken.
    let mut node = serve(&config);
    let out = run(&config, &["backup", "--out", backup.to_str().unwrap()]);
    node.kill().unwrap();
    node.wait().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&backup), 0o700);
    for f in [
        "lapor.sqlite",
        "keys/signing.pem",
        "config.toml",
        "MANIFEST.json",
    ] {
        assert_eq!(mode(&backup.join(f)), 0o600, "{f}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["node"], "prov-31.lapor.test");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 3, "{manifest}");
    // A second backup into the same directory is refused.
    let again = run(&config, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again).contains("not empty"));

    // A damaged copy is refused, naming the file.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for f in ["lapor.sqlite", "config.toml", "MANIFEST.json"] {
        std::fs::copy(backup.join(f), damaged.join(f)).unwrap();
    }
    std::fs::create_dir(damaged.join("keys")).unwrap();
    let mut pem = std::fs::read(backup.join("keys/signing.pem")).unwrap();
    pem[40] ^= 1;
    std::fs::write(damaged.join("keys/signing.pem"), pem).unwrap();
    let restore = |from: &Path, to: &Path| {
        Command::new(BIN)
            .args(["restore", "--from"])
            .arg(from)
            .arg("--dir")
            .arg(to)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let bad = restore(&damaged, &dir.path().join("r-bad"));
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("keys/signing.pem does not match the manifest"),
        "{}",
        text(&bad)
    );
    // A non-empty target is refused.
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("x"), "x").unwrap();
    assert!(text(&restore(&backup, &busy)).contains("not empty"));

    let fresh = dir.path().join("elsewhere").join("n31");
    let out = restore(&backup, &fresh);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("audit: 5 event(s), 5 verified, 5 ticket(s), 0 fault(s)"),
        "{said}"
    );
    assert!(
        said.contains("node.data_dir") && said.contains("audit verify"),
        "{said}"
    );
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("keys/signing.pem")), 0o600);
    assert_eq!(mode(&fresh.join("lapor.sqlite")), 0o600);
    let restored = fresh.join("config.toml");
    let audit = run(&restored, &["audit", "verify"]);
    assert!(audit.status.success(), "{}", text(&audit));
    assert!(text(&audit).contains("5 event(s) from 1 origin(s), 5 verified"));
    // The restored node keeps its key (no new one) and serves.
    let keys = run(&restored, &["keys", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&keys.stdout),
        String::from_utf8_lossy(&run(&config, &["keys", "list"]).stdout)
    );
    let mut node = serve(&restored);
    node.kill().unwrap();
    node.wait().unwrap();
}

#[test]
fn backup_of_a_postgresql_node_leaves_the_database_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(&dir.path().join("n31"));
    let backup = dir.path().join("b");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["backup", "--out"])
        .arg(&backup)
        .env(
            "LAPOR__DATABASE__URL",
            "postgres://lapor@127.0.0.1:5432/lapor",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("pg_dump -Fc"), "{}", text(&out));
    assert!(!backup.join("lapor.sqlite").exists());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["database"], "postgres");
    let out = Command::new(BIN)
        .args(["restore", "--from"])
        .arg(&backup)
        .arg("--dir")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("pg_restore"), "{}", text(&out));
    assert!(dir.path().join("r/keys/signing.pem").exists());
}

/// Runs `lapor-node ARGS…` without a config.
fn bare(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// A full TLS handshake in memory: `client` against `server`, named `name`.
fn handshake(
    server: rustls::ServerConfig,
    client: rustls::ClientConfig,
    name: &str,
) -> Result<rustls::ServerConnection, rustls::Error> {
    let mut s = rustls::ServerConnection::new(std::sync::Arc::new(server))?;
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut c = rustls::ClientConnection::new(std::sync::Arc::new(client), name)?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf).unwrap();
        let mut r = &buf[..];
        while !r.is_empty() {
            s.read_tls(&mut r).unwrap();
        }
        s.process_new_packets()?;
        let mut buf = Vec::new();
        s.write_tls(&mut buf).unwrap();
        let mut r = &buf[..];
        while !r.is_empty() {
            c.read_tls(&mut r).unwrap();
        }
        c.process_new_packets()?;
        if !s.is_handshaking() && !c.is_handshaking() {
            return Ok(s);
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn a_certificate_issued_for_a_nodes_signing_request_completes_mtls_with_a_peer_of_the_ca() {
    use rustls::pki_types::pem::PemObject as _;
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    assert!(bare(&["certs", "ca", "--out", &p("ca")]).status.success());
    // On the node: key and request; the key stays there.
    let out = bare(&[
        "certs",
        "csr",
        "--node-id",
        "prov-53.lapor.test",
        "--out",
        &p("n53"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&dir.path().join("n53/node.key")), 0o600);
    let csr = std::fs::read_to_string(dir.path().join("n53/node.csr")).unwrap();
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    // At the CA: only the request travels; a request for another node id is refused.
    std::fs::create_dir(dir.path().join("inbox")).unwrap();
    std::fs::copy(
        dir.path().join("n53/node.csr"),
        dir.path().join("inbox/node.csr"),
    )
    .unwrap();
    let wrong = bare(&[
        "certs",
        "issue",
        "--ca",
        &p("ca"),
        "--csr",
        &p("inbox/node.csr"),
        "--node-id",
        "prov-31.lapor.test",
        "--out",
        &p("signed"),
    ]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("requests prov-53.lapor.test"),
        "{}",
        text(&wrong)
    );
    let out = bare(&[
        "certs",
        "issue",
        "--ca",
        &p("ca"),
        "--csr",
        &p("inbox/node.csr"),
        "--out",
        &p("signed"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !dir.path().join("signed/node.key").exists(),
        "the CA made no key"
    );
    for f in ["node.pem", "ca.pem"] {
        std::fs::copy(
            dir.path().join("signed").join(f),
            dir.path().join("n53").join(f),
        )
        .unwrap();
    }
    let pem = std::fs::read(dir.path().join("n53/node.pem")).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        lapor_node::tls::identity::dns_san(&cert).unwrap(),
        "prov-53.lapor.test"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);

    // A peer issued by the same CA (development path) connects to it over mTLS.
    let out = bare(&[
        "certs",
        "issue",
        "--ca",
        &p("ca"),
        "--node-id",
        "prov-31.lapor.test",
        "--out",
        &p("n31"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let files = |d: &str| lapor_node::tls::config::TlsFiles {
        ca: dir.path().join(d).join("ca.pem"),
        cert: dir.path().join(d).join("node.pem"),
        key: dir.path().join(d).join("node.key"),
    };
    let server = lapor_node::tls::config::server_config(&files("n53")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(dir.path().join("ca/ca.pem")).unwrap()
    {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> =
        rustls::pki_types::CertificateDer::pem_file_iter(dir.path().join("n31/node.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_file(dir.path().join("n31/node.key")).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let s = handshake(server, client, "prov-53.lapor.test").unwrap();
    let peer = s.peer_certificates().unwrap()[0].clone();
    let (_, peer) = x509_parser::parse_x509_certificate(&peer).unwrap();
    assert_eq!(
        lapor_node::tls::identity::dns_san(&peer).unwrap(),
        "prov-31.lapor.test"
    );
}
