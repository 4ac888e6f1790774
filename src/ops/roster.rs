//! `lapor-node roster …`: the hub operator's roster key and signed rosters, and applying one
//! to a node by hand.
//!
//! - `keygen --out FILE` makes the roster key (kept apart from every event key) and prints
//!   the public key every node pins as `federation.roster_key`;
//! - `sign --key FILE --roster roster.json --out signed.json` checks an unsigned roster
//!   (`federation::roster::check`) and signs it;
//! - `show FILE` prints a signed roster (and whether it verifies with this node's pinned key);
//! - `diff OLD NEW` prints what changes between two rosters (signed or not);
//! - `entry --url URL` prints this node's entry for the hub operator to add;
//! - `apply FILE` judges a signed roster as a received one would be and stores it: a running
//!   node acts on it within `federation.pull_interval_secs`, and serves it to its peers.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::Settings;
use crate::crypto::keys::{NodeKey, public_key_text};
use crate::federation::roster::{self, Roster, SignedRoster};
use crate::federation::roster_store;

/// `roster` subcommands.
#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Make the roster key (Ed25519, PKCS#8 PEM, mode 0600) and print its public key.
    Keygen {
        /// Where to write the private key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check and sign a roster.
    Sign {
        /// The roster key.
        #[arg(long)]
        key: PathBuf,
        /// The roster to sign (JSON: version, issued_at_ms, nodes, revoked).
        #[arg(long)]
        roster: PathBuf,
        /// Where to write the signed roster.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a signed roster.
    Show {
        /// The signed roster.
        file: PathBuf,
    },
    /// Print what changes from one roster to another.
    Diff {
        /// The older roster.
        old: PathBuf,
        /// The newer roster.
        new: PathBuf,
    },
    /// Print this node's roster entry (JSON) for the hub operator: id, role, province, the
    /// given federation URL, signing keys, certificate fingerprint, the agencies it owns.
    Entry {
        /// This node's federation URL as the other members reach it (`https://<id>:<port>`).
        #[arg(long)]
        url: url::Url,
    },
    /// Judge a signed roster and store it in this node's database.
    Apply {
        /// The signed roster.
        file: PathBuf,
    },
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A roster from a file holding it signed or unsigned.
fn roster_of(path: &Path) -> anyhow::Result<Roster> {
    let bytes = read(path)?;
    if let Ok(s) = SignedRoster::parse(&bytes) {
        return Ok(serde_json::from_value(s.roster)?);
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a roster", path.display()))
}

/// Runs a `roster` command; `settings` is needed by `show` (optional) and `apply`. Returns
/// the lines to print.
pub fn run(cmd: &RosterCommand, settings: Option<&Settings>) -> anyhow::Result<Vec<String>> {
    match cmd {
        RosterCommand::Keygen { out } => {
            let key = NodeKey::generate();
            key.save(out)?;
            Ok(vec![
                format!("roster key written to {}", out.display()),
                format!(
                    "pin it on every node: federation.roster_key = \"{}\"",
                    public_key_text(&key.verifying_key())
                ),
            ])
        }
        RosterCommand::Sign { key, roster, out } => {
            let key = NodeKey::load(key)?;
            let r: Roster = serde_json::from_slice(&read(roster)?)
                .with_context(|| format!("{} is not a roster", roster.display()))?;
            roster::check(&r)?;
            let signed = roster::sign(&r, &key)?;
            std::fs::write(out, serde_json::to_vec_pretty(&signed)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            Ok(vec![format!(
                "roster version {} ({} nodes, {} revoked) signed by {} into {}",
                r.version,
                r.nodes.len(),
                r.revoked.len(),
                key.id(),
                out.display()
            )])
        }
        RosterCommand::Show { file } => {
            let signed = SignedRoster::parse(&read(file)?)?;
            let r: Roster = serde_json::from_value(signed.roster.clone())?;
            let pinned = settings
                .and_then(|s| s.raw.federation.as_ref())
                .and_then(|f| f.roster_key.as_deref())
                .and_then(|k| crate::crypto::keys::parse_public_key(k).ok());
            let verdict = match pinned {
                None => "not checked (no federation.roster_key)".to_owned(),
                Some(k) => match signed.open(&k) {
                    Ok(_) => "verifies with federation.roster_key".to_owned(),
                    Err(e) => format!("REFUSED ({}): {e}", e.code()),
                },
            };
            let mut out = vec![
                format!(
                    "version {} issued at {} ms, signed by {}",
                    r.version, r.issued_at_ms, signed.key
                ),
                format!("signature: {verdict}"),
            ];
            for n in &r.nodes {
                out.push(format!(
                    "node {} {:?} province {} {} keys {} agencies {}",
                    n.id,
                    n.role,
                    n.province,
                    n.url,
                    n.keys.len(),
                    n.agencies.len()
                ));
            }
            for c in &r.revoked {
                out.push(format!(
                    "revoked {} ({}) since {} ms: {}",
                    c.certificate, c.node, c.since_ms, c.reason
                ));
            }
            Ok(out)
        }
        RosterCommand::Diff { old, new } => Ok(roster::diff(&roster_of(old)?, &roster_of(new)?)),
        RosterCommand::Entry { url } => {
            let settings = settings.context("roster entry needs the node's configuration")?;
            let fed = settings
                .raw
                .federation
                .as_ref()
                .context("roster entry needs [federation]")?;
            let db = crate::app::open_database(settings)?;
            let me = settings.node_id();
            let mut conn = db.read()?;
            let keys = crate::event_log::keys::own_keys(&mut conn, me)?;
            let agencies = crate::tickets::agencies::list(&mut conn)?
                .into_iter()
                .filter(|a| a.owner_node == me.as_str())
                .map(|a| {
                    serde_json::json!({"code": a.code, "name": a.name, "level": a.level, "region": a.region})
                })
                .collect::<Vec<_>>();
            let entry = serde_json::json!({
                "id": me.as_str(),
                "role": settings.raw.node.role,
                "province": settings.raw.node.province.as_str(),
                "url": url.as_str(),
                "certificate": crate::federation::node::own_certificate(&fed.cert_file),
                "keys": keys.iter().map(|k| serde_json::json!({
                    "id": k.key_id, "public_key": k.public_key,
                    "valid_from_ms": k.valid_from_ms, "valid_until_ms": k.valid_until_ms,
                })).collect::<Vec<_>>(),
                "agencies": agencies,
            });
            Ok(vec![serde_json::to_string_pretty(&entry)?])
        }
        RosterCommand::Apply { file } => {
            let settings = settings.context("roster apply needs the node's configuration")?;
            let fed = settings
                .raw
                .federation
                .as_ref()
                .context("roster apply needs [federation]")?;
            let signed = SignedRoster::parse(&read(file)?)?;
            let db = crate::app::open_database(settings)?;
            let judge = roster_store::Judge {
                key: fed
                    .roster_key
                    .as_deref()
                    .and_then(|k| crate::crypto::keys::parse_public_key(k).ok()),
                me: settings.node_id().clone(),
                own_certificate: crate::federation::node::own_certificate(&fed.cert_file),
            };
            let a = roster_store::accept(
                &db,
                &judge,
                &signed,
                "operator",
                crate::domain::Timestamp::now(),
            )
            .map_err(|e| match e {
                roster_store::AcceptError::Refused(r) => {
                    anyhow::anyhow!("roster refused ({}): {r}", r.code())
                }
                roster_store::AcceptError::Db(d) => d.into(),
            })?;
            let mut out = vec![format!(
                "roster version {} stored; a running node applies it within {} s",
                a.roster.version, fed.pull_interval_secs
            )];
            if let Some(p) = &a.previous {
                out.extend(roster::diff(p, &a.roster));
            }
            Ok(out)
        }
    }
}
