//! Signed key rotation (issue 25, item 2): `keys rotate` writes a statement signed by the
//! retiring key and the new one; peers pin the new key from it without an operator, also a
//! peer that was offline during the rotation; a statement not signed by the retiring key is
//! refused, counted, and pins nothing.

use diesel::prelude::*;
use lapor_node::db::schema::{key_statements, node_keys};
use lapor_node::demo::cluster::Cluster;
use lapor_node::demo::scenario::{HUB, JAKARTA, NTT};
use lapor_node::domain::{NodeId, Timestamp};
use lapor_node::event_log::rotation::KeyStatement;

use crate::federation::{cluster, count, node, ntt_tickets, same_state_everywhere};

/// (valid from, valid until) of `key` as `at` holds it, if it holds it for NTT.
fn window(c: &Cluster, at: &str, key: &str) -> Option<(i64, Option<i64>)> {
    let mut conn = node(c, at).federation.db().read().unwrap();
    node_keys::table
        .find(key)
        .filter(node_keys::origin.eq(NTT))
        .select((node_keys::valid_from_ms, node_keys::valid_until_ms))
        .first(&mut conn)
        .optional()
        .unwrap()
}

/// Delivers and pulls until `at` holds `key` and nothing waits (bounded: 50 rounds). A peer
/// that defers events for an unknown key fetches the keys in the background.
async fn settle_until(c: &Cluster, at: &str, key: &str) {
    for _ in 0..50 {
        c.settle(10).await.unwrap();
        if window(c, at, key).is_some() && c.undelivered().unwrap() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn metric(c: &Cluster, at: &str, line: &str) -> bool {
    node(c, at)
        .federation
        .metrics()
        .render(&[])
        .lines()
        .any(|l| l.starts_with(line))
}

/// NTT rotates its key while Jakarta is cut off; NTT restarts with the new key and forwards a
/// new ticket. The hub pins the new key from the statement at once; Jakarta, when it comes
/// back, receives events signed with a key it never saw, fetches NTT's node information,
/// accepts the statement and applies them — no operator, nothing quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_a_peer_that_was_offline_during_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path(), None).await;
    let before = ntt_tickets(&c, 1);
    c.settle(10).await.unwrap();
    let ntt_id = NodeId::parse(NTT).unwrap();

    c.isolate(JAKARTA);
    let at = Timestamp::now();
    let (old, new) = lapor_node::event_log::keys::rotate(
        node(&c, NTT).federation.db(),
        &ntt_id,
        &c.dir.join(NTT).join("keys").join("signing.pem"),
        at,
    )
    .unwrap();
    c.stop(NTT).await.unwrap();
    c.restart(NTT).await.unwrap();
    let (old, new) = (old.to_string(), new.to_string());
    assert_eq!(window(&c, JAKARTA, &new), None);

    // Signed with the new key; Jakarta is still offline.
    let after = ntt_tickets(&c, 1);
    settle_until(&c, HUB, &new).await;
    assert_eq!(window(&c, HUB, &new), Some((at.millis(), None)));
    assert_eq!(window(&c, HUB, &old), Some((0, Some(at.millis()))));
    same_state_everywhere(&c, &after[0], &[NTT, HUB]);

    c.reconnect(JAKARTA);
    settle_until(&c, JAKARTA, &new).await;
    assert_eq!(window(&c, JAKARTA, &new), Some((at.millis(), None)));
    assert_eq!(window(&c, JAKARTA, &old), Some((0, Some(at.millis()))));
    same_state_everywhere(&c, &after[0], &[NTT, HUB, JAKARTA]);
    same_state_everywhere(&c, &before[0], &[NTT, HUB, JAKARTA]);
    assert_eq!(count(node(&c, JAKARTA), "quarantine"), 0);
    assert_eq!(c.undelivered().unwrap(), 0);
    assert!(metric(
        &c,
        JAKARTA,
        "lapor_federation_key_statements_total{result=\"pinned\"} 1"
    ));
    // Jakarta passes the statement on in its own node information.
    let info = node(&c, JAKARTA).federation.node_info().unwrap();
    assert!(info.key_statements.iter().any(|s| s.key_id == new));
    c.shutdown().await;
}

/// A statement whose retiring signature comes from another key: refused with its reason,
/// counted, nothing pinned, the old key's window untouched; the key change stays for the
/// operator (`peers pin`), as before statements existed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_not_signed_by_the_retiring_key_is_refused_and_pins_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    let ntt_id = NodeId::parse(NTT).unwrap();
    let ntt = &node(&c, NTT).federation;
    let (old, new) = lapor_node::event_log::keys::rotate(
        ntt.db(),
        &ntt_id,
        &c.dir.join(NTT).join("keys").join("signing.pem"),
        Timestamp::now(),
    )
    .unwrap();
    // Forge: the statement re-signed by a stranger's key in place of the retiring key.
    let mut conn = ntt.db().read().unwrap();
    let text: String = key_statements::table
        .find(new.to_string())
        .select(key_statements::statement)
        .first(&mut conn)
        .unwrap();
    drop(conn);
    let mut s: KeyStatement = serde_json::from_str(&text).unwrap();
    let stranger = lapor_node::crypto::keys::NodeKey::generate();
    let forged = KeyStatement::sign(s.handover(), &stranger, &stranger).unwrap();
    s.retiring_sig = forged.retiring_sig;
    let forged_text = serde_json::to_string(&s).unwrap();
    let k = new.to_string();
    ntt.db()
        .write(move |c| {
            diesel::update(key_statements::table.find(&k))
                .set(key_statements::statement.eq(forged_text))
                .execute(c)
                .map_err(lapor_node::db::DbError::Query)
        })
        .unwrap();

    let jkt = &node(&c, JAKARTA).federation;
    let e = jkt.fetch_keys(&ntt_id).await.unwrap_err().to_string();
    assert!(e.contains("refused until an operator pins it"), "{e}");
    assert_eq!(window(&c, JAKARTA, &new.to_string()), None);
    assert_eq!(window(&c, JAKARTA, &old.to_string()), Some((0, None)));
    assert_eq!(count(node(&c, JAKARTA), "key_statements"), 0);
    assert!(metric(
        &c,
        JAKARTA,
        "lapor_federation_key_statements_total{result=\"bad_signature\"} 1"
    ));
    c.shutdown().await;
}
