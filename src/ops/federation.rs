//! Operator commands on federation state: `peers` (list, pin, resend) and `quarantine`
//! (list, retry, clear). Each returns the lines to print.

use std::sync::Arc;

use clap::Subcommand;

use crate::config::Settings;
use crate::db::Db;
use crate::domain::{NodeId, Timestamp};
use crate::federation::inbox::Inbox;
use crate::federation::peers::{self, PeerStatus};
use crate::federation::quarantine;
use crate::metrics::Metrics;

/// `peers` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// Pin a peer's signing key that automatic pinning refused (a key rotation), after
    /// checking the key id with the peer's operators (`lapor-node keys list` on their node).
    /// The key is fetched from the peer over mTLS. Then `quarantine retry --from PEER`.
    Pin {
        /// The peer's node id.
        #[arg(long)]
        peer: String,
        /// The key id, e.g. `ed25519:…`.
        #[arg(long)]
        key: String,
    },
    /// Offer a peer again the events it refused (all, or those refused with `--reason`),
    /// once it can take them (e.g. it pinned this node's new key). The running node sends
    /// them on its next round.
    Resend {
        /// The peer's node id.
        #[arg(long)]
        peer: String,
        /// Only events refused with this reason code, e.g. `unknown_key`.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `quarantine` subcommands.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// The latest refused events with their reasons.
    List,
    /// Judge the quarantined events again (all, or those sent by `--from`), once their cause
    /// is fixed (e.g. after `peers pin`). Stored events leave the quarantine.
    Retry {
        /// Only events sent by this peer.
        #[arg(long)]
        from: Option<String>,
    },
    /// Delete quarantined events once reviewed: those sent by `--from`, with `--reason`, or
    /// `--all`.
    Clear {
        /// Only events sent by this peer.
        #[arg(long)]
        from: Option<String>,
        /// Only events refused with this reason code.
        #[arg(long)]
        reason: Option<String>,
        /// Every quarantined event (required when neither --from nor --reason is given).
        #[arg(long)]
        all: bool,
    },
}

/// The `[federation]` section, or the error that says it is missing.
pub(crate) fn federation(
    settings: &Settings,
) -> anyhow::Result<&crate::config::FederationSettings> {
    settings.raw.federation.as_ref().ok_or_else(|| {
        anyhow::anyhow!("this node is not federated: [federation] is not configured")
    })
}

