//! `lapor-node restore-check`: what a restored node is missing of its own chain, per source
//! (the hub and every peer: the head each holds there against the head held here), before it
//! goes live; `--release` is the operator's override that lifts the restore hold when the
//! missing events are known to be lost (no source will ever hold them).

use std::sync::Arc;

use crate::config::Settings;
use crate::db::Db;
use crate::event_log::hold::Hold;
use crate::metrics::Metrics;

/// Runs the check (and the override): the lines to print.
pub fn run(settings: &Settings, db: Db, release: bool) -> anyhow::Result<Vec<String>> {
    let hold = Hold::of(&settings.raw.node.data_dir);
    let mut lines = vec![match hold.reason() {
        Some(_) => "restore hold: ON (this node writes nothing of its own until it has its own \
                    events back)"
            .to_owned(),
        None => "restore hold: off".to_owned(),
    }];
    let Some(fed) = crate::federation::Federation::new(settings, db, Arc::new(Metrics::default()))?
    else {
        lines.push("not federated: no hub or peer holds this node's events".into());
        return finish(lines, &hold, release);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(fed.recover_own_chain(&Hold::default(), false))?;
    lines.push(format!("own chain held here: up to seq {}", r.own_head));
    for s in &r.sources {
        lines.push(match &s.head {
            Ok(h) if *h > r.own_head => format!(
                "  {}: holds up to seq {h} — {} event(s) missing here",
                s.source,
                h - r.own_head
            ),
            Ok(h) => format!("  {}: holds up to seq {h} — nothing missing", s.source),
            Err(e) => format!("  {}: not reachable ({e})", s.source),
        });
    }
    lines.push(if r.caught_up {
        "nothing missing: the node goes live at its next start (or at once when running)".into()
    } else {
        "missing events, or the hub not reachable: `lapor-node serve` fetches them before it \
         writes"
            .into()
    });
    finish(lines, &hold, release)
}

fn finish(mut lines: Vec<String>, hold: &Hold, release: bool) -> anyhow::Result<Vec<String>> {
    if release && hold.is_on() {
        hold.release()?;
        tracing::warn!("restore hold released by the operator");
        lines.push(
            "restore hold released by the operator: the node writes from the head it holds \
             (events it wrote after the backup and that no source holds are lost; any that \
             turn up later will be refused by peers as equivocation)"
                .into(),
        );
    }
    Ok(lines)
}
