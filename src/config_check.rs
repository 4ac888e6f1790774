//! `lapor-node config check`: what can be checked without starting the node, one line per
//! check (`ok` or `FAIL` with the fix), and a non-zero exit when anything failed. Run it as the
//! node's user (`runuser -u lapor -- lapor-node --config … config check`): permissions are
//! checked as that user sees them.
//!
//! ```text
//!  --config FILE + LAPOR__… ──► Settings::load ──► data_dir ─► signing key ─► database
//!                                   │ (parse, cross-field,        └─► TLS files ─► peers
//!                                   │  reference files)
//!                                   └─ FAIL: nothing else can be checked
//! ```
//!
//! Nothing is created or changed: a directory that does not exist yet is only tested for
//! whether it could be created, the database is not opened (PostgreSQL is not connected).

use std::fmt;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::config::{DatabaseUrl, FederationSettings, Settings};
use crate::crypto::keys::{KeyError, NodeKey};

/// `config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration (file + environment) and the files it names without starting:
    /// data directory, signing key, database file, TLS files, peers. Prints one line per check
    /// and exits non-zero when one fails. Run it as the node's user.
    Check,
    /// Print the documented example configuration (every key, its default and what it does)
    /// of a province node, or of the hub with `--hub`.
    Example {
        /// The hub's example instead of a province's.
        #[arg(long)]
        hub: bool,
    },
}

/// The documented example configurations, built into the binary so that an installed node has
/// them without the source tree.
const PROVINCE_EXAMPLE: &str = include_str!("../config/prov-31.example.toml");
const HUB_EXAMPLE: &str = include_str!("../config/hub.example.toml");

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fine; what was found.
    Ok(String),
    /// Not fine: what is wrong and how to fix it.
    Fail {
        /// What is wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
}

/// One checked item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`config`, `data_dir`, `signing key`, …).
    pub item: String,
    /// How it went.
    pub outcome: Outcome,
}

impl Check {
    fn new(item: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            item: item.into(),
            outcome,
        }
    }

    /// Whether this check failed.
    #[must_use]
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Ok(detail) => write!(f, "ok    {}: {detail}", self.item),
            Outcome::Fail { problem, fix } => {
                write!(f, "FAIL  {}: {problem}\n      fix: {fix}", self.item)
            }
        }
    }
}

fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Outcome {
    Outcome::Fail {
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Runs a `config` subcommand: prints each check; an error when any failed.
pub fn run(config: Option<&Path>, command: &ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check => {
            let checks = check(config);
            for c in &checks {
                say(&c.to_string());
            }
            let failed = checks.iter().filter(|c| c.failed()).count();
            if failed > 0 {
                anyhow::bail!("{failed} of {} checks failed", checks.len());
            }
            say(&format!("all {} checks passed", checks.len()));
            Ok(())
        }
        ConfigCommand::Example { hub } => {
            say(if *hub { HUB_EXAMPLE } else { PROVINCE_EXAMPLE }.trim_end());
            Ok(())
        }
    }
}

#[expect(clippy::print_stdout, reason = "the CLI's output")]
fn say(line: &str) {
    println!("{line}");
}

/// Every check, in order. A configuration that does not load is the only check.
#[must_use]
pub fn check(config: Option<&Path>) -> Vec<Check> {
    let shown = config.map_or_else(
        || "(no file; environment only)".to_owned(),
        |p| p.display().to_string(),
    );
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(e) => {
            let fix = "correct the configuration (every key is documented in \
                       /usr/share/lapor-node/examples/prov-31.example.toml)";
            return vec![Check::new("config", fail(e.to_string(), fix))];
        }
    };
    let node = &settings.raw.node;
    let mut checks = vec![Check::new(
        "config",
        Outcome::Ok(format!(
            "{shown} loads: node {} ({:?}, province {})",
            node.id, node.role, node.province
        )),
    )];
    checks.push(Check::new("data_dir", private_dir(&node.data_dir)));
    let key_path = settings.key_path();
    checks.push(Check::new(
        "signing key",
        signing_key(&key_path, &settings.database),
    ));
    checks.extend(database(&settings.database, &node.data_dir));
    if let Some(f) = &settings.raw.federation {
        checks.extend(federation(f, &settings));
    }
    checks
}

