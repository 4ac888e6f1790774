//! The national statistics API of a real node, over HTTP: a fixed scenario whose figures are
//! counted by hand (every group-by key at least once), small-cell suppression for the public
//! and the open-data export, roles, and every kind of bad input.

use lapor_node::domain::{
    Actor, AgencyCode, Category, Channel, RegionCode, ReportKind, Role, TicketId, Timestamp,
};
use lapor_node::hub::cells::day_of;
use lapor_node::tickets::{Action, Tickets};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::Node;
use crate::helpers::{self, DAY_MS, liaison, verifier};

const H: i64 = 3_600_000;

fn file(
    t: &Tickets,
    region: &str,
    kind: ReportKind,
    channel: Channel,
    category: &str,
    at: Timestamp,
) -> TicketId {
    let mut r = crate::api_report();
    r.region = RegionCode::parse(region).unwrap();
    r.kind = kind;
    r.channel = channel;
    r.category = Category::parse(category).unwrap();
    t.submit(&r, &Actor::citizen(), at).unwrap().event.ticket
}

/// The scenario; returns the filing days (WIB) of its three groups: 40, 10 and 2 days ago.
///
/// - T1 3171 pengaduan web infrastruktur, 40 days ago: verified, dispatched to DKI-DISHUB,
///   started, resolved (its first answer), rated 4 (closed);
/// - T2 3171 pengaduan sms infrastruktur, 40 days ago: dispatched to DKI-DISHUB, returned by
///   its liaison as not their authority (open);
/// - T3 3172 aspirasi web kesehatan, 10 days ago: submitted (open);
/// - T4 31 pengaduan web kesehatan, 10 days ago: archived;
/// - T5–T10 3171 pengaduan web infrastruktur, 2 days ago: submitted (open).
fn scenario(t: &Tickets) -> [String; 3] {
    use ReportKind::{Aspirasi, Pengaduan};
    let now = Timestamp::now();
    let (d40, d10, d2) = (
        now.plus_millis(-40 * DAY_MS),
        now.plus_millis(-10 * DAY_MS),
        now.plus_millis(-2 * DAY_MS),
    );
    let dishub = || AgencyCode::parse("DKI-DISHUB").unwrap();
    let act = |id: &TicketId, actor: Actor, action: Action, at: Timestamp| {
        t.act(id, &actor, action, at).unwrap();
    };
    let t1 = file(t, "3171", Pengaduan, Channel::Web, "infrastruktur", d40);
    act(&t1, verifier(), Action::Verify, d40.plus_millis(H));
    act(
        &t1,
        verifier(),
        Action::Dispatch { agency: dishub() },
        d40.plus_millis(2 * H),
    );
    act(
        &t1,
        liaison("DKI-DISHUB"),
        Action::Start,
        d40.plus_millis(5 * H),
    );
    act(
        &t1,
        liaison("DKI-DISHUB"),
        Action::Resolve {
            message: "selesai".into(),
        },
        d40.plus_millis(2 * DAY_MS),
    );
    act(
        &t1,
        Actor::citizen(),
        Action::Rate { rating: 4 },
        d40.plus_millis(3 * DAY_MS),
    );
    let t2 = file(t, "3171", Pengaduan, Channel::Sms, "infrastruktur", d40);
    act(
        &t2,
        verifier(),
        Action::Dispatch { agency: dishub() },
        d40.plus_millis(H),
    );
    act(
        &t2,
        liaison("DKI-DISHUB"),
        Action::NotOurAuthority {
            note: "jalan nasional".into(),
        },
        d40.plus_millis(30 * H),
    );
    file(t, "3172", Aspirasi, Channel::Web, "kesehatan", d10);
    let t4 = file(t, "31", Pengaduan, Channel::Web, "kesehatan", d10);
    act(
        &t4,
        verifier(),
        Action::Archive {
            reason: lapor_node::domain::event::ArchiveReason::Duplicate,
        },
        d10.plus_millis(H),
    );
    for _ in 0..6 {
        file(t, "3171", Pengaduan, Channel::Web, "infrastruktur", d2);
    }
    [day_of(d40), day_of(d10), day_of(d2)]
}

