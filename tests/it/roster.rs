//! The hub-signed roster: a province joins a running federation by roster alone, a revoked
//! certificate fails its handshakes at every node holding the roster (one of them got it from a
//! peer, not the hub), and bad rosters are refused with their reason, counted, nothing applied.
//! SQLite, and the hub on PostgreSQL when `LAPOR_TEST_PG_URL` is set.

use std::time::Duration;

use lapor_node::config::NodeRole;
use lapor_node::demo::cluster::{Cluster, ClusterNode, NodeSpec, Options};
use lapor_node::demo::join::{RosterAuthority, entry};
use lapor_node::demo::scenario::{AGENCY, Api, HUB, JAKARTA, NTT, wait_for};
use lapor_node::domain::{AgencyCode, RegionCode, Role};
use lapor_node::federation::roster::{RevokedCert, Roster, RosterAgency, SignedRoster};
use lapor_node::federation::roster_store::AcceptError;
use serde_json::json;

use crate::federation::specs;

const PAPUA: &str = "prov-91.lapor.test";
const PAPUA_AGENCY: &str = "PAPUA-DINKES";

fn opts(auth: &RosterAuthority) -> Options {
    Options {
        workers: true,
        pull_interval_secs: 1,
        federation_toml: auth.toml(),
        ..Options::default()
    }
}

fn node<'a>(c: &'a Cluster, id: &str) -> &'a ClusterNode {
    c.node(id).unwrap()
}

fn papua_agency() -> RosterAgency {
    RosterAgency {
        code: AgencyCode::parse(PAPUA_AGENCY).unwrap(),
        name: "Dinas Kesehatan Provinsi Papua".into(),
        level: lapor_node::domain::reference::AgencyLevel::Province,
        region: RegionCode::parse("91").unwrap(),
    }
}

/// A roster of the cluster's nodes as they run, Papua's with its agency.
fn roster_of(c: &Cluster, version: i64) -> Roster {
    let nodes = c
        .nodes()
        .map(|n| {
            let agencies = if n.id.as_str() == PAPUA {
                vec![papua_agency()]
            } else {
                Vec::new()
            };
            entry(n, agencies).unwrap()
        })
        .collect();
    Roster {
        version,
        issued_at_ms: lapor_node::domain::Timestamp::now().millis(),
        nodes,
        revoked: Vec::new(),
    }
}

async fn offer(n: &ClusterNode, s: &SignedRoster) -> Result<i64, AcceptError> {
    let (m, s) = (n.federation.member().clone(), s.clone());
    tokio::task::spawn_blocking(move || m.offer_roster(&s, "operator").map(|a| a.roster.version))
        .await
        .unwrap()
}

async fn all_hold(c: &Cluster, version: i64) {
    wait_for(
        &format!("roster {version} everywhere"),
        Duration::from_secs(30),
        || {
            Ok(c.nodes()
                .all(|n| n.federation.members().version() == version))
        },
    )
    .await
    .unwrap();
}

async fn hold(c: &Cluster, ids: &[&str], version: i64) {
    wait_for(
        &format!("roster {version} at {ids:?}"),
        Duration::from_secs(30),
        || {
            Ok(ids
                .iter()
                .all(|id| node(c, id).federation.members().version() == version))
        },
    )
    .await
    .unwrap();
}

fn report(region: &str, agency: &str) -> serde_json::Value {
    json!({
        "kind": "pengaduan",
        "title": "Puskesmas tutup sejak dua minggu",
        "body": "Puskesmas di distrik kami tutup sejak dua minggu; tidak ada petugas yang datang.",
        "category": "kesehatan",
        "region": region,
        "agency": agency,
        "channel": "web",
        "reporter": {"name": "Yohanes Wenda", "phone": "+6281298765432"}
    })
}

