//! A province cut off from the federation for a simulated 30 days, with real processes and an
//! injected clock (`LAPOR_CLOCK_SHIFT_SECS`): 50,000 reports filed on day 0 and 50,000 on day
//! 15, the node running alone on day 15 (its delivery backs off, its SLA sweep runs), then on
//! day 30 the hub is back. The backlog converges, and no timer has deleted anything on the way.

use std::time::{Duration, Instant};

use lapor_node::domain::Timestamp;

use crate::bin::ok;
use crate::nodes::{
    assert_converged, federate, figures, file_backlog, holdings, make_node, s, wait_delivered,
};

const P53: &str = "prov-53.lapor.test";
const HUB: &str = "hub.lapor.test";
const DAY_SECS: i64 = 86_400;

/// The environment of a node whose clock reads `days` after today's; one SLA sweep at start.
fn on_day(days: i64) -> [(&'static str, String); 2] {
    [
        ("LAPOR_CLOCK_SHIFT_SECS", (days * DAY_SECS).to_string()),
        ("LAPOR__SLA__SWEEP_INTERVAL_SECS", "3600".to_owned()),
    ]
}

fn env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn a_province_cut_off_for_30_days_with_100k_events_catches_up_and_loses_nothing() {
    let half = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let walk = dir.path();
    ok(&["certs", "ca", "--out", s(&walk.join("ca"))]);
    let mut p53 = make_node(walk, P53, "53", "province");
    let mut hub = make_node(walk, HUB, "31", "hub");
    federate(&p53, HUB, &hub, "hub", "31");
    federate(&hub, P53, &p53, "province", "53");

    let t0 = Timestamp::now();
    let started = Instant::now();
    file_backlog(&p53, half, t0);
    file_backlog(
        &p53,
        half,
        Timestamp::from_millis(t0.millis() + 15 * DAY_SECS * 1000),
    );
    eprintln!(
        "100,000 reports filed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Day 15: the province runs alone; its worker finds the hub unreachable and backs off; its
    // SLA sweep records breaches of the day-0 tickets (new events, queued for the hub too).
    p53.serve_with(&env(&on_day(15)));
    let t = Instant::now();
    let alone = loop {
        let said = p53.ok(&["peers"]);
        if said.contains("last error") || t.elapsed() > Duration::from_secs(30) {
            break said;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(alone.contains("last error"), "{alone}");
    let (queued, _, _) = figures(&alone, HUB);
    assert!(queued >= 100_000, "queued for the hub on day 15: {alone}");
    p53.stop();
    let (_, on_day_15) = holdings(&p53, P53);

    // Day 30: the hub is back. The province's stored backoff lies two weeks in the past: it
    // tries at once, and everything it holds reaches the hub.
    hub.serve_with(&env(&on_day(30)));
    p53.serve_with(&env(&on_day(30)));
    let back = Instant::now();
    let first = wait_delivered(&p53, HUB, Duration::from_secs(900));
    eprintln!(
        "day 30: first delivery after {:.1} s, caught up in {:.1} s",
        first.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    // Not a timing target (the figure above is): a bound far below the 15 min backoff cap that
    // a backoff carried over from day 15 would impose, and far above two processes' start on a
    // loaded machine.
    assert!(
        first < Duration::from_secs(120),
        "the returning hub was tried {first:?} later"
    );
    let at_hub = hub.ok(&["peers"]);
    assert_eq!(figures(&at_hub, P53).2, 0, "quarantined: {at_hub}");
    p53.stop();
    hub.stop();

    let (_, written) = holdings(&p53, P53);
    assert!(
        written >= on_day_15 && on_day_15 >= 100_000,
        "{on_day_15} then {written}"
    );
    assert_eq!(assert_converged(&p53, &hub, P53), 2 * half);
}