async fn get_stats(node: &Node, token: &str, q: &str) -> (StatusCode, Value) {
    node.get(&format!("/api/v1/hub/stats?{q}"), Some(token))
        .await
}

/// `rows` as `(key values joined by '/', figure)`, sorted.
fn column(v: &Value, figure: &str) -> Vec<(String, Value)> {
    let keys: Vec<String> = v["group_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut out: Vec<(String, Value)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                keys.iter()
                    .map(|k| r[k].as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join("/"),
                r[figure].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn pairs(list: &[(&str, Value)]) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = list
        .iter()
        .map(|(k, n)| ((*k).to_owned(), n.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_statistics_match_the_hand_counted_scenario() {
    for db in helpers::backends() {
        let node = Node::start(&db, "").await;
        let days = scenario(&node.app_state.tickets);
        let analyst = node.officer("analis", Role::Analyst, None).await;
        let by = |key: &str| format!("group_by={key}");
        let (st, v) = get_stats(&node, &analyst, &by("kind")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            column(&v, "count"),
            pairs(&[("aspirasi", json!(1)), ("pengaduan", json!(9))]),
            "{}",
            db.name
        );
        let (_, v) = get_stats(&node, &analyst, &by("regency")).await;
        assert_eq!(
            column(&v, "count"),
            pairs(&[("", json!(1)), ("3171", json!(8)), ("3172", json!(1))])
        );
        let (_, v) = get_stats(&node, &analyst, &by("channel")).await;
        assert_eq!(
            column(&v, "count"),
            pairs(&[("sms", json!(1)), ("web", json!(9))])
        );
        let (_, v) = get_stats(&node, &analyst, &by("category")).await;
        assert_eq!(
            column(&v, "count"),
            pairs(&[("infrastruktur", json!(8)), ("kesehatan", json!(2))])
        );
        // T2 counts under the agency that returned it (its last dispatch).
        let (_, v) = get_stats(&node, &analyst, &by("agency")).await;
        assert_eq!(
            column(&v, "count"),
            pairs(&[("", json!(8)), ("DKI-DISHUB", json!(2))])
        );
        let (_, v) = get_stats(&node, &analyst, &by("status")).await;
        assert_eq!(
            column(&v, "count"),
            pairs(&[
                ("archived", json!(1)),
                ("closed", json!(1)),
                ("not_our_authority", json!(1)),
                ("submitted", json!(7))
            ])
        );
        let (_, v) = get_stats(&node, &analyst, &by("province")).await;
        assert_eq!(column(&v, "count"), pairs(&[("31", json!(10))]));
        let (_, v) = get_stats(&node, &analyst, &by("day")).await;
        assert_eq!(
            column(&v, "count"),
            pairs(&[
                (days[0].as_str(), json!(2)),
                (days[1].as_str(), json!(2)),
                (days[2].as_str(), json!(6))
            ])
        );
        let (_, v) = get_stats(&node, &analyst, &by("month")).await;
        let total: i64 = column(&v, "count")
            .iter()
            .map(|(_, n)| n.as_i64().unwrap())
            .sum();
        assert_eq!(total, 10);
        assert_eq!(column(&v, "count").first().unwrap().0, days[0][..7]);
        // Two keys and a filter.
        let (_, v) = get_stats(&node, &analyst, "group_by=kind,status&regency=3171").await;
        assert_eq!(
            column(&v, "count"),
            pairs(&[
                ("pengaduan/closed", json!(1)),
                ("pengaduan/not_our_authority", json!(1)),
                ("pengaduan/submitted", json!(6))
            ])
        );
        // A period of the last five days only.
        let from = day_of(Timestamp::now().plus_millis(-5 * DAY_MS));
        let (_, v) = get_stats(&node, &analyst, &format!("group_by=kind&from={from}")).await;
        assert_eq!(column(&v, "count"), pairs(&[("pengaduan", json!(6))]));

        let (st, v) = node
            .get("/api/v1/hub/sla?group_by=agency", Some(&analyst))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let rows = v["rows"].as_array().unwrap();
        let dishub = rows.iter().find(|r| r["agency"] == "DKI-DISHUB").unwrap();
        for (figure, want) in [
            ("tickets", json!(2)),
            ("verified_on_time", json!(2)),
            ("dispatched_on_time", json!(2)),
            ("responded_on_time", json!(1)),
            ("responded_late", json!(0)),
            ("resolved_on_time", json!(1)),
            ("rated", json!(1)),
            ("average_rating", json!(4.0)),
            ("verified_on_time_pct", json!(100.0)),
        ] {
            assert_eq!(dishub[figure], want, "{figure} in {dishub}");
        }
        let none = rows.iter().find(|r| r["agency"] == "").unwrap();
        assert_eq!(
            (none["tickets"].clone(), none["verified_on_time"].clone()),
            (json!(8), json!(0))
        );
        let (_, v) = node
            .get("/api/v1/hub/sla?group_by=province", Some(&analyst))
            .await;
        assert_eq!(column(&v, "tickets"), pairs(&[("31", json!(10))]));

        let (st, v) = node
            .get("/api/v1/hub/flows?group_by=origin,handler", Some(&analyst))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let flow = &v["rows"][0];
        assert_eq!(
            (flow["origin"].clone(), flow["handler"].clone()),
            (json!("31"), json!("prov-31.lapor.test"))
        );
        // T1 started 3 h after dispatch, T2 returned 29 h after: one in [1, 4) h, one in [24, 48) h.
        for (figure, want) in [
            ("dispatches", json!(2)),
            ("acted", json!(2)),
            ("returns", json!(1)),
            ("returns_pct", json!(50.0)),
            ("first_action_under_4h", json!(1)),
            ("first_action_under_48h", json!(1)),
            ("median_hours_to_first_action", json!(4.0)),
        ] {
            assert_eq!(flow[figure], want, "{figure} in {flow}");
        }

        let (st, v) = node
            .get("/api/v1/hub/backlog?group_by=status", Some(&analyst))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            column(&v, "open"),
            pairs(&[("not_our_authority", json!(1)), ("submitted", json!(7))])
        );
        let (_, v) = node.get("/api/v1/hub/backlog", Some(&analyst)).await;
        let all = &v["rows"][0];
        for (figure, want) in [
            ("open", json!(8)),
            ("age_0_3_days", json!(6)),
            ("age_8_14_days", json!(1)),
            ("age_31_60_days", json!(1)),
            ("age_over_90_days", json!(0)),
        ] {
            assert_eq!(all[figure], want, "{figure} in {all}");
        }
        let (_, v) = node
            .get(
                "/api/v1/hub/backlog?group_by=agency,province",
                Some(&analyst),
            )
            .await;
        assert_eq!(
            column(&v, "open"),
            pairs(&[("/31", json!(7)), ("DKI-DISHUB/31", json!(1))])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_cells_are_suppressed_for_the_public_and_in_the_export() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "").await;
    scenario(&node.app_state.tickets);
    let (st, v) = node.get("/api/v1/hub/stats?group_by=kind", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The public total is exact, so a lone `<5` beside 9 would be the total minus 9: the 9 is
    // withheld too (complementary suppression).
    assert_eq!(
        column(&v, "count"),
        pairs(&[("aspirasi", json!("<5")), ("pengaduan", json!("withheld"))])
    );
    assert_eq!(v["suppressed_below"], 5);
    let (_, all) = node.get("/api/v1/hub/stats", None).await;
    assert_eq!(all["rows"][0]["count"], 10, "{all}");
    // Officials see every figure.
    let analyst = node.officer("analis", Role::Analyst, None).await;
    let (_, v) = node
        .get("/api/v1/hub/stats?group_by=kind", Some(&analyst))
        .await;
    assert_eq!(
        column(&v, "count"),
        pairs(&[("aspirasi", json!(1)), ("pengaduan", json!(9))])
    );
    // A rate over fewer than k tickets is withheld too.
    let (_, v) = node.get("/api/v1/hub/sla?group_by=agency", None).await;
    let dishub = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["agency"] == "DKI-DISHUB")
        .unwrap()
        .clone();
    assert_eq!(
        (dishub["tickets"].clone(), dishub["average_rating"].clone()),
        (json!("<5"), Value::Null)
    );

    let resp = node
        .http
        .get(node.url("/api/v1/hub/export?format=csv&group_by=kind,channel"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = resp.text().await.unwrap();
    assert_eq!(
        body,
        "kind,channel,count\r\naspirasi,web,<5\r\npengaduan,sms,<5\r\npengaduan,web,withheld\r\n"
    );
    let (st, v) = node
        .get("/api/v1/hub/export?dataset=backlog&group_by=status", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        column(&v, "open"),
        pairs(&[
            ("not_our_authority", json!("<5")),
            ("submitted", json!("withheld"))
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_statistics_requests_are_refused_naming_the_parameter() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "").await;
    scenario(&node.app_state.tickets);
    let analyst = node.officer("analis", Role::Analyst, None).await;
    let verifier_token = node.officer("verif", Role::Verifier, None).await;
    let ten_years_ago = day_of(Timestamp::now().plus_millis(-3700 * DAY_MS));
    for (path, status, named) in [
        ("/api/v1/hub/stats?group_by=colour", 422, "group_by"),
        ("/api/v1/hub/stats?group_by=kind,kind", 422, "group_by"),
        ("/api/v1/hub/stats?group_by=day,month", 422, "group_by"),
        ("/api/v1/hub/flows?group_by=kind", 422, "group_by"),
        ("/api/v1/hub/stats?from=2026-13-01", 422, "from"),
        ("/api/v1/hub/stats?to=yesterday", 422, "to"),
        (
            "/api/v1/hub/stats?from=2026-06-01&to=2026-05-01",
            422,
            "from",
        ),
        ("/api/v1/hub/stats?from=1990-01-01", 422, "from"),
        ("/api/v1/hub/stats?to=2999-01-01", 422, "to"),
        ("/api/v1/hub/stats?limit=100000", 422, "limit"),
        ("/api/v1/hub/stats?limit=0", 422, "limit"),
        ("/api/v1/hub/stats?province=3", 422, "province"),
        ("/api/v1/hub/stats?status=lost", 422, "status"),
        ("/api/v1/hub/sla?handler=x", 400, "handler"),
        ("/api/v1/hub/stats?colour=red", 400, "colour"),
        ("/api/v1/hub/stats?province=31&province=32", 400, "province"),
        ("/api/v1/hub/backlog?from=2026-01-01", 400, "from"),
        ("/api/v1/hub/export?format=xml", 422, "format"),
        ("/api/v1/hub/export?dataset=tickets", 422, "dataset"),
    ] {
        let (st, v) = node.get(path, Some(&analyst)).await;
        assert_eq!(st.as_u16(), status, "{path}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(named),
            "{path}: {v}"
        );
        assert!(
            matches!(v["error"].as_str(), Some("invalid_field" | "bad_request")),
            "{path}: {v}"
        );
    }
    let (st, v) = node
        .get(
            &format!(
                "/api/v1/hub/stats?from={ten_years_ago}&to={}",
                day_of(Timestamp::now())
            ),
            Some(&analyst),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("to:"), "{v}");
    // Roles: the public may not read flows and backlog; a verifier may read none of it.
    assert_eq!(
        node.get("/api/v1/hub/flows", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        node.get("/api/v1/hub/backlog", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    for path in [
        "/api/v1/hub/stats",
        "/api/v1/hub/sla",
        "/api/v1/hub/flows",
        "/api/v1/hub/backlog",
    ] {
        let (st, v) = node.get(path, Some(&verifier_token)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    // Nothing was changed by any of it.
    let (_, v) = node.get("/api/v1/hub/stats", Some(&analyst)).await;
    assert_eq!(v["rows"][0]["count"], 10);
}