/// Files at `from` a report for `agency`, verifies and dispatches it; waits until `to` holds
/// it dispatched.
async fn forward(c: &Cluster, from: &str, to: &str, region: &str, agency: &str) -> String {
    let (a, b) = (Api::of(node(c, from)), Api::of(node(c, to)));
    let (_, _, ticket) = a.file(&report(region, agency)).await.unwrap();
    let v = a
        .officer(&format!("verifikator.{}", &from[..7]), Role::Verifier, None)
        .await
        .unwrap();
    a.act(&v, &ticket, &json!({"action": "verify"}))
        .await
        .unwrap();
    a.act(
        &v,
        &ticket,
        &json!({"action": "dispatch", "agency": agency}),
    )
    .await
    .unwrap();
    wait_for(
        &format!("{ticket} at {to}"),
        Duration::from_secs(60),
        || Ok(b.status(&ticket)?.as_deref() == Some("dispatched")),
    )
    .await
    .unwrap();
    ticket
}

/// Hub + two provinces running with the roster key pinned; Papua started with the hub as its
/// only peer; roster 1 (all four) given to the hub's operator only.
async fn joined(
    dir: &std::path::Path,
    pg: Option<&crate::helpers::TestDb>,
) -> (Cluster, RosterAuthority, Roster) {
    let auth = RosterAuthority::new();
    let mut c = Cluster::start(dir, &specs(pg), &opts(&auth)).await.unwrap();
    c.join(
        &NodeSpec::new(PAPUA, "91", NodeRole::Province),
        &opts(&auth),
    )
    .unwrap();
    // Before the roster, Jakarta does not know Papua: its agency is unknown there.
    assert!(
        !node(&c, JAKARTA)
            .federation
            .is_peer(&lapor_node::domain::NodeId::parse(PAPUA).unwrap())
    );
    let r = roster_of(&c, 1);
    assert_eq!(
        offer(node(&c, HUB), &auth.sign(&r).unwrap()).await.unwrap(),
        1
    );
    all_hold(&c, 1).await;
    (c, auth, r)
}

async fn join_case(pg: Option<crate::helpers::TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let (c, _auth, _) = joined(dir.path(), pg.as_ref()).await;
    // Jakarta → Papua: Papua's agency became dispatchable and Papua got a worker at Jakarta.
    forward(&c, JAKARTA, PAPUA, "3171", PAPUA_AGENCY).await;
    // Papua → Jakarta, and Papua → NTT's... Jakarta's agency.
    forward(&c, PAPUA, JAKARTA, "9171", AGENCY).await;
    // Papua's own agency is owned by Papua on every node.
    for n in c.nodes() {
        let mut conn = n.federation.db().read().unwrap();
        let a = lapor_node::tickets::agencies::get(&mut conn, PAPUA_AGENCY)
            .unwrap()
            .unwrap();
        assert_eq!(a.owner_node, PAPUA, "at {}", n.id);
    }
    // The other nodes got roster 1 from the hub, not from the operator.
    let mut conn = node(&c, NTT).federation.db().read().unwrap();
    assert_eq!(received_from(&mut conn, 1), HUB);
    drop(conn);
    c.shutdown().await;
}

fn agency_at(n: &ClusterNode, code: &str) -> lapor_node::tickets::agencies::AgencyInfo {
    let mut conn = n.federation.db().read().unwrap();
    lapor_node::tickets::agencies::get(&mut conn, code)
        .unwrap()
        .unwrap()
}

