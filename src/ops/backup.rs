//! `lapor-node backup` and `lapor-node restore`: everything a node needs, in one directory.
//!
//! ```text
//!  backup --out DIR            DIR (0700, every file 0600)
//!    database ── VACUUM INTO ──► lapor.sqlite        (SQLite; online, one consistent snapshot)
//!    signing key + retired ───► keys/*.pem
//!    federation CA/cert/key ──► tls/{ca.pem,node.pem,node.key}
//!    config file ─────────────► config.toml
//!    reference files ─────────► reference/{provinces,agencies}.csv
//!                               MANIFEST.json: node id, time, each file's sha256, size, origin
//!
//!  restore --from DIR --dir NEW   (NEW must be empty)
//!    verify MANIFEST ─► copy files (0600, dirs 0700) ─► rewrite the config's paths that
//!    pointed at the old places ─► RESTORED marker (the node takes its own events back from
//!    the hub before it writes, `event_log::hold`) ─► audit the restored log ─► print the
//!    next steps
//! ```
//!
//! PostgreSQL databases are not copied: `pg_dump -Fc` / `pg_restore` do that (README, Backup);
//! the backup then holds the rest.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::config::{DatabaseUrl, Settings};

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST.json";
/// The database snapshot's name, in a backup and in a restored node's directory.
pub const DATABASE: &str = "lapor.sqlite";

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path inside the backup (and inside a restored node's directory).
    pub path: String,
    /// What it is: `database`, `signing_key`, `tls_ca`, `tls_cert`, `tls_key`, `config`,
    /// `provinces`, `agencies`.
    pub role: String,
    /// Where it came from on the backed-up node.
    pub original: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// `MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub format: u32,
    /// The node's id.
    pub node: String,
    /// When the backup was taken (RFC 3339, UTC).
    pub created: String,
    /// lapor-node version that wrote it.
    pub version: String,
    /// `sqlite` (included as `lapor.sqlite`) or `postgres` / `none` (not included).
    pub database: String,
    /// The files.
    pub files: Vec<Entry>,
}

/// Creates `dir` with mode 0700, refusing one that holds anything.
fn empty_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!("{} is not empty; choose a new directory", dir.display());
        }
    } else {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot chmod 700 {}", dir.display()))
}

/// Creates the parent directories of `path` (0700).
fn parent_dirs(path: &Path) -> anyhow::Result<()> {
    if let Some(p) = path.parent() {
        crate::crypto::keys::private_dir(p)
            .with_context(|| format!("cannot create {}", p.display()))?;
    }
    Ok(())
}

/// A new, empty file with mode 0600.
fn new_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    parent_dirs(path)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Copies `from` to the new file `to` (0600).
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut f = new_private_file(to)?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", to.display()))
}

