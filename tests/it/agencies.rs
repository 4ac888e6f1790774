//! Agencies as managed data: an operator adds a province's own agencies beside the built-in
//! list, disables one, imports a CSV; a dispatch to a disabled agency or to one whose node is
//! not a member is refused with a message that says so; a received dispatch naming an agency
//! unknown here is deferred (not a foreign-key failure) and accepted once the agency is added.

use std::process::Command;

use lapor_node::demo::scenario::{AGENCY, HUB, NTT};
use lapor_node::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::api::{Node, report_body};
use crate::federation::{cluster, count, node, ntt_tickets};

const BIN: &str = env!("CARGO_BIN_EXE_lapor-node");

#[test]
fn agencies_are_listed_added_imported_and_disabled_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("n72");
    let out = Command::new(BIN)
        .args([
            "init",
            "--node-id",
            "prov-72.lapor.test",
            "--province",
            "72",
            "--dir",
        ])
        .arg(&node_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = node_dir.join("config.toml");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("agencies")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, list, _) = run(&["list"]);
    assert!(
        ok && list.contains("KEMENKES") && !list.contains("SULTENG-DINKES"),
        "{list}"
    );
    let (ok, out, err) = run(&[
        "add",
        "SULTENG-DINKES",
        "--name",
        "Dinas Kesehatan Provinsi Sulawesi Tengah",
        "--region",
        "72",
    ]);
    assert!(ok, "{out}{err}");
    let (ok, list, _) = run(&["list"]);
    assert!(ok, "{list}");
    let line = list
        .lines()
        .find(|l| l.starts_with("SULTENG-DINKES"))
        .unwrap();
    assert!(
        line.contains("prov-72.lapor.test") && line.contains("active"),
        "{line}"
    );
    assert!(list.contains("KEMENKES"), "the built-in list stays");
    // Refusals, each naming the problem.
    let (ok, _, err) = run(&["add", "SULTENG-DINKES", "--name", "x", "--region", "72"]);
    assert!(!ok && err.contains("exists"), "{err}");
    let (ok, _, err) = run(&["add", "SULTENG-X", "--name", "x", "--region", "99"]);
    assert!(!ok && err.contains("region"), "{err}");
    let (ok, _, err) = run(&["add", "bad code", "--name", "x", "--region", "72"]);
    assert!(!ok && err.contains("agency code"), "{err}");
    // Disable, then import (a bad file changes nothing; a good one adds and updates).
    let (ok, _, err) = run(&["disable", "SULTENG-DINKES"]);
    assert!(ok, "{err}");
    let (_, list, _) = run(&["list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("SULTENG-DINKES") && l.contains("disabled"))
    );
    let csv = dir.path().join("a.csv");
    std::fs::write(
        &csv,
        "code,name,level,region,owner_node\n\
         PALU-DISHUB,Dinas Perhubungan Kota Palu,regency,7271,prov-72.lapor.test\n\
         NOPE,x,province,99,prov-72.lapor.test\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["import", csv.to_str().unwrap()]);
    assert!(!ok, "{err}");
    let (_, list, _) = run(&["list"]);
    assert!(
        !list.contains("PALU-DISHUB"),
        "nothing written from a bad file"
    );
    std::fs::write(
        &csv,
        "code,name,level,region,owner_node\n\
         PALU-DISHUB,Dinas Perhubungan Kota Palu,regency,7271,prov-72.lapor.test\n\
         SULTENG-DINKES,Dinas Kesehatan Sulawesi Tengah,province,72,prov-72.lapor.test\n",
    )
    .unwrap();
    let (ok, out, err) = run(&["import", csv.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("1 added, 1 updated"), "{out}");
    let (_, list, _) = run(&["list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with("SULTENG-DINKES"))
        .unwrap();
    assert!(
        line.contains("disabled"),
        "an import keeps the disabled flag: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_is_refused_to_a_disabled_agency_or_one_of_a_non_member_node() {
    let db = crate::helpers::sqlite();
    let node = Node::start(&db, "").await;
    let admin = node.officer("admin", Role::Admin, None).await;
    let verifier = node.officer("verif", Role::Verifier, None).await;
    // The admin API: add, list, disable.
    let (st, v) = node
        .post(
            "/api/v1/admin/agencies",
            Some(&admin),
            &json!({"code": "JAKUT-DISHUB", "name": "Sudin Perhubungan Jakarta Utara",
                    "level": "regency", "region": "3172"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["owner_node"], "prov-31.lapor.test");
    let (st, _) = node
        .post(
            "/api/v1/admin/agencies",
            Some(&verifier),
            &json!({"code": "X-Y", "name": "x", "level": "regency", "region": "3172"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, list) = node.get("/api/v1/admin/agencies", Some(&verifier)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "JAKUT-DISHUB")
    );
    let (st, _) = node
        .post(
            "/api/v1/admin/agencies/JAKUT-DISHUB/disable",
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let (_, _, id) = node.file(&report_body()).await;
    let before = node.event_count();
    let dispatch = |agency: &str| json!({"action": "dispatch", "agency": agency});
    let path = format!("/api/v1/tickets/{id}/actions");
    let (st, v) = node
        .post(&path, Some(&verifier), &dispatch("JAKUT-DISHUB"))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "agency_unavailable");
    assert!(v["message"].as_str().unwrap().contains("disabled"), "{v}");
    // KEMENKES belongs to the hub, which this standalone node does not list as a peer.
    let (st, v) = node
        .post(&path, Some(&verifier), &dispatch("KEMENKES"))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("not a member"),
        "{v}"
    );
    assert_eq!(node.event_count(), before, "nothing changed");
    let (st, _) = node
        .post(
            "/api/v1/admin/agencies/JAKUT-DISHUB/enable",
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = node
        .post(&path, Some(&verifier), &dispatch("JAKUT-DISHUB"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_dispatch_to_an_agency_unknown_here_waits_until_it_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    // The hub lacks Jakarta's agency (a province's own agency the hub was never told of).
    {
        use diesel::RunQueryDsl;
        let mut conn = node(&c, HUB).federation.db().read().unwrap();
        diesel::sql_query(format!("DELETE FROM agencies WHERE code = '{AGENCY}'"))
            .execute(&mut conn)
            .unwrap();
    }
    let tickets = ntt_tickets(&c, 1);
    c.settle(5).await.unwrap();
    let hub = node(&c, HUB);
    assert_eq!(count(hub, "quarantine"), 0, "not a refusal");
    assert!(
        c.undelivered().unwrap() > 0,
        "the dispatch waits at its sender"
    );
    let status = |n| {
        lapor_node::demo::scenario::Api::of(node(&c, n))
            .status(&tickets[0])
            .unwrap()
    };
    assert_eq!(status(HUB).as_deref(), Some("verified"));
    // The hub's operator adds the agency; the next delivery is accepted.
    {
        let mut conn = hub.federation.db().read().unwrap();
        let a = lapor_node::domain::reference::parse_agencies(&format!(
            "code,name,level,region,owner_node\n{AGENCY},Dinas Perhubungan DKI,province,31,prov-31.lapor.test\n"
        ))
        .unwrap();
        lapor_node::tickets::agencies::import(&mut conn, &a, &hub.settings.provinces).unwrap();
    }
    c.settle(5).await.unwrap();
    assert_eq!(c.undelivered().unwrap(), 0);
    assert_eq!(status(HUB), status(NTT));
    c.shutdown().await;
}

/// The verifier sees the agency the citizen suggested and what may be done next; an action the
/// status does not allow is refused with the allowed ones named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_page_names_the_suggested_agency_and_a_409_names_the_allowed_actions() {
    let db = crate::helpers::sqlite();
    let node = Node::start(&db, "").await;
    let verifier = node.officer("verif", Role::Verifier, None).await;
    let liaison = node
        .officer("dishub", Role::Liaison, Some("DKI-DISHUB"))
        .await;
    let (_, _, id) = node.file(&report_body()).await;
    let (_, v) = node
        .get(&format!("/api/v1/tickets/{id}"), Some(&verifier))
        .await;
    assert_eq!(v["suggested_agency"], "DKI-DISHUB", "{v}");
    assert_eq!(
        v["allowed_actions"],
        json!([
            "verify",
            "dispatch",
            "postpone",
            "archive",
            "not_our_authority"
        ])
    );
    let path = format!("/api/v1/tickets/{id}/actions");
    let (st, v) = node
        .post(
            &path,
            Some(&verifier),
            &json!({"action": "dispatch", "agency": "DKI-DISHUB"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = node
        .post(&path, Some(&verifier), &json!({"action": "verify"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("allowed now:") && msg.contains("start, respond, not_our_authority (liaison)"),
        "{msg}"
    );
    let (_, v) = node
        .get(&format!("/api/v1/tickets/{id}"), Some(&liaison))
        .await;
    assert_eq!(
        v["allowed_actions"],
        json!(["start", "respond", "not_our_authority"])
    );
}