/// A roster that no longer lists an agency stops its dispatches everywhere (its owner stays a
/// member); an owner the roster states wins over the reference file at a restart; listed
/// again, the agency takes dispatches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agency_the_roster_drops_takes_no_dispatch_and_the_rosters_owners_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, auth, _) = joined(dir.path(), None).await;
    // Version 2: Papua's agency dropped; the reference file's KEMENPUPR (the hub's there)
    // handed to Jakarta.
    let mut r = roster_of(&c, 2);
    for n in &mut r.nodes {
        match n.id.as_str() {
            PAPUA => n.agencies.clear(),
            JAKARTA => n.agencies.push(RosterAgency {
                code: AgencyCode::parse("KEMENPUPR").unwrap(),
                name: "Kementerian Pekerjaan Umum".into(),
                level: lapor_node::domain::reference::AgencyLevel::National,
                region: RegionCode::parse("31").unwrap(),
            }),
            _ => {}
        }
    }
    offer(node(&c, HUB), &auth.sign(&r).unwrap()).await.unwrap();
    all_hold(&c, 2).await;
    for n in c.nodes() {
        let a = agency_at(n, PAPUA_AGENCY);
        assert_eq!((a.dropped_by_roster, a.dispatchable()), (Some(2), false));
        assert_eq!(agency_at(n, "KEMENPUPR").owner_node, JAKARTA, "at {}", n.id);
    }
    let a = Api::of(node(&c, JAKARTA));
    let (_, _, ticket) = a.file(&report("3171", PAPUA_AGENCY)).await.unwrap();
    let v = a
        .officer("verifikator.drop", Role::Verifier, None)
        .await
        .unwrap();
    a.act(&v, &ticket, &json!({"action": "verify"}))
        .await
        .unwrap();
    let path = format!("/api/v1/tickets/{ticket}/actions");
    let dispatch = json!({"action": "dispatch", "agency": PAPUA_AGENCY});
    let (st, body) = a.post(&path, Some(&v), None, &dispatch).await.unwrap();
    assert_eq!(st, 422, "{body}");
    assert!(
        body.to_string()
            .contains("no longer listed in the federation's roster"),
        "{body}"
    );
    assert_eq!(a.status(&ticket).unwrap().as_deref(), Some("verified"));

    // A restart writes the reference file again: the roster's owner and drop stay.
    c.stop(NTT).await.unwrap();
    c.restart(NTT).await.unwrap();
    let n = node(&c, NTT);
    assert_eq!(agency_at(n, "KEMENPUPR").owner_node, JAKARTA);
    assert_eq!(agency_at(n, PAPUA_AGENCY).dropped_by_roster, Some(2));

    // Version 3 lists it again: dispatchable again.
    let r = roster_of(&c, 3);
    offer(node(&c, HUB), &auth.sign(&r).unwrap()).await.unwrap();
    all_hold(&c, 3).await;
    assert!(agency_at(node(&c, JAKARTA), PAPUA_AGENCY).dispatchable());
    let (st, body) = a.post(&path, Some(&v), None, &dispatch).await.unwrap();
    assert_eq!(st, 200, "{body}");
    c.shutdown().await;
}

