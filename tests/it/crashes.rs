//! Crashes while a backlog replicates, with real processes: a province node and the hub run as
//! `lapor-node serve` children; the province holds 10,000 events filed while the hub was down;
//! then, while they replicate, one side or the other is killed with SIGKILL at a random moment
//! and started again, 20 times. Afterwards nothing is lost, nothing is applied twice, and both
//! derive the same state for every ticket.
//!
//! The random draws print their seed; `LAPOR_CRASH_SEED=N` replays one.

use std::time::{Duration, Instant};

use lapor_node::domain::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::bin::ok;
use crate::nodes::{
    assert_converged, federate, figures, file_backlog, holdings, make_node, s, wait_delivered,
};

const P53: &str = "prov-53.lapor.test";
const HUB: &str = "hub.lapor.test";

fn seed() -> u64 {
    std::env::var("LAPOR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

#[test]
fn kill_9_of_sender_or_receiver_while_a_backlog_replicates_loses_and_doubles_nothing() {
    let seed = seed();
    eprintln!("crash rounds: LAPOR_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let walk = dir.path();
    ok(&["certs", "ca", "--out", s(&walk.join("ca"))]);
    let mut p53 = make_node(walk, P53, "53", "province");
    let mut hub = make_node(walk, HUB, "31", "hub");
    federate(&p53, HUB, &hub, "hub", "31");
    federate(&hub, P53, &p53, "province", "53");

    // The backlog: filed while nothing runs, so every event waits in the province's outbox.
    let backlog = 10_000;
    file_backlog(&p53, backlog, Timestamp::now());
    let (_, filed) = holdings(&p53, P53);
    assert_eq!(filed, i64::try_from(backlog).unwrap());

    hub.serve();
    p53.serve();
    let started = Instant::now();
    let mut kills = [0usize; 2];
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1200)));
        let (victim, which) = if rng.gen_bool(0.5) {
            (&mut p53, 0)
        } else {
            (&mut hub, 1)
        };
        let mut child = victim.child.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills[which] += 1;
        victim.serve();
    }
    eprintln!(
        "20 kills ({} of the province, {} of the hub) in {:.1} s",
        kills[0],
        kills[1],
        started.elapsed().as_secs_f64()
    );

    // Delivery resumes by itself: the province's outbox empties.
    wait_delivered(&p53, HUB, Duration::from_secs(240));
    eprintln!(
        "converged {:.1} s after the first start",
        started.elapsed().as_secs_f64()
    );
    let at_hub = hub.ok(&["peers"]);
    assert_eq!(figures(&at_hub, P53).2, 0, "quarantined: {at_hub}");
    p53.stop();
    hub.stop();

    // 0 lost, 0 applied twice, the same state everywhere.
    assert_eq!(assert_converged(&p53, &hub, P53), backlog);
    for n in [&p53, &hub] {
        let said = n.ok(&["audit", "verify"]);
        assert!(said.contains("verified"), "{said}");
    }
}