/// A directory the node keeps private data in: present, writable, 0700; or creatable.
fn private_dir(dir: &Path) -> Outcome {
    let shown = dir.display();
    if dir.is_dir() {
        if let Err(e) = tempfile::Builder::new()
            .prefix(".lapor-check")
            .tempdir_in(dir)
        {
            return fail(
                format!("{shown} is not writable by this user: {e}"),
                format!("chown it to the node's user (e.g. chown lapor:lapor {shown})"),
            );
        }
        let mode = std::fs::metadata(dir).map_or(0, |m| m.permissions().mode() & 0o7777);
        if mode & 0o077 != 0 {
            return fail(
                format!("{shown} is open to group or others (mode {mode:04o})"),
                format!("chmod 700 {shown}"),
            );
        }
        return Outcome::Ok(format!("{shown} exists, writable, mode {mode:04o}"));
    }
    if dir.exists() {
        return fail(
            format!("{shown} exists and is not a directory"),
            "point node.data_dir at a directory",
        );
    }
    let Some(parent) = dir.ancestors().skip(1).find(|a| a.is_dir()) else {
        return fail(
            format!("no parent of {shown} exists"),
            "use an absolute path",
        );
    };
    match tempfile::Builder::new()
        .prefix(".lapor-check")
        .tempdir_in(parent)
    {
        Ok(_) => Outcome::Ok(format!(
            "{shown} absent; created (mode 0700) on first start"
        )),
        Err(e) => fail(
            format!(
                "{shown} is absent and cannot be created here ({} is not writable: {e})",
                parent.display()
            ),
            format!("install -d -m 700 -o lapor -g lapor {shown}"),
        ),
    }
}

/// The signing key: loadable (0600, Ed25519 PKCS#8), or absent on a node that never started.
fn signing_key(path: &Path, database: &DatabaseUrl) -> Outcome {
    let shown = path.display();
    if path.exists() {
        return match NodeKey::load(path) {
            Ok(key) => Outcome::Ok(format!("{shown}: key {}, mode 0600", key.id())),
            Err(e) => {
                let fix = match &e {
                    KeyError::Permissions { .. } => format!("chmod 600 {shown}"),
                    KeyError::Read { .. } => {
                        format!("make it readable by the node's user (chown lapor {shown})")
                    }
                    _ => "restore the key file from the backup".to_owned(),
                };
                fail(e.to_string(), fix)
            }
        };
    }
    match database {
        DatabaseUrl::Sqlite(db) if std::fs::metadata(db).is_ok_and(|m| m.len() > 0) => fail(
            format!(
                "{shown} is missing but the database {} exists: the node has run before",
                db.display()
            ),
            "restore the key file from the backup (a new key would not match the published one)",
        ),
        DatabaseUrl::Sqlite(_) => Outcome::Ok(format!("{shown} absent; created on first start")),
        DatabaseUrl::Postgres(_) => Outcome::Ok(format!(
            "{shown} absent; created on first start (if this node has run before, restore it \
             from the backup instead)"
        )),
    }
}

/// The database URL (already parsed by the loader) and, for SQLite, its files' modes.
fn database(db: &DatabaseUrl, data_dir: &Path) -> Vec<Check> {
    let path = match db {
        DatabaseUrl::Postgres(_) => {
            return vec![Check::new(
                "database",
                Outcome::Ok(format!("{} (URL parses; not connected)", db.describe())),
            )];
        }
        DatabaseUrl::Sqlite(path) => path,
    };
    let mut checks = vec![Check::new("database", Outcome::Ok(db.describe()))];
    if let Some(dir) = path
        .parent()
        .filter(|d| *d != data_dir && !d.as_os_str().is_empty())
    {
        checks.push(Check::new("database dir", private_dir(dir)));
    }
    if !path.exists() {
        checks.push(Check::new(
            "database file",
            Outcome::Ok(format!(
                "{} absent; created (mode 0600) on first start",
                path.display()
            )),
        ));
        return checks;
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let outcome = if mode & 0o077 != 0 {
            fail(
                format!(
                    "{} is open to group or others (mode {mode:04o})",
                    file.display()
                ),
                format!("chmod 600 {}", file.display()),
            )
        } else if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
        {
            fail(
                format!("{} cannot be opened for writing: {e}", file.display()),
                format!("chown lapor:lapor {}", file.display()),
            )
        } else {
            Outcome::Ok(format!("{}: mode {mode:04o}", file.display()))
        };
        checks.push(Check::new("database file", outcome));
    }
    checks
}