/// SHA-256 and size of a file.
fn digest(path: &Path) -> anyhow::Result<(String, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    Ok((crate::crypto::to_hex(&sha2::Sha256::digest(&bytes)), len))
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// What `backup` did.
#[derive(Debug, Clone)]
pub struct BackupDone {
    /// The manifest written.
    pub manifest: Manifest,
    /// Notes for the operator (what was left out and how to back it up).
    pub notes: Vec<String>,
}

/// Backs up the node of `settings` (whose config file is `config`, when there is one) into the
/// new directory `out`, online: the SQLite database with `VACUUM INTO` (one consistent
/// snapshot while the node keeps running), unless `no_database`.
pub fn backup(
    settings: &Settings,
    config: Option<&Path>,
    out: &Path,
    no_database: bool,
) -> anyhow::Result<BackupDone> {
    empty_private_dir(out)?;
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let mut add = |role: &str, path: String, original: &Path| -> anyhow::Result<()> {
        let (sha256, bytes) = digest(&out.join(&path))?;
        files.push(Entry {
            path,
            role: role.to_owned(),
            original: absolute(original),
            sha256,
            bytes,
        });
        Ok(())
    };
    let database = match (&settings.database, no_database) {
        (DatabaseUrl::Sqlite(db_path), false) => {
            let target = out.join(DATABASE);
            drop(new_private_file(&target)?);
            let db = crate::db::Db::open(&settings.database, 1)?;
            let mut conn = db.read()?;
            diesel::RunQueryDsl::execute(
                diesel::sql_query("VACUUM INTO $1")
                    .bind::<diesel::sql_types::Text, _>(target.display().to_string()),
                &mut conn,
            )
            .context("VACUUM INTO (the database snapshot) failed")?;
            drop(conn);
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))?;
            add("database", DATABASE.into(), db_path)?;
            "sqlite"
        }
        (DatabaseUrl::Sqlite(_), true) => {
            notes.push("the database was left out (--no-database)".into());
            "none"
        }
        (DatabaseUrl::Postgres(_), _) => {
            notes.push(format!(
                "the database ({}) is PostgreSQL and is not in this directory: back it up with \
                 `pg_dump -Fc -f {}/lapor.dump DBNAME` (restore with pg_restore)",
                settings.database.describe(),
                out.display()
            ));
            "postgres"
        }
    };
    // The signing key and the retired ones beside it (old events' keys stay on record).
    let key = settings.key_path();
    if !key.exists() {
        bail!("the signing key file {} is missing", key.display());
    }
    let key_dir = key.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut keys = vec![key.clone()];
    if let Ok(entries) = std::fs::read_dir(&key_dir) {
        let mut retired: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".retired.pem"))
            .collect();
        retired.sort();
        keys.extend(retired);
    }
    for k in &keys {
        let name = k
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let inside = if k == &key {
            "keys/signing.pem".to_owned()
        } else {
            format!("keys/{name}")
        };
        copy_private(k, &out.join(&inside))?;
        add("signing_key", inside, k)?;
    }
    if let Some(fed) = &settings.raw.federation {
        for (role, from, inside) in [
            ("tls_ca", &fed.ca_file, "tls/ca.pem"),
            ("tls_cert", &fed.cert_file, "tls/node.pem"),
            ("tls_key", &fed.key_file, "tls/node.key"),
        ] {
            copy_private(from, &out.join(inside))?;
            add(role, inside.into(), from)?;
        }
    }
    for (role, from, inside) in [
        (
            "provinces",
            &settings.raw.reference.provinces_file,
            "reference/provinces.csv",
        ),
        (
            "agencies",
            &settings.raw.reference.agencies_file,
            "reference/agencies.csv",
        ),
    ] {
        if let Some(from) = from {
            copy_private(from, &out.join(inside))?;
            add(role, inside.into(), from)?;
        }
    }
    match config {
        Some(c) => {
            copy_private(c, &out.join("config.toml"))?;
            add("config", "config.toml".into(), c)?;
        }
        None => notes.push(
            "no configuration file was given (--config): the settings came from the \
             environment only; keep a record of them"
                .into(),
        ),
    }
    let manifest = Manifest {
        format: 1,
        node: settings.node_id().to_string(),
        created: crate::domain::Timestamp::now().to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: database.into(),
        files,
    };
    let mut f = new_private_file(&out.join(MANIFEST))?;
    f.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())
        .and_then(|()| f.sync_all())
        .context("cannot write the manifest")?;
    tracing::info!(node = %manifest.node, files = manifest.files.len(), "backup written");
    Ok(BackupDone { manifest, notes })
}

/// Reads `from`'s manifest and checks every file against it.
pub fn verify(from: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(from.join(MANIFEST))
        .with_context(|| format!("cannot read {}", from.join(MANIFEST).display()))?;
    let m: Manifest = serde_json::from_str(&text).context("the manifest is malformed")?;
    if m.format != 1 {
        bail!("manifest format {} is not supported", m.format);
    }
    for e in &m.files {
        let rel = Path::new(&e.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            bail!("the manifest names a file outside the backup: {}", e.path);
        }
        let (sha, bytes) = digest(&from.join(rel))?;
        if sha != e.sha256 || bytes != e.bytes {
            bail!(
                "{} does not match the manifest (sha256 {sha}, {bytes} bytes; expected {}, {} \
                 bytes): the backup is damaged or was changed",
                e.path,
                e.sha256,
                e.bytes
            );
        }
    }
    Ok(m)
}

/// Sets `section.key` of `doc` to `value` unless it holds it already (noted in `rewritten`).
fn set(
    doc: &mut toml::Table,
    rewritten: &mut Vec<String>,
    (section, key): (&str, &str),
    value: toml::Value,
) {
    let table = doc
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(t) = table.as_table_mut() {
        if t.get(key) != Some(&value) {
            t.insert(key.to_owned(), value);
            rewritten.push(format!("{section}.{key}"));
        }
    }
}

/// What `restore` did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The manifest.
    pub manifest: Manifest,
    /// The restored config file.
    pub config: PathBuf,
    /// Config keys whose paths were rewritten.
    pub rewritten: Vec<String>,
}