fn received_from(conn: &mut lapor_node::db::DbConn, version: i64) -> String {
    use diesel::prelude::*;
    use lapor_node::db::schema::rosters;
    rosters::table
        .find(version)
        .select(rosters::received_from)
        .first(conn)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_province_joins_a_running_federation_by_roster_alone_and_forwards_both_ways() {
    join_case(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_province_joins_by_roster_with_the_hub_on_postgres() {
    let Some(pg) = crate::helpers::postgres() else {
        return;
    };
    join_case(Some(pg)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_certificate_fails_its_handshake_at_every_node_holding_the_roster() {
    let dir = tempfile::tempdir().unwrap();
    let (c, auth, mut r) = joined(dir.path(), None).await;
    // Jakarta cannot reach the hub: it must get roster 2 from a peer.
    for (a, b) in [(JAKARTA, HUB), (HUB, JAKARTA)] {
        c.link(a, b).unwrap().cut();
    }
    let papua = r.nodes.iter_mut().find(|n| n.id.as_str() == PAPUA).unwrap();
    let fp = papua.certificate.take().unwrap();
    r.version = 2;
    r.revoked.push(RevokedCert {
        certificate: fp.clone(),
        node: PAPUA.into(),
        reason: "key leaked".into(),
        since_ms: r.issued_at_ms,
    });
    offer(node(&c, HUB), &auth.sign(&r).unwrap()).await.unwrap();
    // Papua itself cannot fetch it any more: its certificate is what was revoked.
    hold(&c, &[HUB, JAKARTA, NTT], 2).await;
    let mut conn = node(&c, JAKARTA).federation.db().read().unwrap();
    assert_ne!(
        received_from(&mut conn, 2),
        HUB,
        "Jakarta got it from a peer"
    );
    drop(conn);
    // Papua's certificate, presented by a fresh client, fails the handshake at every node.
    let files = |id: &str| lapor_node::tls::config::TlsFiles {
        ca: dir
            .path()
            .join(id)
            .join("tls")
            .join(lapor_node::tls::certs::CA_CERT),
        cert: dir
            .path()
            .join(id)
            .join("tls")
            .join(lapor_node::tls::certs::NODE_CERT),
        key: dir
            .path()
            .join(id)
            .join("tls")
            .join(lapor_node::tls::certs::NODE_KEY),
    };
    for id in [HUB, JAKARTA, NTT] {
        let port = node(&c, id).federation_port;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let client = lapor_node::tls::config::client(
            &files(PAPUA),
            &[(id.to_owned(), addr)],
            Duration::from_secs(5),
        )
        .unwrap();
        let err = client
            .get(format!("https://{id}:{port}/federation/v1/node"))
            .send()
            .await
            .expect_err(&format!("{id} must refuse Papua's revoked certificate"));
        assert!(err.is_connect() || err.is_request(), "{id}: {err:?}");
        let m = node(&c, id).federation.metrics().render(&[]);
        assert!(
            m.contains("lapor_federation_tls_refused_total{reason=\"certificate_revoked\",side=\"listener\"}")
                && !m.contains("lapor_federation_tls_refused_total{reason=\"certificate_revoked\",side=\"listener\"} 0"),
            "{id} counts the refusal:\n{m}"
        );
    }
    // And every node refuses Papua's listener as a server (the client side of the handshake).
    for id in [HUB, JAKARTA, NTT] {
        let f = &node(&c, id).federation;
        let e = f
            .fetch_keys(&lapor_node::domain::NodeId::parse(PAPUA).unwrap())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Revoked"), "{id}: {e}");
    }
    c.shutdown().await;
}

/// Bad rosters: each refused with its reason, counted, nothing applied — on every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_rosters_are_refused_with_their_reason_counted_and_nothing_applied() {
    let mut cases = vec![None];
    if let Some(pg) = crate::helpers::postgres() {
        cases.push(Some(pg));
    }
    for pg in cases {
        let dir = tempfile::tempdir().unwrap();
        let auth = RosterAuthority::new();
        let o = Options {
            federation_toml: auth.toml(),
            ..Options::default()
        };
        let mut specs = specs(None);
        if let Some(db) = &pg {
            specs[1].database_url = Some(db.url.clone());
        }
        let c = Cluster::start(dir.path(), &specs, &o).await.unwrap();
        let jkt = node(&c, JAKARTA);
        let good = roster_of(&c, 5);
        assert_eq!(offer(jkt, &auth.sign(&good).unwrap()).await.unwrap(), 5);
        let agencies_before = count_agencies(jkt);
        let keys_before = count_keys(jkt);

        let mut with_papua_agency = good.clone();
        with_papua_agency.nodes[0].agencies.push(papua_agency());
        let mut cases: Vec<(&str, SignedRoster)> = Vec::new();
        // A bad signature: signed, then changed.
        let mut tampered = auth
            .sign(&Roster {
                version: 6,
                ..with_papua_agency.clone()
            })
            .unwrap();
        tampered.roster["issued_at_ms"] = json!(1);
        cases.push(("bad_signature", tampered));
        // Another key than the pinned one.
        cases.push((
            "wrong_roster_key",
            RosterAuthority::new()
                .sign(&Roster {
                    version: 6,
                    ..with_papua_agency.clone()
                })
                .unwrap(),
        ));
        // An older and an equal version.
        cases.push((
            "not_newer",
            auth.sign(&Roster {
                version: 4,
                ..with_papua_agency.clone()
            })
            .unwrap(),
        ));
        cases.push((
            "not_newer",
            auth.sign(&Roster {
                version: 5,
                ..with_papua_agency.clone()
            })
            .unwrap(),
        ));
        // A node id that does not match its certificate: Jakarta's entry pins NTT's certificate.
        let mut swapped = Roster {
            version: 6,
            ..with_papua_agency.clone()
        };
        let ntt_cert = swapped
            .nodes
            .iter()
            .find(|n| n.id.as_str() == NTT)
            .unwrap()
            .certificate
            .clone();
        swapped
            .nodes
            .iter_mut()
            .find(|n| n.id.as_str() == JAKARTA)
            .unwrap()
            .certificate = ntt_cert;
        cases.push(("node_certificate_mismatch", auth.sign(&swapped).unwrap()));
        // …or whose URL names another node than its id (its certificate would not match).
        let mut misnamed = Roster {
            version: 6,
            ..with_papua_agency.clone()
        };
        misnamed.nodes[2].url = url::Url::parse("https://prov-99.lapor.test:1").unwrap();
        cases.push(("node_certificate_mismatch", auth.sign(&misnamed).unwrap()));
        // Overlapping key windows.
        let mut overlap = Roster {
            version: 6,
            ..with_papua_agency.clone()
        };
        let k2 = lapor_node::crypto::keys::NodeKey::generate();
        let n = overlap
            .nodes
            .iter_mut()
            .find(|n| n.id.as_str() == NTT)
            .unwrap();
        n.keys.push(lapor_node::federation::roster::RosterKey {
            id: k2.id().as_str().to_owned(),
            public_key: lapor_node::crypto::keys::public_key_text(&k2.verifying_key()),
            valid_from_ms: 1_000,
            valid_until_ms: None,
            retired_at_ms: None,
        });
        cases.push(("overlapping_key_windows", auth.sign(&overlap).unwrap()));
        // A revoked certificate that the roster also pins for a member.
        let mut contradictory = Roster {
            version: 6,
            ..with_papua_agency.clone()
        };
        let hub_cert = contradictory.nodes[0].certificate.clone().unwrap();
        contradictory.revoked.push(RevokedCert {
            certificate: hub_cert,
            node: HUB.into(),
            reason: "test".into(),
            since_ms: 0,
        });
        cases.push(("invalid_roster", auth.sign(&contradictory).unwrap()));

        for (reason, signed) in &cases {
            match offer(jkt, signed).await {
                Err(AcceptError::Refused(e)) => assert_eq!(e.code(), *reason, "{e}"),
                other => panic!("expected {reason}, got {other:?}"),
            }
            assert_eq!(
                jkt.federation.members().version(),
                5,
                "{reason}: nothing applied"
            );
        }
        assert_eq!(count_agencies(jkt), agencies_before, "no agency applied");
        assert_eq!(count_keys(jkt), keys_before, "no key pinned");
        let mut conn = jkt.federation.db().read().unwrap();
        assert_eq!(
            lapor_node::federation::roster_store::held_version(&mut conn).unwrap(),
            5
        );
        drop(conn);
        let m = jkt.federation.metrics().render(&[]);
        for (reason, n) in [
            ("bad_signature", 1),
            ("wrong_roster_key", 1),
            ("not_newer", 2),
            ("node_certificate_mismatch", 2),
            ("overlapping_key_windows", 1),
            ("invalid_roster", 1),
        ] {
            let line = format!("lapor_federation_rosters_refused_total{{reason=\"{reason}\"}} {n}");
            assert!(m.contains(&line), "missing {line} in\n{m}");
        }
        c.shutdown().await;
    }
}

fn count_agencies(n: &ClusterNode) -> usize {
    let mut conn = n.federation.db().read().unwrap();
    lapor_node::tickets::agencies::list(&mut conn)
        .unwrap()
        .len()
}

fn count_keys(n: &ClusterNode) -> i64 {
    crate::federation::count(n, "node_keys")
}

/// `roster keygen`, `sign`, `show`, `diff` and `apply` as an operator runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_commands_make_sign_show_diff_and_apply_a_roster() {
    use lapor_node::ops::roster::{RosterCommand, run};
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    let out = run(
        &RosterCommand::Keygen {
            out: p("roster.key"),
        },
        None,
    )
    .unwrap();
    let public = out[1]
        .split('"')
        .nth(1)
        .expect("the line to pin")
        .to_owned();
    let c = Cluster::start(
        &p("cluster"),
        &specs(None),
        &Options {
            federation_toml: format!("roster_key = \"{public}\"\n"),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let v1 = roster_of(&c, 1);
    let mut v2 = roster_of(&c, 2);
    v2.nodes.retain(|n| n.id.as_str() != NTT);
    std::fs::write(p("v1.json"), serde_json::to_vec(&v1).unwrap()).unwrap();
    std::fs::write(p("v2.json"), serde_json::to_vec(&v2).unwrap()).unwrap();
    for v in ["v1", "v2"] {
        run(
            &RosterCommand::Sign {
                key: p("roster.key"),
                roster: p(&format!("{v}.json")),
                out: p(&format!("{v}.signed.json")),
            },
            None,
        )
        .unwrap();
    }
    let jkt = node(&c, JAKARTA);
    let shown = run(
        &RosterCommand::Show {
            file: p("v2.signed.json"),
        },
        Some(&jkt.settings),
    )
    .unwrap();
    assert!(
        shown[1].contains("verifies with federation.roster_key"),
        "{shown:?}"
    );
    let diff = run(
        &RosterCommand::Diff {
            old: p("v1.signed.json"),
            new: p("v2.json"),
        },
        None,
    )
    .unwrap();
    assert_eq!(
        diff,
        vec!["version 1 -> 2".to_owned(), format!("- node {NTT}")]
    );
    // Applied beside the running node: the node takes it up from its database.
    run(
        &RosterCommand::Apply {
            file: p("v2.signed.json"),
        },
        Some(&jkt.settings),
    )
    .unwrap();
    assert!(jkt.federation.member().reload_roster().unwrap());
    let ntt = lapor_node::domain::NodeId::parse(NTT).unwrap();
    assert!(!jkt.federation.is_peer(&ntt), "NTT left the membership");
    // Applying the older one now is refused with its reason.
    let e = run(
        &RosterCommand::Apply {
            file: p("v1.signed.json"),
        },
        Some(&jkt.settings),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not_newer"), "{e}");
    c.shutdown().await;
}

/// A key the roster retires: events its node signs with it afterwards are refused, with the
/// reason, by a node holding that roster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_signed_with_a_key_the_roster_retired_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let auth = RosterAuthority::new();
    let c = Cluster::start(
        dir.path(),
        &specs(None),
        &Options {
            federation_toml: auth.toml(),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let mut r = roster_of(&c, 1);
    let now = lapor_node::domain::Timestamp::now().millis();
    for n in r.nodes.iter_mut().filter(|n| n.id.as_str() == NTT) {
        for k in &mut n.keys {
            k.retired_at_ms = Some(now);
        }
    }
    let jkt = node(&c, JAKARTA);
    offer(jkt, &auth.sign(&r).unwrap()).await.unwrap();
    // NTT (which does not know) goes on signing with its key.
    let ntt = Api::of(node(&c, NTT));
    let (_, _, ticket) = ntt.file(&report("5371", AGENCY)).await.unwrap();
    let v = ntt
        .officer("verifikator.ntt", Role::Verifier, None)
        .await
        .unwrap();
    ntt.act(&v, &ticket, &json!({"action": "verify"}))
        .await
        .unwrap();
    ntt.act(
        &v,
        &ticket,
        &json!({"action": "dispatch", "agency": AGENCY}),
    )
    .await
    .unwrap();
    c.settle(5).await.unwrap();
    assert_eq!(
        Api::of(jkt).status(&ticket).unwrap(),
        None,
        "Jakarta holds nothing of it"
    );
    let mut conn = jkt.federation.db().read().unwrap();
    let q = lapor_node::federation::quarantine::list(&mut conn, 100).unwrap();
    assert!(
        q.iter()
            .any(|row| row.reason == "key_not_valid_at_event_time"),
        "quarantined with the reason: {q:?}"
    );
    drop(conn);
    c.shutdown().await;
}
