//! The HTTP API of a real node (port 0, own database) driven over HTTP: lifecycle, follow-up,
//! authorisation matrix, privacy, bad input, OpenAPI, metrics.

use lapor_node::app::App;
use lapor_node::domain::{AgencyCode, Role, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{self, DAY_MS, TestDb};

pub struct Node {
    pub base: String,
    pub http: reqwest::Client,
    pub app_state: lapor_node::api::ApiState,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// A node on port 0; `http` holds extra lines of the `[http]` section.
    pub async fn start(db: &TestDb, http: &str) -> Self {
        let settings =
            helpers::settings(db, &format!("[http]\nlisten = \"127.0.0.1:0\"\n{http}\n"));
        let app = App::build(&settings).unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let app_state = app.state().clone();
        let server = tokio::spawn(app.run_until_stopped());
        Self {
            base,
            http: reqwest::Client::new(),
            app_state,
            _server: server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn officer(&self, name: &str, role: Role, agency: Option<&str>) -> String {
        let agency = agency.map(|a| AgencyCode::parse(a).unwrap());
        self.app_state
            .auth
            .add(
                name,
                "correct horse battery",
                role,
                agency,
                Timestamp::now(),
            )
            .unwrap();
        let r = self
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"username": name, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.1);
        r.1["token"].as_str().unwrap().to_owned()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn citizen(&self, path: &str, follow_up: &str, body: &Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(path))
                .header("X-Follow-Up-Token", follow_up)
                .json(body),
        )
        .await
    }

    pub async fn file(&self, body: &Value) -> (String, String, String) {
        let (st, v) = self.post("/api/v1/reports", None, body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let code = v["tracking_code"].as_str().unwrap().to_owned();
        let token = v["follow_up_token"].as_str().unwrap().to_owned();
        let id = self.ticket_id(&code);
        (code, token, id)
    }

    pub fn ticket_id(&self, code: &str) -> String {
        let mut c = self.app_state.tickets.db().read().unwrap();
        let code = lapor_node::domain::TrackingCode::parse(code).unwrap();
        let codes = self.app_state.tickets.codes();
        lapor_node::tickets::store::by_tracking_code(&mut c, codes, &code)
            .unwrap()
            .unwrap()
            .id
    }

    pub fn event_count(&self) -> i64 {
        let mut c = self.app_state.tickets.db().read().unwrap();
        lapor_node::event_log::store::count(&mut c).unwrap()
    }
}

pub fn report_body() -> Value {
    json!({
        "kind": "pengaduan",
        "title": "Lampu lalu lintas mati",
        "body": "Lampu lalu lintas di simpang Kuningan mati sejak kemarin malam.",
        "category": "transportasi",
        "region": "3171",
        "agency": "DKI-DISHUB",
        "channel": "web",
        "reporter": {"name": "Siti Rahayu", "phone": "+628111222333", "email": "siti@example.org"}
    })
}

fn action(kind: &str) -> Value {
    match kind {
        "dispatch" => json!({"action": "dispatch", "agency": "DKI-DISHUB"}),
        "respond" => json!({"action": "respond", "message": "Petugas sudah dikirim."}),
        "resolve" => json!({"action": "resolve", "message": "Lampu sudah menyala."}),
        "postpone" => json!({"action": "postpone", "note": "menunggu konfirmasi"}),
        other => json!({"action": other}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_over_http_on_every_backend() {
    for db in helpers::backends() {
        let node = Node::start(&db, "").await;
        let verifier = node.officer("verifikator", Role::Verifier, None).await;
        let liaison = node
            .officer("dishub", Role::Liaison, Some("DKI-DISHUB"))
            .await;
        let (code, follow_up, id) = node.file(&report_body()).await;
        assert!(code.starts_with("31-") && code.len() == 12, "{code}");

        let (st, v) = node.get(&format!("/api/v1/reports/{code}"), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "submitted");

        for (token, act, expect) in [
            (&verifier, "verify", "verified"),
            (&verifier, "dispatch", "dispatched"),
            (&liaison, "start", "in_progress"),
            (&liaison, "respond", "responded"),
        ] {
            let (st, v) = node
                .post(
                    &format!("/api/v1/tickets/{id}/actions"),
                    Some(token),
                    &action(act),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{}: {act}: {v}", db.name);
            assert_eq!(v["status"], expect);
        }
        // The citizen sees the response, replies, and the ticket goes back to the agency.
        let (_, v) = node.get(&format!("/api/v1/reports/{code}"), None).await;
        assert!(
            v["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["message"] == "Petugas sudah dikirim.")
        );
        let (st, v) = node
            .citizen(
                &format!("/api/v1/reports/{code}/replies"),
                &follow_up,
                &json!({"message": "Masih mati pagi ini."}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "in_progress");
        for act in ["respond", "resolve"] {
            let (st, v) = node
                .post(
                    &format!("/api/v1/tickets/{id}/actions"),
                    Some(&liaison),
                    &action(act),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
        // A rating out of range is the field's fault (422), not the ticket state's (409).
        let (st, v) = node
            .citizen(
                &format!("/api/v1/reports/{code}/rating"),
                &follow_up,
                &json!({"rating": 6}),
            )
            .await;
        assert_eq!(
            (st, v["error"].as_str(), v["message"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("invalid_field"),
                Some("rating: must be between 1 and 5")
            ),
            "{v}"
        );
        let (st, v) = node
            .citizen(
                &format!("/api/v1/reports/{code}/rating"),
                &follow_up,
                &json!({"rating": 4}),
            )
            .await;
        assert_eq!(
            (st, v["status"].as_str()),
            (StatusCode::OK, Some("closed")),
            "{v}"
        );
        // Reopen within the window.
        let (st, v) = node
            .citizen(
                &format!("/api/v1/reports/{code}/reopen"),
                &follow_up,
                &json!({"message": "Mati lagi."}),
            )
            .await;
        assert_eq!(
            (st, v["status"].as_str()),
            (StatusCode::OK, Some("reopened")),
            "{v}"
        );

        // A second report is auto-closed by the SLA job ten working days after the response.
        let (code2, _, id2) = node.file(&report_body()).await;
        for (token, act) in [(&verifier, "dispatch"), (&liaison, "respond")] {
            let (st, _) = node
                .post(
                    &format!("/api/v1/tickets/{id2}/actions"),
                    Some(token),
                    &action(act),
                )
                .await;
            assert_eq!(st, StatusCode::OK);
        }
        let later = Timestamp::now().plus_millis(16 * DAY_MS);
        let swept = node.app_state.tickets.sla_sweep(later, 1000).unwrap();
        assert_eq!(swept.closed, 1);
        let (_, v) = node.get(&format!("/api/v1/reports/{code2}"), None).await;
        assert_eq!(v["status"], "closed", "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_up_needs_the_token_and_confidential_reports_stay_hidden() {
    let db = helpers::sqlite();
    let node = Node::start(&db, "").await;
    let mut body = report_body();
    body["confidential"] = json!(true);
    let (code, token, _) = node.file(&body).await;
    let path = format!("/api/v1/reports/{code}");
    assert_eq!(node.get(&path, None).await.0, StatusCode::NOT_FOUND);
    let with = node
        .send(
            node.http
                .get(node.url(&path))
                .header("X-Follow-Up-Token", &token),
        )
        .await;
    assert_eq!(with.0, StatusCode::OK, "{}", with.1);
    let wrong = node
        .send(
            node.http
                .get(node.url(&path))
                .header("X-Follow-Up-Token", "nope"),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::NOT_FOUND);
    let before = node.event_count();
    let (st, v) = node
        .post(
            &format!("{path}/replies"),
            None,
            &json!({"message": "halo"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let (st, _) = node
        .citizen(
            &format!("{path}/replies"),
            "wrong-token",
            &json!({"message": "halo"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Rating a report that is not resolved is an illegal transition.
    let (st, v) = node
        .citizen(&format!("{path}/rating"), &token, &json!({"rating": 5}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(node.event_count(), before);
    assert_eq!(
        node.get("/api/v1/reports/31-AAAA-AAAA", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        node.get("/api/v1/reports/not-a-code", None).await.0,
        StatusCode::BAD_REQUEST
    );
}
