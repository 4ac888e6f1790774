//! SLA escalation (issue 25, item 5): an agency's breach reaches the handling node's verifiers
//! (API and console), not liaisons; the acknowledgement takes it off the list, refused for a
//! liaison, an unknown id and a form without its CSRF token; the metrics count. A province's
//! repeated breaches raise the hub's `sla_breaches` alert at the threshold and not below; a
//! forwarded ticket's breach escalates at the node handling it, not at its origin.

use lapor_node::demo::scenario::{Api, HUB, JAKARTA, NTT};
use lapor_node::domain::{Role, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{Node, report_body};
use crate::federation::{node, ntt_tickets};
use crate::helpers::{self, DAY_MS};
use crate::web::Client;
use crate::web_officers::login;

/// Files a report and dispatches it to DKI-DISHUB; returns (tracking code, ticket id).
async fn dispatched(n: &Node, verifier: &str) -> (String, String) {
    let (code, _, id) = n.file(&report_body()).await;
    let path = format!("/api/v1/tickets/{id}/actions");
    let body = json!({"action": "dispatch", "agency": "DKI-DISHUB"});
    let (st, v) = n.post(&path, Some(verifier), &body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    (code, id)
}

fn list(v: &Value) -> &Vec<Value> {
    v["escalations"].as_array().unwrap()
}

/// The markup of the element with id `id`, up to its closing `end` tag.
fn element(body: &str, id: &str, end: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let rest = &body[at..];
    Some(rest[..rest.find(end)?].to_owned())
}

async fn metrics(n: &Node) -> String {
    n.http
        .get(n.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_breach_reaches_the_verifiers_and_is_acknowledged_once() {
    for db in helpers::backends() {
        let n = Node::start(&db, "").await;
        let verifier = n.officer("verif", Role::Verifier, None).await;
        let dishub = n.officer("dishub", Role::Liaison, Some("DKI-DISHUB")).await;
        let dinkes = n.officer("dinkes", Role::Liaison, Some("DKI-DINKES")).await;
        let analyst = n.officer("analis", Role::Analyst, None).await;
        let (code1, id1) = dispatched(&n, &verifier).await;
        let (code2, _) = dispatched(&n, &verifier).await;
        // A report nobody verified: the verifiers' own breach, escalated to nobody here.
        n.file(&report_body()).await;

        // Twelve days on, the agency's response deadline has passed on both dispatched ones.
        let later = Timestamp::now().plus_millis(12 * DAY_MS);
        let swept = n.app_state.tickets.sla_sweep(later, 1000).unwrap();
        assert_eq!((swept.breaches, swept.escalations), (3, 2), "{}", db.name);
        // A second sweep finds the breaches recorded: nothing escalates twice.
        let again = n.app_state.tickets.sla_sweep(later, 1000).unwrap();
        assert_eq!((again.breaches, again.escalations), (0, 0));

        let (st, v) = n.get("/api/v1/escalations", Some(&verifier)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(list(&v).len(), 2, "{v}");
        let first = list(&v)
            .iter()
            .find(|e| e["ticket"] == json!(id1))
            .unwrap_or_else(|| panic!("no escalation of {id1}: {v}"));
        assert_eq!(
            (&first["agency"], &first["step"]),
            (&json!("DKI-DISHUB"), &json!("response")),
            "{v}"
        );
        let codes: Vec<&str> = list(&v)
            .iter()
            .map(|e| e["tracking_code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code1.as_str()) && codes.contains(&code2.as_str()));
        assert!(first["late_ms"].as_i64().unwrap() > 0, "{first}");
        assert!(first["acknowledged_by"].is_null());
        // No personal data in an escalation.
        assert!(!v.to_string().contains("Siti"), "{v}");

        // Liaisons (of the agency or another) and analysts get no list; the agency's liaison
        // sees its tickets flagged overdue in its own inbox.
        for token in [&dishub, &dinkes, &analyst] {
            let (st, e) = n.get("/api/v1/escalations", Some(token)).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        }
        let (_, inbox) = n.get("/api/v1/tickets", Some(&dishub)).await;
        let mine = inbox["items"].as_array().unwrap();
        assert_eq!(mine.len(), 2, "{inbox}");
        assert!(mine.iter().all(|t| t["overdue"] == true), "{inbox}");
        let (_, other) = n.get("/api/v1/tickets", Some(&dinkes)).await;
        assert!(other["items"].as_array().unwrap().is_empty(), "{other}");

        let m = metrics(&n).await;
        assert!(
            m.contains(r#"lapor_sla_escalations_total{level="verifiers",step="response"} 2"#),
            "{m}"
        );
        assert!(
            !m.contains(r#"lapor_sla_escalations_total{level="verifiers",step="verify_dispatch"}"#),
            "{m}"
        );
        assert!(
            m.contains(r#"lapor_sla_breaches_total{step="verify_dispatch"} 1"#),
            "{m}"
        );
        assert!(
            m.contains(r#"lapor_sla_escalations_open{step="response"} 2"#),
            "{m}"
        );

        // The acknowledgement: refused for a liaison and for an unknown id, changing nothing.
        let id = first["id"].as_str().unwrap().to_owned();
        let ack = format!("/api/v1/escalations/{id}/ack");
        let (st, e) = n.post(&ack, Some(&dishub), &json!({})).await;
        assert_eq!(
            (st, e["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{e}"
        );
        let (st, e) = n
            .post("/api/v1/escalations/nope/ack", Some(&verifier), &json!({}))
            .await;
        assert_eq!(
            (st, e["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{e}"
        );
        let (st, e) = n.post(&ack, None, &json!({})).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{e}");
        assert_eq!(
            list(&n.get("/api/v1/escalations", Some(&verifier)).await.1).len(),
            2
        );
        // The verifier's takes it off the list, with who and when.
        let (st, done) = n.post(&ack, Some(&verifier), &json!({})).await;
        assert_eq!(st, StatusCode::OK, "{done}");
        assert_eq!(done["acknowledged_by"], "verif", "{done}");
        assert!(done["acknowledged_at"].is_string(), "{done}");
        let (_, v) = n.get("/api/v1/escalations", Some(&verifier)).await;
        assert_eq!(list(&v).len(), 1, "{v}");
        assert_ne!(list(&v)[0]["id"], json!(id));
        let (st, e) = n.post(&ack, Some(&verifier), &json!({})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{e}");
        assert!(e["message"].as_str().unwrap().contains("verif"), "{e}");
        let m = metrics(&n).await;
        assert!(
            m.contains(r#"lapor_sla_escalations_open{step="response"} 1"#),
            "{m}"
        );

        // The rows are derived from the breach events: rebuilt when lost, acknowledgements of
        // the rows held kept.
        {
            use diesel::RunQueryDsl as _;
            let me = n.app_state.tickets.node().clone();
            let db = n.app_state.tickets.db();
            let written = db
                .write(move |c| lapor_node::tickets::escalations::rederive(c, &me))
                .unwrap();
            assert_eq!(written, 0);
            let open = list(&n.get("/api/v1/escalations", Some(&verifier)).await.1)[0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let sql = format!("DELETE FROM sla_escalations WHERE event_id = '{open}'");
            db.write(move |c| {
                diesel::sql_query(sql)
                    .execute(c)
                    .map_err(lapor_node::db::DbError::Query)
            })
            .unwrap();
            assert!(list(&n.get("/api/v1/escalations", Some(&verifier)).await.1).is_empty());
            let me = n.app_state.tickets.node().clone();
            let written = db
                .write(move |c| lapor_node::tickets::escalations::rederive(c, &me))
                .unwrap();
            assert_eq!(written, 1);
            let (_, v) = n.get("/api/v1/escalations", Some(&verifier)).await;
            assert_eq!(list(&v).len(), 1, "{v}");
            assert_eq!(list(&v)[0]["id"], json!(open));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_escalations_for_verifiers_and_acknowledges_with_csrf() {
    for db in helpers::backends() {
        let n = Node::start(&db, "").await;
        let verifier = n.officer("verif.api", Role::Verifier, None).await;
        let (code, _) = dispatched(&n, &verifier).await;
        let later = Timestamp::now().plus_millis(12 * DAY_MS);
        assert_eq!(
            n.app_state
                .tickets
                .sla_sweep(later, 1000)
                .unwrap()
                .escalations,
            1
        );

        let v = Client::new(&n.base);
        login(&n.app_state, &v, "verif.web", Role::Verifier, None).await;
        let inbox = v.get("/petugas").await;
        assert_eq!(inbox.status, StatusCode::OK);
        let line = element(&inbox.body, "eskalasi-sla", "</p>").unwrap();
        assert!(
            line.contains("Eskalasi SLA") && line.contains("1 terbuka"),
            "{line}"
        );
        let page = v.get("/petugas/eskalasi").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let table = element(&page.body, "eskalasi", "</table>").unwrap();
        assert!(
            table.contains(&code) && table.contains("DKI-DISHUB"),
            "{table}"
        );
        assert!(table.contains("Tanggapan instansi"), "{table}");
        let (_, api) = n.get("/api/v1/escalations", Some(&verifier)).await;
        let id = list(&api)[0]["id"].as_str().unwrap().to_owned();
        let form = format!("/petugas/eskalasi/{id}");
        assert!(page.body.contains(&form), "{}", page.body);
        let csrf = page.field("csrf").unwrap();

        // A liaison of the agency gets no list and cannot acknowledge.
        let l = Client::new(&n.base);
        login(
            &n.app_state,
            &l,
            "dishub.web",
            Role::Liaison,
            Some("DKI-DISHUB"),
        )
        .await;
        let refused = l.get("/petugas/eskalasi").await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(!refused.body.contains(&code));
        assert!(l.get("/petugas").await.by_id("eskalasi-sla").is_none());
        let liaison_csrf = l.get("/petugas").await.field("csrf").unwrap();
        let a = l.post(&form, &[("csrf", &liaison_csrf)]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);

        // Without (or with a wrong) CSRF token: refused, still open.
        for bad in ["", "0123456789abcdef0123456789abcdef"] {
            let a = v.post(&form, &[("csrf", bad)]).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", db.name);
            assert!(a.body.contains("CSRF"));
        }
        let a = v.post("/petugas/eskalasi/nope", &[("csrf", &csrf)]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(
            list(&n.get("/api/v1/escalations", Some(&verifier)).await.1).len(),
            1
        );

        // With it: acknowledged, back to the list, which is empty.
        let a = v.post(&form, &[("csrf", &csrf)]).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let page = v.get("/petugas/eskalasi?selesai=1").await;
        assert!(page.by_id("eskalasi-kosong").is_some(), "{}", page.body);
        assert!(list(&n.get("/api/v1/escalations", Some(&verifier)).await.1).is_empty());
        let a = v.post(&form, &[("csrf", &csrf)]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert!(a.body.contains("verif.web"), "{}", a.body);
    }
}

/// The hub's alert on `node`, if one holds.
fn breach_alert(health: &Value, node: &str) -> Option<Value> {
    health["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "sla_breaches" && a["node"] == node)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_breaches_of_a_province_raise_the_hub_alert_at_the_threshold() {
    for pg in [None, helpers::postgres()] {
        let dir = tempfile::tempdir().unwrap();
        let opts = lapor_node::demo::cluster::Options {
            extra_toml: "[hub]\nescalate_breaches = 3\nescalate_window_days = 7\n".into(),
            ..Default::default()
        };
        let c = lapor_node::demo::cluster::Cluster::start(
            dir.path(),
            &crate::federation::specs(pg.as_ref()),
            &opts,
        )
        .await
        .unwrap();
        let hub = Api::of(node(&c, HUB));
        let analyst = hub.officer("analis", Role::Analyst, None).await.unwrap();
        let (jkt, ntt) = (Api::of(node(&c, JAKARTA)), Api::of(node(&c, NTT)));
        let jkt_verifier = jkt.officer("v.jkt", Role::Verifier, None).await.unwrap();
        let ntt_verifier = ntt.officer("v.ntt", Role::Verifier, None).await.unwrap();
        let later = Timestamp::now().plus_millis(12 * DAY_MS);

        // Two NTT reports forwarded to a Jakarta agency miss its deadline: two breaches.
        ntt_tickets(&c, 2);
        c.settle(10).await.unwrap();
        let swept = node(&c, JAKARTA).state.tickets.sla_sweep(later, 1000);
        assert_eq!(swept.unwrap().escalations, 2);
        // NTT, the origin, has nothing of its own to sweep (it does not handle them).
        let swept = node(&c, NTT).state.tickets.sla_sweep(later, 1000);
        assert_eq!(swept.unwrap().breaches, 0);
        c.settle(10).await.unwrap();
        // Jakarta's verifiers supervise its agency: the escalations are theirs, not NTT's.
        let (_, v) = jkt
            .get("/api/v1/escalations", Some(&jkt_verifier))
            .await
            .unwrap();
        assert_eq!(list(&v).len(), 2, "{v}");
        let (_, v) = ntt
            .get("/api/v1/escalations", Some(&ntt_verifier))
            .await
            .unwrap();
        assert!(list(&v).is_empty(), "{v}");

        // Below the threshold: no alert.
        let (st, health) = hub
            .get("/api/v1/hub/federation", Some(&analyst))
            .await
            .unwrap();
        assert_eq!(st, 200, "{health}");
        assert_eq!(breach_alert(&health, JAKARTA), None, "{health}");

        // The third reaches it.
        ntt_tickets(&c, 1);
        c.settle(10).await.unwrap();
        let swept = node(&c, JAKARTA).state.tickets.sla_sweep(later, 1000);
        assert_eq!(swept.unwrap().breaches, 1);
        c.settle(10).await.unwrap();
        let (_, health) = hub
            .get("/api/v1/hub/federation", Some(&analyst))
            .await
            .unwrap();
        let alert = breach_alert(&health, JAKARTA).unwrap_or_else(|| panic!("{health}"));
        assert_eq!(
            alert["detail"], "3 SLA breaches in the last 7 day(s) (threshold 3)",
            "{alert}"
        );
        assert_eq!(breach_alert(&health, NTT), None, "{health}");
        let hub_node = node(&c, HUB);
        let m = hub_node.state.metrics.render(&[]);
        assert!(
            m.contains(r#"lapor_federation_alerts_raised_total{kind="sla_breaches"} 1"#),
            "{m}"
        );
        assert!(
            m.contains(r#"lapor_sla_escalations_total{level="hub",step="any"} 1"#),
            "{m}"
        );
        // A week after the breaches the window holds none: the alert clears.
        let scope = lapor_node::api::hub::health_scope(&hub_node.state);
        let db = hub_node.state.tickets.db().clone();
        let metrics = hub_node.state.metrics.clone();
        let week_on = later.plus_millis(8 * DAY_MS);
        let health = tokio::task::spawn_blocking(move || {
            lapor_node::hub::watch::read(&db, &scope, Some(&metrics), week_on)
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            !health.alerts.iter().any(|a| a.kind == "sla_breaches"),
            "{:?}",
            health.alerts
        );
    }
}

#[test]
fn the_hub_escalation_settings_are_checked_at_load_with_the_key_named() {
    let db = helpers::sqlite();
    for (toml, key, words) in [
        (
            "[hub]\nescalate_breaches = 0\n",
            "hub.escalate_breaches",
            "between 1 and 1000000 (got 0)",
        ),
        (
            "[hub]\nescalate_window_days = 0\n",
            "hub.escalate_window_days",
            "between 1 and 366 days (got 0)",
        ),
        (
            "[hub]\nescalate_window_days = 400\n",
            "hub.escalate_window_days",
            "(got 400)",
        ),
    ] {
        let text = format!(
            "[node]\nid = \"hub.lapor.test\"\nprovince = \"31\"\nrole = \"hub\"\n\
             [database]\nurl = {:?}\n{toml}",
            db.url
        );
        let e = lapor_node::config::Settings::from_toml(&text)
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(words), "{e}");
    }
    let text = format!(
        "[node]\nid = \"hub.lapor.test\"\nprovince = \"31\"\nrole = \"hub\"\n\
         [database]\nurl = {:?}\n[hub]\nescalate_breaches = 1\nescalate_window_days = 366\n",
        db.url
    );
    let s = lapor_node::config::Settings::from_toml(&text).unwrap();
    assert_eq!(
        (s.raw.hub.escalate_breaches, s.raw.hub.escalate_window_days),
        (1, 366)
    );
    let unknown =
        "[node]\nid = \"hub.lapor.test\"\nprovince = \"31\"\n[hub]\nescalate_breach = 3\n";
    let e = lapor_node::config::Settings::from_toml(unknown)
        .unwrap_err()
        .to_string();
    assert!(e.contains("escalate_breach"), "{e}");
}
