//! The SMS channel of a real node, through its front door (`/sms/kannel`, called as Kannel's
//! `sms-service` calls it) and a stand-in for Kannel's `sendsms` that records what the node
//! sends and can be made to fail: filing, tracking code back, CEK, follow-up only from the
//! reporter's number, idempotency, refusals, flood limits, blocked numbers, erasure, retries,
//! dead letters and the daily cap. On every backend. (Through real Kannel: `kannel.rs`.)

use std::sync::{Arc, Mutex};

use actix_web::{App as ActixApp, HttpRequest, HttpResponse, HttpServer, web};
use lapor_node::domain::{Role, Timestamp};
use lapor_node::sms::sender::Sender;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::Node;
use crate::helpers::{TestDb, backends};

pub const SECRET: &str = "sms-test-secret-0123456789";
const PHONE: &str = "081234567890";
const PHONE_INTL: &str = "+6281234567890";

/// One accepted `sendsms` call: `(to, text, udh)`.
pub type Call = (String, String, Option<String>);

/// Kannel's `sendsms`, recorded: `(to, text, udh)` per accepted call; answers 503 while down.
#[derive(Clone, Default)]
pub struct FakeGateway {
    pub sent: Arc<Mutex<Vec<Call>>>,
    pub down: Arc<Mutex<bool>>,
}