/// `peer` parsed and checked to be one of this node's peers: the static `[[federation.peers]]`,
/// or the roster's members once a roster is held (as the running node sees them).
pub(crate) fn member(settings: &Settings, db: &Db, peer: &str) -> anyhow::Result<NodeId> {
    federation(settings)?;
    let id = NodeId::parse(peer)?;
    let peers = crate::federation::membership::Members::of_node(settings, db).peers();
    if !peers.iter().any(|p| p.id == id) {
        let known: Vec<String> = peers.iter().map(|p| p.id.to_string()).collect();
        anyhow::bail!(
            "{id} is not one of this node's peers ({})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(id)
}

/// `lapor-node peers` (the table) and its subcommands.
pub fn run_peers(
    settings: &Settings,
    db: Db,
    command: Option<PeersCommand>,
) -> anyhow::Result<Vec<String>> {
    match command {
        None => {
            federation(settings)?;
            let members = crate::federation::membership::Members::of_node(settings, &db).peers();
            let list = peers::status(&db, settings.node_id(), &members, Timestamp::now())?;
            Ok(table(&list))
        }
        Some(PeersCommand::Pin { peer, key }) => {
            let peer = member(settings, &db, &peer)?;
            let metrics = Arc::new(Metrics::default());
            let Some(fed) = crate::federation::Federation::new(settings, db, metrics)? else {
                anyhow::bail!("this node is not federated: [federation] is not configured");
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (k, added) = rt.block_on(fed.pin_peer_key(&peer, &key))?;
            let first = if added {
                format!(
                    "pinned key {} for {peer} (valid from {})",
                    k.id,
                    Timestamp::from_millis(k.valid_from_ms)
                )
            } else {
                format!("key {} was already pinned for {peer}", k.id)
            };
            Ok(vec![
                first,
                format!(
                    "events of {peer} quarantined before the pin: `lapor-node quarantine retry --from {peer}`"
                ),
            ])
        }
        Some(PeersCommand::Resend { peer, reason }) => {
            let peer = member(settings, &db, &peer)?;
            let p = peer.to_string();
            let n = db.write(move |c| {
                crate::federation::outbox::resend(c, &p, reason.as_deref())
                    .map_err(crate::db::DbError::from)
            })?;
            tracing::info!(peer = %peer, events = n, "refused events offered again");
            Ok(vec![format!(
                "{n} refused event(s) offered to {peer} again: the running node sends them on its next round (`lapor-node peers` shows the outbox)"
            )])
        }
    }
}

/// The `peers` table, with each peer's refusal and quarantine reasons and their fixes.
pub(crate) fn table(list: &[PeerStatus]) -> Vec<String> {
    let mut out = vec![
        "PEER                           ROLE      REACHABLE  LAST CONTACT               OUTBOX  OLDEST(s)  REFUSED  QUARANTINED".to_owned(),
    ];
    for p in list {
        out.push(format!(
            "{:<30} {:<9} {:<10} {:<26} {:>6}  {:>9}  {:>7}  {:>11}",
            p.node,
            p.role,
            if p.reachable { "yes" } else { "no" },
            p.last_contact_ms.map_or_else(
                || "never".to_owned(),
                |t| Timestamp::from_millis(t).to_string()
            ),
            p.outbox_depth,
            p.oldest_undelivered_age_ms
                .map_or_else(|| "-".to_owned(), |a| (a / 1000).to_string()),
            p.refused,
            p.quarantined,
        ));
        out.push(format!(
            "    last delivery {}; {} event(s) in the last minute; link {}; backlog {}",
            p.last_success_ms.map_or_else(
                || "never".to_owned(),
                |t| Timestamp::from_millis(t).to_string()
            ),
            p.delivered_last_minute,
            p.rate_bytes_per_sec.map_or_else(
                || "not measured yet".to_owned(),
                |r| format!("{:.1} kbit/s", r as f64 * 8.0 / 1000.0)
            ),
            match p.eta_secs {
                Some(s) if p.outbox_depth > 0 =>
                    format!("{} event(s), about {s} s to deliver", p.outbox_depth),
                _ => format!("{} event(s)", p.outbox_depth),
            }
        ));
        if let Some(e) = &p.last_error {
            out.push(format!("    last error: {e}"));
        }
        for r in &p.refusals {
            out.push(format!(
                "    refused by it: {} × {}: {}",
                r.events, r.code, r.detail
            ));
            out.push(format!("      fix: {}", r.fix));
        }
        for r in &p.quarantine_reasons {
            out.push(format!("    quarantined here: {} × {}", r.events, r.code));
            out.push(format!("      fix: {}", r.fix));
        }
    }
    out
}

/// `lapor-node quarantine …`.
pub fn run_quarantine(
    settings: &Settings,
    db: Db,
    command: QuarantineCommand,
) -> anyhow::Result<Vec<String>> {
    match command {
        QuarantineCommand::List => {
            let mut conn = db.read()?;
            let rows = quarantine::list(&mut conn, 500)?;
            let mut out = vec![format!(
                "{} quarantined event(s) (latest first)",
                rows.len()
            )];
            for q in rows {
                out.push(format!(
                    "{}  from {}  event {} ({}#{})  {}: {}",
                    Timestamp::from_millis(q.received_at_ms),
                    q.received_from,
                    q.event_id.as_deref().unwrap_or("?"),
                    q.origin.as_deref().unwrap_or("?"),
                    q.seq.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                    q.reason,
                    q.detail
                ));
            }
            Ok(out)
        }
        QuarantineCommand::Retry { from } => {
            federation(settings)?;
            let from = from.map(|f| member(settings, &db, &f)).transpose()?;
            let members = crate::federation::membership::Members::of_node(settings, &db);
            let inbox = Inbox::of_node(settings, &members, db, Arc::new(Metrics::default()));
            let r = inbox.retry_quarantine(from.as_ref(), Timestamp::now())?;
            tracing::info!(
                tried = r.tried,
                stored = r.stored,
                deferred = r.deferred,
                "quarantine retried"
            );
            let mut out = vec![format!(
                "{} quarantined event(s) judged again: {} stored, {} still waiting (deferred), {} refused again",
                r.tried,
                r.stored,
                r.deferred,
                r.refused.iter().map(|(_, n)| n).sum::<usize>()
            )];
            for (reason, n) in &r.refused {
                out.push(format!(
                    "    refused again: {n} × {reason} (see `lapor-node peers` for the fix)"
                ));
            }
            Ok(out)
        }
        QuarantineCommand::Clear { from, reason, all } => {
            if from.is_none() && reason.is_none() && !all {
                anyhow::bail!(
                    "say which quarantined events to delete: --from PEER, --reason CODE, or --all"
                );
            }
            let n = db.write(move |c| {
                quarantine::clear(c, from.as_deref(), reason.as_deref())
                    .map_err(crate::db::DbError::from)
            })?;
            tracing::info!(events = n, "quarantined events deleted by the operator");
            Ok(vec![format!("{n} quarantined event(s) deleted")])
        }
    }
}
