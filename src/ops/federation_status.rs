//! `lapor-node federation status`: the table `GET /api/v1/hub/federation` serves — every
//! origin's chain as held here (`hub::health`), then each peer's link (as `peers` prints it).

use crate::config::{NodeRole, Settings};
use crate::db::Db;
use crate::domain::Timestamp;
use crate::hub::health::{Audit, chains};

/// The lines to print.
///
/// # Errors
///
/// The database could not be read.
pub fn run(settings: &Settings, db: &Db) -> anyhow::Result<Vec<String>> {
    let holds_all = settings.raw.node.role == NodeRole::Hub;
    let me = settings.node_id().to_string();
    let list = {
        let mut c = db.read()?;
        chains(&mut c, &me, holds_all)?
    };
    let mut out = vec![format!(
        "{:<28} {:>10} {:>10}  audit",
        "chain of", "head held", "held"
    )];
    for c in &list {
        let audit = match &c.audit {
            Audit::Ok => "ok".to_owned(),
            Audit::Gap { missing } => format!("GAP: {missing} event(s) missing below the head"),
            Audit::Partial { missing } => format!(
                "partial ({missing} not held here: tickets this node does not take part in)"
            ),
            Audit::Equivocation { events } => {
                format!("EQUIVOCATION: refused {}", events.join(", "))
            }
        };
        out.push(format!(
            "{:<28} {:>10} {:>10}  {audit}",
            c.origin, c.head_held, c.events_held
        ));
    }
    if list.is_empty() {
        out.push("(no events held yet)".into());
    }
    if settings.raw.federation.is_some() {
        out.push(String::new());
        let members = crate::federation::membership::Members::of_node(settings, db).peers();
        let peers =
            crate::federation::peers::status(db, settings.node_id(), &members, Timestamp::now())?;
        out.extend(super::federation::table(&peers));
    }
    Ok(out)
}