impl FakeGateway {
    /// Starts it; returns its `sendsms` URL.
    pub fn start(&self) -> String {
        let me = self.clone();
        let server = HttpServer::new(move || {
            let me = me.clone();
            ActixApp::new().default_service(web::to(move |req: HttpRequest| {
                let me = me.clone();
                async move {
                    if *me.down.lock().unwrap() {
                        return HttpResponse::ServiceUnavailable().body("gateway down");
                    }
                    let q: Vec<(String, String)> =
                        url::form_urlencoded::parse(req.query_string().as_bytes())
                            .into_owned()
                            .collect();
                    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    me.sent.lock().unwrap().push((
                        get("to").unwrap_or_default(),
                        get("text").unwrap_or_default(),
                        get("udh"),
                    ));
                    HttpResponse::Accepted().body("0: Accepted for delivery")
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        format!("http://127.0.0.1:{port}/cgi-bin/sendsms")
    }

    pub fn texts_to(&self, to: &str) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == to)
            .map(|(_, text, _)| text.clone())
            .collect()
    }
}

pub struct SmsNode {
    pub node: Node,
    pub gateway: FakeGateway,
    pub sender: Sender,
    n: std::cell::Cell<u32>,
}

impl SmsNode {
    pub async fn start(db: &TestDb, sms: &str) -> Self {
        let gateway = FakeGateway::default();
        let url = gateway.start();
        let node = Node::start(
            db,
            &format!(
                "[sms]\nshared_secret = {SECRET:?}\nsendsms_url = {url:?}\nsendsms_username = \"lapor\"\n\
                 sendsms_password = \"pw\"\nworker = false\n{sms}\n"
            ),
        )
        .await;
        let sender = Sender::new(node.app_state.sms.as_ref().unwrap()).unwrap();
        Self {
            node,
            gateway,
            sender,
            n: std::cell::Cell::new(0),
        }
    }

    /// Kannel's call for a message `text` from `from` (a new message id each time).
    pub async fn sms(&self, from: &str, text: &str) -> (StatusCode, Value) {
        self.n.set(self.n.get() + 1);
        self.sms_id(from, text, &format!("msg-{}", self.n.get()))
            .await
    }

    pub async fn sms_id(&self, from: &str, text: &str, id: &str) -> (StatusCode, Value) {
        let q = [
            ("secret", SECRET),
            ("from", from),
            ("to", "1708"),
            ("text", text),
            ("time", "1796596296"),
            ("id", id),
            ("smsc", "fake"),
            ("coding", "0"),
            ("charset", "UTF-8"),
        ];
        self.node
            .send(self.node.http.get(self.node.url("/sms/kannel")).query(&q))
            .await
    }

    /// Sends every due message; returns the texts the gateway got for `to` since the start.
    pub async fn drain(&self, to: &str) -> Vec<String> {
        self.sender.drain(Timestamp::now()).await.unwrap();
        self.gateway.texts_to(to)
    }
}

fn code_in(text: &str) -> String {
    let at = text.find("Kode: ").unwrap() + 6;
    text[at..at + 12].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_filed_by_sms_gets_its_code_back_and_follow_up_only_from_its_number() {
    for db in backends() {
        let n = SmsNode::start(&db, "").await;
        let (st, v) = n
            .sms(
                PHONE,
                "lapor: Jalan desa rusak parah sejak Januari #infrastruktur @3171",
            )
            .await;
        assert_eq!(
            (st, v["outcome"].as_str()),
            (StatusCode::OK, Some("filed")),
            "{}",
            db.name
        );
        let texts = n.drain(PHONE_INTL).await;
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(
            texts[0].starts_with("LAPOR! Laporan diterima. Kode: 31-"),
            "{}",
            texts[0]
        );
        let code = code_in(&texts[0]);
        // The report: anonymous to officers, from the SMS channel, the number as its contact.
        let id = n.node.ticket_id(&code);
        let admin = n.node.officer("verif1", Role::Verifier, None).await;
        let (_, detail) = n
            .node
            .get(&format!("/api/v1/tickets/{id}"), Some(&admin))
            .await;
        assert_eq!(detail["channel"], "sms");
        assert_eq!(detail["anonymous"], true);
        assert_eq!(detail["category"], "infrastruktur");
        assert_eq!(detail["region"], "3171");
        assert!(detail["reporter"].is_null(), "{detail}");
        assert!(
            !detail.to_string().contains("812345"),
            "the number leaked: {detail}"
        );

        // CEK from the reporter: status and deadline.
        n.sms(
            PHONE,
            &format!("cek {}", code.to_lowercase().replace('-', "")),
        )
        .await;
        let texts = n.drain(PHONE_INTL).await;
        assert!(
            texts[1].contains("diterima, menunggu verifikasi") && texts[1].contains("Batas waktu"),
            "{}",
            texts[1]
        );

        // Follow-up from another number is refused and changes nothing.
        let events = n.node.event_count();
        n.sms("+6289999999999", &format!("BALAS {code} palsu"))
            .await;
        assert_eq!(n.node.event_count(), events);
        let other = n.drain("+6289999999999").await;
        assert!(
            other[0].contains("tidak ditemukan untuk nomor ini"),
            "{other:?}"
        );
        // From the reporter's number it is the citizen's reply.
        n.sms(PHONE, &format!("bls {code} masih rusak pak")).await;
        assert_eq!(n.node.event_count(), events + 1);
        let texts = n.drain(PHONE_INTL).await;
        assert!(texts[2].contains("Balasan Anda untuk laporan"), "{texts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_notify_the_phone_and_erasure_stops_them() {
    for db in backends() {
        let n = SmsNode::start(&db, "").await;
        n.sms(PHONE, "LAPOR lampu jalan mati #transportasi").await;
        let code = code_in(&n.drain(PHONE_INTL).await[0]);
        let id = n.node.ticket_id(&code);
        let v = n.node.officer("verif1", Role::Verifier, None).await;
        let l = n
            .node
            .officer("liaison1", Role::Liaison, Some("DKI-DISHUB"))
            .await;
        let act = |token: String, body: Value| {
            let path = format!("/api/v1/tickets/{id}/actions");
            let node = &n.node;
            async move {
                let (st, b) = node.post(&path, Some(&token), &body).await;
                assert!(st.is_success(), "{body}: {st} {b}");
            }
        };
        act(v.clone(), json!({"action": "verify"})).await;
        act(
            v.clone(),
            json!({"action": "dispatch", "agency": "DKI-DISHUB"}),
        )
        .await;
        act(l.clone(), json!({"action": "start"})).await;
        act(
            l.clone(),
            json!({"action": "respond", "message": "Lampu diganti besok pagi."}),
        )
        .await;
        let texts = n.drain(PHONE_INTL).await;
        assert_eq!(texts.len(), 4, "{texts:?}");
        assert!(texts[1].contains("sudah diverifikasi"), "{texts:?}");
        assert!(
            texts[2].contains("diteruskan ke Dinas Perhubungan"),
            "{texts:?}"
        );
        assert!(
            texts[3].contains("\"Lampu diganti besok pagi.\""),
            "{texts:?}"
        );
        // Erased: the notice already queued is dropped, and no later one goes out.
        act(
            l.clone(),
            json!({"action": "resolve", "message": "Selesai."}),
        )
        .await;
        let admin = n.node.officer("admin1", Role::Admin, None).await;
        let (st, b) = n
            .node
            .post(
                &format!("/api/v1/reports/{code}/erase"),
                Some(&admin),
                &json!({}),
            )
            .await;
        assert!(st.is_success(), "{st} {b}");
        assert_eq!(n.drain(PHONE_INTL).await.len(), 4);
        let (_, outbox) = n.node.get("/api/v1/admin/sms/outbox", Some(&admin)).await;
        assert_eq!(outbox["counts"]["dropped"], 1, "{outbox}");
        assert_eq!(outbox["counts"]["sent"], 4, "{outbox}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_message_files_nothing_twice_and_bad_calls_are_refused() {
    for db in backends() {
        let n = SmsNode::start(&db, "per_number_per_hour = 4").await;
        let (_, first) = n.sms_id(PHONE, "LAPOR sampah menumpuk", "kannel-1").await;
        let (st, again) = n.sms_id(PHONE, "LAPOR sampah menumpuk", "kannel-1").await;
        assert_eq!(
            (first["outcome"].as_str(), st, again["outcome"].as_str()),
            (Some("filed"), StatusCode::OK, Some("duplicate"))
        );
        assert_eq!(n.node.event_count(), 1, "{}", db.name);
        assert_eq!(n.drain(PHONE_INTL).await.len(), 1);

        let get = |q: Vec<(&'static str, &'static str)>| {
            let node = &n.node;
            async move {
                node.send(node.http.get(node.url("/sms/kannel")).query(&q))
                    .await
            }
        };
        let (st, b) = get(vec![
            ("secret", "wrong"),
            ("from", PHONE),
            ("text", "x"),
            ("id", "z"),
        ])
        .await;
        assert_eq!(
            (st, b["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_secret"))
        );
        let (st, b) = get(vec![("secret", SECRET), ("text", "x"), ("id", "z")]).await;
        assert_eq!(
            (st, b["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("missing_field"))
        );
        let (st, b) = n.sms("TELKOMSEL", "promo").await;
        assert_eq!(
            (st, b["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_sender"))
        );
        // Too long: answered, not filed.
        let long = format!("LAPOR {}", "kata ".repeat(300));
        let (st, b) = n.sms(PHONE, &long).await;
        assert_eq!(
            (st, b["outcome"].as_str()),
            (StatusCode::OK, Some("refused"))
        );
        assert!(n.drain(PHONE_INTL).await[1].contains("terlalu panjang"));
        // Flood: the number's fifth message within the hour waits (429, nothing recorded).
        n.sms(PHONE, "BANTUAN").await;
        n.sms(PHONE, "halo").await;
        let (st, b) = n.sms(PHONE, "BANTUAN").await;
        assert_eq!(
            (st, b["error"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("number_rate_limited"))
        );
        assert_eq!(n.drain(PHONE_INTL).await.len(), 4);
        assert_eq!(n.node.event_count(), 1);
        let (_, metrics) = n.node.get("/metrics", None).await;
        assert!(
            metrics
                .as_str()
                .unwrap()
                .contains("lapor_sms_inbound_total{outcome=\"number_rate_limited\"} 1")
        );

        // A node with another gateway address refuses this caller.
        let other = SmsNode::start(
            &crate::helpers::sqlite(),
            "allowed_gateways = [\"192.0.2.1\"]",
        )
        .await;
        let (st, b) = other.sms(PHONE, "BANTUAN").await;
        assert_eq!(
            (st, b["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("gateway_not_allowed"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_numbers_get_nothing_and_a_failing_gateway_dead_letters_after_retries() {
    for db in backends() {
        let n = SmsNode::start(
            &db,
            "max_attempts = 2\nretry_base_secs = 1\ndaily_cap_per_number = 3",
        )
        .await;
        let admin = n.node.officer("admin1", Role::Admin, None).await;
        let (st, b) = n
            .node
            .post(
                "/api/v1/admin/sms/blocked",
                Some(&admin),
                &json!({"number": "0811-000-111"}),
            )
            .await;
        assert_eq!(
            (st, b["blocked"].as_str()),
            (StatusCode::OK, Some("+62811000111"))
        );
        let (st, b) = n.sms("+62811000111", "LAPOR spam").await;
        assert_eq!(
            (st, b["outcome"].as_str()),
            (StatusCode::OK, Some("blocked"))
        );
        assert_eq!(n.node.event_count(), 0);
        assert!(n.drain("+62811000111").await.is_empty());
        let (st, _) = n
            .node
            .post(
                "/api/v1/admin/sms/blocked",
                Some(&admin),
                &json!({"number": "bukan nomor"}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

        // The gateway fails: retried after a delay, then dead-lettered; an admin sends it again.
        *n.gateway.down.lock().unwrap() = true;
        n.sms(PHONE, "BANTUAN").await;
        let s = n.sender.drain(Timestamp::now()).await.unwrap();
        assert_eq!((s.sent, s.failed), (0, 1));
        let later = Timestamp::from_millis(Timestamp::now().millis() + 5_000);
        let s = n.sender.drain(later).await.unwrap();
        assert_eq!((s.sent, s.dead), (0, 1));
        let (_, outbox) = n.node.get("/api/v1/admin/sms/outbox", Some(&admin)).await;
        assert_eq!(outbox["dead"][0]["kind"], "answer", "{outbox}");
        assert!(
            outbox["dead"][0]["last_error"]
                .as_str()
                .unwrap()
                .contains("503")
        );
        assert!(
            !outbox.to_string().contains("812345"),
            "dead letters show no number"
        );
        *n.gateway.down.lock().unwrap() = false;
        let (_, r) = n
            .node
            .post("/api/v1/admin/sms/retry", Some(&admin), &json!({}))
            .await;
        assert_eq!(r["queued"], 1);
        assert_eq!(n.drain(PHONE_INTL).await.len(), 1);

        // The daily cap: the fourth message of the day waits for tomorrow.
        for _ in 0..3 {
            n.sms(PHONE, "BANTUAN").await;
        }
        let s = n.sender.drain(Timestamp::now()).await.unwrap();
        assert_eq!((s.sent, s.capped), (2, 1));
        let tomorrow = Timestamp::from_millis(Timestamp::now().millis() + 86_400_000);
        assert_eq!(n.sender.drain(tomorrow).await.unwrap().sent, 1);
    }
}