/// Restores the backup in `from` into the new, empty directory `dir`: files with private
/// modes, and the config's paths pointed at their new places where they pointed elsewhere.
pub fn restore(from: &Path, dir: &Path) -> anyhow::Result<Restored> {
    let manifest = verify(from)?;
    if !manifest.files.iter().any(|e| e.role == "config") {
        bail!("the backup holds no config file; restore by hand (README, Backup)");
    }
    empty_private_dir(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    for e in &manifest.files {
        copy_private(&from.join(&e.path), &dir.join(&e.path))?;
    }
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config)?;
    let mut doc: toml::Table = text.parse().context("the backed-up config is not TOML")?;
    let mut rewritten = Vec::new();
    let place = |inside: &str| toml::Value::String(dir.join(inside).display().to_string());
    set(
        &mut doc,
        &mut rewritten,
        ("node", "data_dir"),
        toml::Value::String(dir.display().to_string()),
    );
    // The key goes to its default place under the new data_dir.
    let moved_key = doc
        .get_mut("node")
        .and_then(toml::Value::as_table_mut)
        .and_then(|n| n.remove("key_file"))
        .is_some();
    if moved_key {
        rewritten.push("node.key_file (removed: the default place)".into());
    }
    // An SQLite URL spelled out is pointed at the copy; left out, it follows data_dir.
    let url_set = doc
        .get("database")
        .and_then(|d| d.get("url"))
        .and_then(toml::Value::as_str)
        .is_some_and(|u| u.starts_with("sqlite:"));
    if manifest.database == "sqlite" && url_set {
        set(
            &mut doc,
            &mut rewritten,
            ("database", "url"),
            toml::Value::String(format!("sqlite://{}", dir.join(DATABASE).display())),
        );
    }
    for e in &manifest.files {
        let key = match e.role.as_str() {
            "tls_ca" => ("federation", "ca_file"),
            "tls_cert" => ("federation", "cert_file"),
            "tls_key" => ("federation", "key_file"),
            "provinces" => ("reference", "provinces_file"),
            "agencies" => ("reference", "agencies_file"),
            _ => continue,
        };
        set(&mut doc, &mut rewritten, key, place(&e.path));
    }
    if !rewritten.is_empty() {
        let header = format!(
            "# Restored by `lapor-node restore` from {} ({} taken {}); rewritten: {}.\n\
             # Comments of the original are in the backup's config.toml.\n\n",
            from.display(),
            manifest.node,
            manifest.created,
            rewritten.join(", ")
        );
        std::fs::write(&config, header + &toml::to_string(&doc)?)?;
    }
    // Settings::load checks the result, as `serve` would.
    Settings::load(Some(&config)).context("the restored config does not load")?;
    // The restored node writes nothing of its own until it has fetched back the events it
    // wrote after this backup (`event_log::hold`).
    crate::event_log::hold::mark(&dir, &from.display().to_string())
        .context("cannot write the restore marker")?;
    Ok(Restored {
        manifest,
        config,
        rewritten,
    })
}

/// `lapor-node backup`: the lines to print.
pub fn run_backup(
    settings: &Settings,
    config: Option<&Path>,
    out: &Path,
    no_database: bool,
) -> anyhow::Result<Vec<String>> {
    let done = backup(settings, config, out, no_database)?;
    let mut lines = vec![format!(
        "backup of {} in {} ({} file(s), database: {}); MANIFEST.json lists their SHA-256",
        done.manifest.node,
        out.display(),
        done.manifest.files.len(),
        done.manifest.database
    )];
    lines.extend(done.manifest.files.iter().map(|e| {
        format!(
            "  {:<28} {:>10} bytes  from {}",
            e.path, e.bytes, e.original
        )
    }));
    lines.extend(done.notes.iter().map(|n| format!("note: {n}")));
    lines.push(
        "keep it secret and offline: it holds the signing key, the TLS key and the \
         tracking-code key"
            .into(),
    );
    Ok(lines)
}

/// `lapor-node restore`: restores, audits the restored log (SQLite) and returns the lines to
/// print and the number of faults the audit found.
pub fn run_restore(from: &Path, dir: &Path) -> anyhow::Result<(Vec<String>, usize)> {
    let r = restore(from, dir)?;
    let mut lines = vec![format!(
        "restored {} (backup of {}) into {}",
        r.manifest.node,
        r.manifest.created,
        dir.display()
    )];
    if !r.rewritten.is_empty() {
        lines.push(format!(
            "  config paths rewritten: {}",
            r.rewritten.join(", ")
        ));
    }
    let config = r.config.display().to_string();
    let mut faults = 0;
    if r.manifest.database == "sqlite" {
        let settings = Settings::load(Some(&r.config))?;
        let db = crate::app::open_database(&settings)?;
        let mut conn = db.read()?;
        let scope = crate::event_log::audit::Scope {
            node: settings.node_id().clone(),
            holds_all: settings.raw.node.role == crate::config::NodeRole::Hub,
        };
        let report = crate::event_log::audit::run(&mut conn, &scope)?;
        let tickets: i64 = diesel::RunQueryDsl::get_result(
            diesel::QueryDsl::count(crate::db::schema::tickets::table),
            &mut conn,
        )?;
        lines.push(format!(
            "  audit: {} event(s), {} verified, {} ticket(s), {} fault(s)",
            report.events,
            report.verified,
            tickets,
            report.faults.len()
        ));
        for f in &report.faults {
            lines.push(format!("  FAULT event {}: {}", f.event, f.reason));
        }
        faults = report.faults.len();
    } else {
        lines.push(
            "  the database is not in the backup: restore it first (pg_restore -d DBNAME \
             lapor.dump) and check database.url in the config"
                .into(),
        );
    }
    lines.push("next steps:".into());
    lines.push(format!("  lapor-node --config {config} audit verify"));
    lines.push(
        "  if the node is federated and the backup is older than its last event, its peers \
         and the hub hold events it no longer has: stop here and ask the hub operator before \
         it writes anything new (a new event at an old seq would fork its chain)"
            .into(),
    );
    lines.push(format!("  lapor-node --config {config} serve"));
    Ok((lines, faults))
}
