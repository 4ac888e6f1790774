//! API rules: the authorisation matrix, privacy in every output path, every bad-input class,
//! the OpenAPI document and metrics.

use lapor_node::domain::{Role, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{Node, report_body};
use crate::helpers;

struct Officers {
    verifier: String,
    liaison: String,
    other_liaison: String,
    admin: String,
    analyst: String,
}

async fn officers(node: &Node) -> Officers {
    Officers {
        verifier: node.officer("verif", Role::Verifier, None).await,
        liaison: node
            .officer("dishub", Role::Liaison, Some("DKI-DISHUB"))
            .await,
        other_liaison: node
            .officer("dinkes", Role::Liaison, Some("DKI-DINKES"))
            .await,
        admin: node.officer("admin", Role::Admin, None).await,
        analyst: node.officer("analis", Role::Analyst, None).await,
    }
}

/// (who, token, method, path, body, expected status)
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<Value>,
    StatusCode,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_matrix() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "").await;
    let o = officers(&node).await;
    let (_, _, id) = node.file(&report_body()).await;
    let dispatched = node
        .post(
            &format!("/api/v1/tickets/{id}/actions"),
            Some(&o.verifier),
            &json!({"action": "dispatch", "agency": "DKI-DISHUB"}),
        )
        .await;
    assert_eq!(dispatched.0, StatusCode::OK);
    let before = node.event_count();

    let none: Option<&str> = None;
    let bad = Some("not-a-real-token");
    let ticket = format!("/api/v1/tickets/{id}");
    let actions = format!("{ticket}/actions");
    // (who, method+path, body, expected status)
    let cases: Vec<Case<'_>> = vec![
        (
            "anonymous",
            none,
            "GET",
            "/api/v1/tickets",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "bad token",
            bad,
            "GET",
            "/api/v1/tickets",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "verifier",
            Some(&o.verifier),
            "GET",
            "/api/v1/tickets",
            None,
            StatusCode::OK,
        ),
        (
            "liaison",
            Some(&o.liaison),
            "GET",
            "/api/v1/tickets",
            None,
            StatusCode::OK,
        ),
        (
            "other liaison",
            Some(&o.other_liaison),
            "GET",
            "/api/v1/tickets",
            None,
            StatusCode::OK,
        ),
        (
            "admin",
            Some(&o.admin),
            "GET",
            "/api/v1/tickets",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "analyst",
            Some(&o.analyst),
            "GET",
            "/api/v1/tickets",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "anonymous",
            none,
            "GET",
            &ticket,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "verifier",
            Some(&o.verifier),
            "GET",
            &ticket,
            None,
            StatusCode::OK,
        ),
        (
            "liaison in scope",
            Some(&o.liaison),
            "GET",
            &ticket,
            None,
            StatusCode::OK,
        ),
        (
            "liaison out of scope",
            Some(&o.other_liaison),
            "GET",
            &ticket,
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "admin",
            Some(&o.admin),
            "GET",
            &ticket,
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "analyst",
            Some(&o.analyst),
            "GET",
            &ticket,
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "anonymous",
            none,
            "POST",
            &actions,
            Some(json!({"action": "start"})),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "verifier starts",
            Some(&o.verifier),
            "POST",
            &actions,
            Some(json!({"action": "start"})),
            StatusCode::FORBIDDEN,
        ),
        (
            "liaison out of scope",
            Some(&o.other_liaison),
            "POST",
            &actions,
            Some(json!({"action": "start"})),
            StatusCode::FORBIDDEN,
        ),
        (
            "liaison verifies",
            Some(&o.liaison),
            "POST",
            &actions,
            Some(json!({"action": "postpone", "note": "x"})),
            StatusCode::FORBIDDEN,
        ),
        (
            "admin acts",
            Some(&o.admin),
            "POST",
            &actions,
            Some(json!({"action": "start"})),
            StatusCode::FORBIDDEN,
        ),
        (
            "analyst acts",
            Some(&o.analyst),
            "POST",
            &actions,
            Some(json!({"action": "start"})),
            StatusCode::FORBIDDEN,
        ),
        (
            "anonymous",
            none,
            "GET",
            "/api/v1/stats",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "verifier",
            Some(&o.verifier),
            "GET",
            "/api/v1/stats",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "liaison",
            Some(&o.liaison),
            "GET",
            "/api/v1/stats",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "admin",
            Some(&o.admin),
            "GET",
            "/api/v1/stats",
            None,
            StatusCode::OK,
        ),
        (
            "analyst",
            Some(&o.analyst),
            "GET",
            "/api/v1/stats",
            None,
            StatusCode::OK,
        ),
        (
            "anonymous",
            none,
            "POST",
            "/api/v1/auth/logout",
            None,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (who, token, method, path, body, expect) in cases {
        let (st, v) = match method {
            "GET" => node.get(path, token).await,
            _ => node.post(path, token, &body.unwrap_or(json!({}))).await,
        };
        assert_eq!(st, expect, "{who} {method} {path}: {v}");
        if !st.is_success() {
            assert!(
                v["error"].is_string() && v["message"].is_string(),
                "{who} {method} {path}: {v}"
            );
        }
    }
    assert_eq!(
        node.event_count(),
        before,
        "a refused request wrote an event"
    );
    // Scope of the inbox: the other agency's liaison sees nothing, and may not ask for it.
    let (_, v) = node.get("/api/v1/tickets", Some(&o.other_liaison)).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    let (st, _) = node
        .get("/api/v1/tickets?agency=DKI-DISHUB", Some(&o.other_liaison))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, v) = node.get("/api/v1/tickets", Some(&o.liaison)).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    // In scope, the liaison's action works; logout revokes the token.
    assert_eq!(
        node.post(&actions, Some(&o.liaison), &json!({"action": "start"}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        node.post("/api/v1/auth/logout", Some(&o.liaison), &json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        node.get("/api/v1/tickets", Some(&o.liaison)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

fn contains_identity(v: &str) -> bool {
    v.contains("Siti") || v.contains("628111222333") || v.contains("siti@example.org")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporter_identity_only_reaches_origin_verifiers_and_the_handling_agency_of_non_anonymous_reports()
 {
    let db = helpers::sqlite();
    let node = Node::start(&db, "").await;
    let o = officers(&node).await;
    let (code_open, tok_open, id_open) = node.file(&report_body()).await;
    let mut anon = report_body();
    anon["anonymous"] = json!(true);
    let (code_anon, tok_anon, id_anon) = node.file(&anon).await;
    for id in [&id_open, &id_anon] {
        node.post(
            &format!("/api/v1/tickets/{id}/actions"),
            Some(&o.verifier),
            &json!({"action": "dispatch", "agency": "DKI-DISHUB"}),
        )
        .await;
    }
    // The allowed paths: the origin's verifier, and the liaison of the agency handling it
    // (to call the reporter back).
    for who in [&o.verifier, &o.liaison] {
        let (_, v) = node
            .get(&format!("/api/v1/tickets/{id_open}"), Some(who))
            .await;
        assert_eq!(v["reporter"]["phone"], "+628111222333", "{v}");
    }
    // Every other path.
    let mut outputs = vec![
        node.get(&format!("/api/v1/tickets/{id_anon}"), Some(&o.verifier))
            .await
            .1,
        node.get(&format!("/api/v1/tickets/{id_anon}"), Some(&o.liaison))
            .await
            .1,
        node.get("/api/v1/tickets", Some(&o.verifier)).await.1,
        node.get("/api/v1/tickets", Some(&o.liaison)).await.1,
        node.get("/api/v1/stats", Some(&o.analyst)).await.1,
        node.get(&format!("/api/v1/reports/{code_open}"), None)
            .await
            .1,
        node.get(&format!("/api/v1/reports/{code_anon}"), None)
            .await
            .1,
    ];
    for (code, tok) in [(&code_open, &tok_open), (&code_anon, &tok_anon)] {
        let path = format!("/api/v1/reports/{code}");
        outputs.push(
            node.send(
                node.http
                    .get(node.url(&path))
                    .header("X-Follow-Up-Token", tok.as_str()),
            )
            .await
            .1,
        );
    }
    for out in &outputs {
        assert!(
            !contains_identity(&out.to_string()),
            "identity leaked: {out}"
        );
    }
    let metrics = node
        .http
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!contains_identity(&metrics));
    // Nor is it in the event log.
    let mut c = node.app_state.tickets.db().read().unwrap();
    for row in lapor_node::event_log::store::page(&mut c, None, 1000).unwrap() {
        assert!(!contains_identity(&row.raw), "identity in event {}", row.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_a_precise_error_and_changes_nothing() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "intake_per_minute = 0\nmax_body_bytes = 4096").await;
    let o = officers(&node).await;
    let (_, _, id) = node.file(&report_body()).await;
    let before = node.event_count();
    let with = |k: &str, v: Value| {
        let mut b = report_body();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = report_body();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let raw = |s: &'static str| {
        node.http
            .post(node.url("/api/v1/reports"))
            .header("content-type", "application/json")
            .body(s)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "malformed json",
            raw("{\"kind\": "),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "not json at all",
            raw("hello"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "wrong content type",
            node.http.post(node.url("/api/v1/reports")).body("{}"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "wrong type",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("anonymous", json!("yes"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "missing field",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&without("title")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "unknown enum",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("kind", json!("keluhan"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "unknown field",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("priority", json!(1))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "title too long",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("title", json!("x".repeat(201)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
        ),
        (
            "body over size limit",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("body", json!("x".repeat(5000)))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "bad region format",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("region", json!("3170"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "unknown region",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("region", json!("9901"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_region",
        ),
        (
            "unknown agency",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("agency", json!("NOPE"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_agency",
        ),
        (
            "NUL in the body",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("body", json!("Lampu mati\u{0000} sejak kemarin"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "ESC in the title",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("title", json!("Lampu \u{001b}[31mmati"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "a line break in the title",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("title", json!("Lampu\nmati"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "BEL in the reporter's name",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("reporter", json!({"name": "Siti\u{0007}"}))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "not anonymous and no contact",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("reporter", Value::Null)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "bad phone",
            node.http
                .post(node.url("/api/v1/reports"))
                .json(&with("reporter", json!({"phone": "call me"}))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "wrong password",
            node.http
                .post(node.url("/api/v1/auth/login"))
                .json(&json!({"username": "verif", "password": "wrong password!!"})),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "archive (legal, sets up the next cases)",
            node.http
                .post(node.url(&format!("/api/v1/tickets/{id}/actions")))
                .bearer_auth(&o.verifier)
                .json(&json!({"action": "archive", "reason": "spam"})),
            StatusCode::OK,
            "",
        ),
        (
            "unknown action",
            node.http
                .post(node.url(&format!("/api/v1/tickets/{id}/actions")))
                .bearer_auth(&o.verifier)
                .json(&json!({"action": "teleport"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "dispatch to unknown agency",
            node.http
                .post(node.url(&format!("/api/v1/tickets/{id}/actions")))
                .bearer_auth(&o.verifier)
                .json(&json!({"action": "dispatch", "agency": "NOPE"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_agency",
        ),
        (
            "illegal transition: verify an archived ticket",
            node.http
                .post(node.url(&format!("/api/v1/tickets/{id}/actions")))
                .bearer_auth(&o.verifier)
                .json(&json!({"action": "verify"})),
            StatusCode::CONFLICT,
            "illegal_transition",
        ),
        (
            "bad limit",
            node.http
                .get(node.url("/api/v1/tickets?limit=1000"))
                .bearer_auth(&o.verifier),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "bad status filter",
            node.http
                .get(node.url("/api/v1/tickets?status=lost"))
                .bearer_auth(&o.verifier),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "bad query type",
            node.http
                .get(node.url("/api/v1/tickets?overdue=maybe"))
                .bearer_auth(&o.verifier),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "unknown ticket",
            node.http
                .get(node.url("/api/v1/tickets/0190a0c0-0000-7000-8000-000000000000"))
                .bearer_auth(&o.verifier),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    let mut expected_events = before;
    for (name, req, expect, code) in cases {
        let (st, v) = node.send(req).await;
        assert_eq!(st, expect, "{name}: {v}");
        if expect == StatusCode::OK {
            expected_events += 1; // the one legal archive, so the following case is illegal
        } else {
            assert_eq!(v["error"], code, "{name}: {v}");
            assert!(
                v["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{name}: {v}"
            );
        }
        assert_eq!(
            node.event_count(),
            expected_events,
            "{name} changed something"
        );
    }
    // Expired token.
    let auth = &node.app_state.auth;
    let (token, _, _) = auth
        .login(
            "verif",
            "correct horse battery",
            Timestamp::now().plus_millis(-10 * 86_400_000),
        )
        .unwrap();
    let (st, v) = node.get("/api/v1/tickets", Some(&token)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_is_rate_limited_per_client_address() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "intake_per_minute = 3").await;
    for _ in 0..3 {
        node.file(&report_body()).await;
    }
    let before = node.event_count();
    let (st, v) = node.post("/api/v1/reports", None, &report_body()).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"], "rate_limited");
    assert_eq!(node.event_count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_and_metrics_count_requests() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "").await;
    let (st, doc) = node.get("/api-docs/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in lapor_node::api::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
        // And the route really is served (not the catch-all).
        let url = node.url(
            &path
                .replace("{tracking_code}", "31-AAAA-AAAA")
                .replace("{id}", "x"),
        );
        let req = if *method == "get" {
            node.http.get(url)
        } else {
            node.http.post(url).json(&json!({}))
        };
        let (_, v) = node.send(req).await;
        assert!(
            !v["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("no route"),
            "{method} {path} is not served: {v}"
        );
    }
    let (st, v) = node.get("/api/v1/nothing-here", None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    node.file(&report_body()).await;
    let text = node
        .http
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "lapor_http_requests_total{method=\"POST\",route=\"/api/v1/reports\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("lapor_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("lapor_tickets{status=\"submitted\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lapor_sla_breached_tickets{step=\"response\"} 0"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_erases_personal_data_over_the_api() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "").await;
    let o = officers(&node).await;
    let (code, _, id) = node.file(&report_body()).await;
    let path = format!("/api/v1/reports/{code}/erase");
    for token in [&o.verifier, &o.liaison, &o.analyst] {
        assert_eq!(
            node.post(&path, Some(token), &json!({})).await.0,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        node.post(&path, None, &json!({})).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, before) = node
        .get(&format!("/api/v1/tickets/{id}"), Some(&o.verifier))
        .await;
    assert_eq!(before["reporter"]["name"], "Siti Rahayu");
    assert_eq!(
        node.post(&path, Some(&o.admin), &json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, after) = node
        .get(&format!("/api/v1/tickets/{id}"), Some(&o.verifier))
        .await;
    assert!(after["reporter"].is_null(), "{after}");
    assert!(
        after["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["verified"] == true),
        "{after}"
    );
    assert_eq!(
        node.post(&path, Some(&o.admin), &json!({})).await.0,
        StatusCode::CONFLICT
    );
}
