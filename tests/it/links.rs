//! Delivery over thin, unreliable links (issue 21): deferred events wait their turn instead of
//! being resent in a loop, a commit that queues rows wakes delivery, a pull does not fetch
//! again what push delivered, connections stay open across a slow link's pauses, and a batch
//! answer names only what was not acknowledged.

use std::time::Duration;

use lapor_node::demo::cluster::{Cluster, Options};
use lapor_node::demo::scenario::{AGENCY, HUB, JAKARTA, NTT};
use lapor_node::domain::NodeId;

use crate::federation::{cluster, count, node, ntt_tickets, specs};

/// The value of counter `sample` (name with labels) in `node`'s metrics, 0 when absent.
fn counter(c: &Cluster, at: &str, sample: &str) -> u64 {
    node(c, at)
        .federation
        .metrics()
        .render(&[])
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_events_wait_their_turn_instead_of_being_resent_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    // Catch-up out of the way (it would fetch the deferred event again each period).
    let opts = Options {
        workers: true,
        pull_interval_secs: 3600,
        ..Options::default()
    };
    let c = Cluster::start(dir.path(), &specs(None), &opts)
        .await
        .unwrap();
    // The hub lacks Jakarta's agency: NTT's dispatch to it is deferred there.
    {
        use diesel::RunQueryDsl;
        let mut conn = node(&c, HUB).federation.db().read().unwrap();
        diesel::sql_query(format!("DELETE FROM agencies WHERE code = '{AGENCY}'"))
            .execute(&mut conn)
            .unwrap();
    }
    ntt_tickets(&c, 1);
    let deferred = || {
        counter(
            &c,
            HUB,
            "lapor_federation_events_total{result=\"deferred\"}",
        )
    };
    // Wait for the first deferral (bounded: a loaded machine is slow to start).
    let started = std::time::Instant::now();
    while deferred() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = deferred();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let again = deferred() - first;
    // Sent again after 1 s and 2 s: twice more in 3.5 s, three times when the hub's start-up
    // pull fetches it once more on a loaded machine (a worker polling every half second sent
    // it seven times more).
    assert!(again <= 3, "deferred {again} more times");
    // The row is still there, waiting (not refused, not lost).
    assert!(c.undelivered().unwrap() > 0);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_queues_outbox_rows_wakes_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    let ntt = node(&c, NTT).federation.db().clone();
    let mut notices = ntt.notices();
    notices.borrow_and_update();
    // A write that queues nothing does not tick…
    ntt.write(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE peers SET failures = failures")
            .execute(conn)
            .map_err(lapor_node::db::DbError::from)
    })
    .unwrap();
    assert!(!notices.has_changed().unwrap());
    // …a filed report (queued for the hub) does, once it has committed.
    ntt_tickets(&c, 1);
    assert!(notices.has_changed().unwrap());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_does_not_pull_again_what_push_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    ntt_tickets(&c, 20);
    c.deliver_round().await;
    assert_eq!(c.undelivered().unwrap(), 0);
    let held = count(node(&c, HUB), "events");
    let pulled = node(&c, HUB).federation.pull_once().await.unwrap();
    assert_eq!(pulled.received, 0, "{pulled:?}");
    assert_eq!(count(node(&c, HUB), "events"), held);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_connection_outlives_a_pause_longer_than_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    ntt_tickets(&c, 1);
    c.deliver_round().await;
    let link = c.link(NTT, JAKARTA).unwrap();
    let before = link.connections();
    // A slow link's queue holds the next request back for seconds; the connection stays.
    tokio::time::sleep(Duration::from_secs(6)).await;
    ntt_tickets(&c, 1);
    let to_jakarta = NodeId::parse(JAKARTA).unwrap();
    let d = node(&c, NTT).federation.drain(&to_jakarta).await.unwrap();
    assert!(d.acknowledged > 0, "{d:?}");
    assert_eq!(link.connections(), before, "a new connection was opened");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_converges_over_a_link_that_flaps_every_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    // 200 kbit/s, 300 ms round trip, with the node's own retry delays and timeouts; catch-up
    // pulls out of the way so that push alone has to cope with the flapping.
    let opts = Options {
        workers: true,
        pull_interval_secs: 3600,
        link: lapor_node::demo::linksim::Shape::new(200_000, Duration::from_millis(150)),
        fast_retries: false,
        ..Options::default()
    };
    let c = Cluster::start(dir.path(), &specs(None), &opts)
        .await
        .unwrap();
    let line = c.line(NTT, HUB).unwrap();
    line.cut();
    // 700 tickets filed, verified and dispatched at NTT while the line is cut: 2,100 events for
    // the hub, about 330 KB once compressed — more than two up-periods carry.
    ntt_tickets(&c, 700);
    let started = std::time::Instant::now();
    line.restore();
    line.flap(Duration::from_secs(5), Duration::from_secs(1));
    let hub = node(&c, HUB);
    loop {
        let held = count(hub, "events WHERE origin = 'prov-53.lapor.test'");
        let waiting = c.undelivered().unwrap();
        if held >= 2100 && waiting == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "after {:?} over a flapping link: the hub holds {held} of NTT's events, {waiting} wait",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "2,100 events over a 5 s up / 1 s down link: converged in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    line.steady();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_handler_keeps_the_contact_when_every_event_travels_in_its_own_batch() {
    // One event per batch: the forwarded ticket's `created` event (whose commitment the
    // personal data opens) arrives in a batch before the dispatch that makes the receiver its
    // handler. The contact must still reach the handler, and still never the hub.
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        federation_toml: "batch_max_events = 1\nin_flight = 1".into(),
        ..Options::default()
    };
    let c = Cluster::start(dir.path(), &specs(None), &opts)
        .await
        .unwrap();
    ntt_tickets(&c, 2);
    c.settle(20).await.unwrap();
    assert_eq!(c.undelivered().unwrap(), 0);
    assert_eq!(count(node(&c, JAKARTA), "reporter_contacts"), 2);
    assert_eq!(count(node(&c, HUB), "reporter_contacts"), 0);
    // Both peers named the shipped dictionary in their answers: NTT's batches now use it.
    for peer in [HUB, JAKARTA] {
        assert!(
            node(&c, NTT)
                .federation
                .uses_dictionary(&NodeId::parse(peer).unwrap()),
            "{peer}"
        );
    }
    c.shutdown().await;
}