/// The federation CA, this node's certificate (DNS SAN = node id) and key, and the peers.
fn federation(f: &FederationSettings, settings: &Settings) -> Vec<Check> {
    let me = settings.node_id().as_str();
    let mut checks = vec![
        Check::new(
            "federation CA",
            certificate(&f.ca_file, None).map_or_else(
                |problem| fail(problem, "install the federation CA's ca.pem (from the hub)"),
                Outcome::Ok,
            ),
        ),
        Check::new(
            "federation certificate",
            certificate(&f.cert_file, Some(me)).map_or_else(
                |problem| {
                    fail(
                        problem,
                        format!("ask the federation CA for a certificate of {me} (DNS SAN {me})"),
                    )
                },
                Outcome::Ok,
            ),
        ),
        Check::new("federation key", tls_key(&f.key_file)),
    ];
    if checks.iter().all(|c| !c.failed()) {
        let files = crate::tls::config::TlsFiles {
            ca: f.ca_file.clone(),
            cert: f.cert_file.clone(),
            key: f.key_file.clone(),
        };
        checks.push(Check::new(
            "federation TLS",
            crate::tls::config::server_config(&files).map_or_else(
                |e| fail(e.to_string(), "use the key that belongs to the certificate"),
                |_| Outcome::Ok("the mTLS listener's configuration builds".into()),
            ),
        ));
    }
    // The loader already refused a peer whose url does not name its id, itself, or a twin.
    for p in &f.peers {
        checks.push(Check::new(
            format!("peer {}", p.id),
            Outcome::Ok(format!(
                "{} ({:?}, province {}){}",
                p.url,
                p.role,
                p.province,
                p.address
                    .map(|a| format!(", connects to {a}"))
                    .unwrap_or_default()
            )),
        ));
    }
    checks
}

/// A PEM certificate file: readable, parses, valid now, and (for the node's own) naming
/// `expected` as its DNS SAN.
fn certificate(path: &Path, expected: Option<&str>) -> Result<String, String> {
    let shown = path.display();
    let ders = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: {e}"))?;
    let first = ders
        .first()
        .ok_or_else(|| format!("{shown} holds no certificate"))?;
    let (_, cert) = X509Certificate::from_der(first.as_ref())
        .map_err(|e| format!("{shown}: not an X.509 certificate: {e}"))?;
    let validity = cert.validity();
    if !validity.is_valid() {
        return Err(format!(
            "{shown} is not valid now (valid {} to {})",
            validity.not_before, validity.not_after
        ));
    }
    if let Some(expected) = expected {
        let san = crate::tls::identity::dns_san(&cert);
        if san.as_deref() != Some(expected) {
            return Err(format!(
                "{shown} names {} but node.id is {expected}",
                san.as_deref().unwrap_or("no DNS SAN")
            ));
        }
        return Ok(format!(
            "{shown}: DNS SAN {expected}, valid until {}",
            validity.not_after
        ));
    }
    Ok(format!(
        "{shown}: {}, valid until {}",
        cert.subject(),
        validity.not_after
    ))
}

/// The TLS private key: mode 0600 and a PEM private key.
fn tls_key(path: &Path) -> Outcome {
    let shown = path.display();
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) => {
            return fail(
                format!("cannot read {shown}: {e}"),
                "install node.key beside node.pem",
            );
        }
    };
    if mode & 0o077 != 0 {
        return fail(
            format!("{shown} is open to group or others (mode {mode:04o})"),
            format!("chmod 600 {shown}"),
        );
    }
    match PrivateKeyDer::from_pem_file(path) {
        Ok(_) => Outcome::Ok(format!("{shown}: mode {mode:04o}")),
        Err(e) => fail(
            format!("{shown}: not a PEM private key readable by this user: {e}"),
            format!("chown lapor {shown}, or install the key issued with node.pem"),
        ),
    }
}
