//! A peer's refusals as its operators meet them: `peers` names the reason and the fix on both
//! sides, `peers pin` then `quarantine retry` stores what was quarantined, `peers resend`
//! offers the refused events again, and nothing stays counted once resolved.

use lapor_node::demo::scenario::{HUB, NTT};
use lapor_node::domain::{NodeId, Timestamp};
use lapor_node::ops::federation::{PeersCommand, QuarantineCommand, run_peers, run_quarantine};

use crate::federation::{cluster, count, node, ntt_tickets, stored_events};

fn status_of(
    c: &lapor_node::demo::cluster::Cluster,
    at: &str,
    peer: &str,
) -> lapor_node::federation::peers::PeerStatus {
    node(c, at)
        .federation
        .status(Timestamp::now())
        .unwrap()
        .into_iter()
        .find(|p| p.node == peer)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_refused_by_a_peer_is_explained_then_pinned_retried_and_resent() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path(), None).await;
    ntt_tickets(&c, 1);
    c.settle(10).await.unwrap();
    let ntt = NodeId::parse(NTT).unwrap();
    node(&c, HUB).federation.fetch_keys(&ntt).await.unwrap();

    // Counters an alert watches exist at 0 before anything happened.
    let metrics = reqwest::get(format!("{}/metrics", node(&c, HUB).api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "lapor_federation_key_changes_refused_total{{peer=\"{NTT}\"}} 0"
        )),
        "{metrics}"
    );

    // NTT's operator rotates its key the supported way: node stopped, rotated, started.
    c.stop(NTT).await.unwrap();
    let (_, new_key) = lapor_node::event_log::keys::rotate(
        node(&c, NTT).federation.db(),
        &ntt,
        &node(&c, NTT).settings.key_path(),
        Timestamp::now(),
    )
    .unwrap();
    // Without its signed statement (lost, or a rotation from before statements existed), the
    // hub cannot take the key by itself: the operators' path below.
    node(&c, NTT)
        .federation
        .db()
        .write(|c| {
            use diesel::RunQueryDsl;
            diesel::delete(lapor_node::db::schema::key_statements::table)
                .execute(c)
                .map_err(lapor_node::db::DbError::Query)
        })
        .unwrap();
    c.restart(NTT).await.unwrap();
    let before = stored_events(node(&c, HUB), NTT).len();
    let new_tickets = ntt_tickets(&c, 2);
    c.deliver_round().await;

    // The hub refused them: NTT's operator is told why and what fixes it.
    let at_ntt = status_of(&c, NTT, HUB);
    assert!(at_ntt.refused > 0, "{at_ntt:?}");
    let r = &at_ntt.refusals[0];
    assert_eq!(r.code, "unknown_key", "{at_ntt:?}");
    assert_eq!(r.events, at_ntt.refused);
    assert!(
        r.fix.contains(&format!("peers pin --peer {NTT}")),
        "{}",
        r.fix
    );
    assert!(
        r.fix.contains(&format!("peers resend --peer {HUB}")),
        "{}",
        r.fix
    );
    // …and the hub's operator too.
    let at_hub = status_of(&c, HUB, NTT);
    assert!(at_hub.quarantined > 0, "{at_hub:?}");
    assert_eq!(at_hub.quarantine_reasons[0].code, "unknown_key");
    let fix = &at_hub.quarantine_reasons[0].fix;
    assert!(
        fix.contains(&format!("quarantine retry --from {NTT}")),
        "{fix}"
    );
    assert_eq!(stored_events(node(&c, HUB), NTT).len(), before);

    // Clearing needs a filter; an unknown peer is named.
    let hub_node = node(&c, HUB);
    let clear_all = QuarantineCommand::Clear {
        from: None,
        reason: None,
        all: false,
    };
    let e = run_quarantine(
        &hub_node.settings,
        hub_node.federation.db().clone(),
        clear_all,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--from PEER, --reason CODE, or --all"), "{e}");
    let e = run_quarantine(
        &hub_node.settings,
        hub_node.federation.db().clone(),
        QuarantineCommand::Retry {
            from: Some("prov-99.lapor.test".into()),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("is not one of this node's peers"), "{e}");

    // The hub's operator pins the new key (checked out of band), then retries.
    let (k, added) = hub_node
        .federation
        .pin_peer_key(&ntt, &new_key.to_string())
        .await
        .unwrap();
    assert!(added, "{k:?}");
    let lines = run_quarantine(
        &hub_node.settings,
        hub_node.federation.db().clone(),
        QuarantineCommand::Retry {
            from: Some(NTT.into()),
        },
    )
    .unwrap();
    assert!(lines[0].contains("0 refused again"), "{lines:?}");
    let at_hub = status_of(&c, HUB, NTT);
    assert_eq!(at_hub.quarantined, 0, "{at_hub:?}");
    assert!(at_hub.quarantine_reasons.is_empty());
    let held = stored_events(node(&c, HUB), NTT).len();
    assert!(held > before, "{held} > {before}");

    // NTT's operator offers the refused events again: they are acknowledged (the hub holds
    // them now) and leave the outbox; nothing stays counted.
    let ntt_node = node(&c, NTT);
    let lines = run_peers(
        &ntt_node.settings,
        ntt_node.federation.db().clone(),
        Some(PeersCommand::Resend {
            peer: HUB.into(),
            reason: Some("unknown_key".into()),
        }),
    )
    .unwrap();
    assert!(
        lines[0].starts_with(&format!("{} refused event(s)", at_ntt.refused)),
        "{lines:?}"
    );
    c.settle(10).await.unwrap();
    let at_ntt = status_of(&c, NTT, HUB);
    assert_eq!((at_ntt.refused, at_ntt.outbox_depth), (0, 0), "{at_ntt:?}");
    assert!(at_ntt.refusals.is_empty());
    for t in &new_tickets {
        crate::federation::same_state_everywhere(&c, t, &[NTT, HUB]);
    }
    assert_eq!(count(node(&c, HUB), "quarantine"), 0);
    c.shutdown().await;
}
