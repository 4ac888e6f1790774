//! The officers' and admins' console pages without a browser: login and session cookie,
//! CSRF refusals, expiry, the inbox, actions allowed and refused, a liaison of another
//! agency, role visibility, and the JSON admin API for officer accounts.

use diesel::RunQueryDsl;
use lapor_node::domain::{AgencyCode, Role, Timestamp};
use reqwest::StatusCode;
use serde_json::json;

use crate::api::Node;
use crate::helpers;
use crate::web::{Client, HOSTILE, file, node, report_form};

const PASSWORD: &str = "correct horse battery";

/// Creates an account and logs `c` in through the form.
pub async fn login(
    n: &lapor_node::api::ApiState,
    c: &Client,
    name: &str,
    role: Role,
    agency: Option<&str>,
) -> String {
    let agency = agency.map(|a| AgencyCode::parse(a).unwrap());
    n.auth
        .add(name, PASSWORD, role, agency, Timestamp::now())
        .unwrap();
    let form = c.get("/petugas/masuk").await;
    let csrf = form.field("csrf").unwrap();
    let a = c
        .post(
            "/petugas/masuk",
            &[("csrf", &csrf), ("username", name), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    c.cookie("lapor_sesi").unwrap()
}

pub fn ticket_id(n: &Node, code: &str) -> String {
    let mut c = n.app_state.tickets.db().read().unwrap();
    let code = lapor_node::domain::TrackingCode::parse(code).unwrap();
    lapor_node::tickets::store::by_tracking_code(&mut c, n.app_state.tickets.codes(), &code)
        .unwrap()
        .unwrap()
        .id
}

fn status(n: &Node, id: &str) -> String {
    let mut c = n.app_state.tickets.db().read().unwrap();
    let id = lapor_node::domain::TicketId::parse(id).unwrap();
    lapor_node::tickets::store::by_id(&mut c, &id)
        .unwrap()
        .unwrap()
        .status
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_forms_without_csrf_change_nothing() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        let (code, _) = file(&c, &report_form("Bus tidak datang", "Halte Blok M", "Budi")).await;
        let id = ticket_id(&n, &code);
        // Without a session: the login form, 401.
        assert_eq!(c.get("/petugas").await.status, StatusCode::UNAUTHORIZED);
        // A login without the form's token is refused.
        n.app_state
            .auth
            .add("v.web", PASSWORD, Role::Verifier, None, Timestamp::now())
            .unwrap();
        let forged = c
            .post(
                "/petugas/masuk",
                &[("username", "v.web"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(forged.body.contains("CSRF"));
        let form = c.get("/petugas/masuk").await;
        let csrf = form.field("csrf").unwrap();
        let wrong = c
            .post(
                "/petugas/masuk",
                &[
                    ("csrf", &csrf),
                    ("username", "v.web"),
                    ("password", "salah salah salah"),
                ],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.body.contains("kata sandi salah"));
        let csrf = wrong.field("csrf").unwrap();
        let ok = c
            .post(
                "/petugas/masuk",
                &[
                    ("csrf", &csrf),
                    ("username", "v.web"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER);
        let cookie = ok.set_cookie("lapor_sesi").unwrap();
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Path=/"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");

        let inbox = c.get("/petugas").await;
        assert_eq!(inbox.status, StatusCode::OK);
        assert!(inbox.body.contains(&code));
        // Actions without, or with a wrong, CSRF token: 403, the ticket unchanged.
        let page = c.get(&format!("/petugas/tiket/{id}")).await;
        assert!(page.body.contains("name=\"action\" value=\"verify\""));
        let token = page.field("csrf").unwrap();
        for bad in ["", "0123456789abcdef0123456789abcdef"] {
            let a = c
                .post(
                    &format!("/petugas/tiket/{id}"),
                    &[("csrf", bad), ("action", "verify")],
                )
                .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", db.name);
        }
        assert_eq!(status(&n, &id), "submitted");
        // With it: done, back to the page.
        let a = c
            .post(
                &format!("/petugas/tiket/{id}"),
                &[("csrf", &token), ("action", "verify")],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        assert_eq!(status(&n, &id), "verified");
        // An action the state does not allow: 409, shown in the page, nothing changes.
        let again = c
            .post(
                &format!("/petugas/tiket/{id}"),
                &[("csrf", &token), ("action", "verify")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(
            again.body.contains("tidak dapat dilakukan"),
            "{}",
            again.body
        );
        // An action of another role (respond is the liaison's): 403.
        let respond = c
            .post(
                &format!("/petugas/tiket/{id}"),
                &[("csrf", &token), ("action", "respond"), ("message", "x")],
            )
            .await;
        assert_eq!(respond.status, StatusCode::FORBIDDEN, "{}", respond.body);
        assert_eq!(status(&n, &id), "verified");
        // Dispatch through the agency picker.
        let a = c
            .post(
                &format!("/petugas/tiket/{id}"),
                &[
                    ("csrf", &token),
                    ("action", "dispatch"),
                    ("agency", "DKI-DISHUB"),
                ],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER);
        assert_eq!(status(&n, &id), "dispatched");

        // Logout needs the token too; then the session is gone.
        assert_eq!(
            c.post("/petugas/keluar", &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            c.post("/petugas/keluar", &[("csrf", &token)]).await.status,
            StatusCode::SEE_OTHER
        );
        assert!(c.cookie("lapor_sesi").is_none());
        assert_eq!(c.get("/petugas").await.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn an_expired_session_gets_the_login_form_and_changes_nothing() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        let (code, _) = file(&c, &report_form("Sampah", "Belum diangkut", "Budi")).await;
        let id = ticket_id(&n, &code);
        login(&n.app_state, &c, "v.exp", Role::Verifier, None).await;
        let token = c
            .get(&format!("/petugas/tiket/{id}"))
            .await
            .field("csrf")
            .unwrap();
        n.app_state
            .tickets
            .db()
            .write(|conn| {
                diesel::sql_query("UPDATE sessions SET expires_at_ms = 0")
                    .execute(conn)
                    .map_err(lapor_node::db::DbError::Query)
            })
            .unwrap();
        let a = c
            .post(
                &format!("/petugas/tiket/{id}"),
                &[("csrf", &token), ("action", "verify")],
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(a.body.contains("Sesi Anda telah berakhir"), "{}", a.body);
        assert_eq!(status(&n, &id), "submitted");
        assert!(
            c.cookie("lapor_sesi").is_none(),
            "the ended session's cookie is removed"
        );
    }
}

#[tokio::test]
async fn liaisons_see_their_agency_only_and_identities_only_where_allowed() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        let (code, _) = file(&c, &report_form("Angkot ugal-ugalan", "Rute 19", HOSTILE)).await;
        let mut anon = report_form("Anonim", "isi", "");
        anon.retain(|(k, _)| *k != "phone" && *k != "name");
        anon.push(("anonim", "on"));
        let (anon_code, _) = file(&c, &anon).await;
        let (id, anon_id) = (ticket_id(&n, &code), ticket_id(&n, &anon_code));
        let v = n.officer("v.lia", Role::Verifier, None).await;
        for t in [&id, &anon_id] {
            n.post(
                &format!("/api/v1/tickets/{t}/actions"),
                Some(&v),
                &json!({"action": "dispatch", "agency": "DKI-DISHUB"}),
            )
            .await;
        }
        // The verifier at the origin sees the reporter (escaped); nobody sees an anonymous one.
        let vc = Client::new(&c.base);
        login(&n.app_state, &vc, "v.page", Role::Verifier, None).await;
        let page = vc.get(&format!("/petugas/tiket/{id}")).await;
        assert!(page.body.contains("&lt;script&gt;"), "{}", db.name);
        assert!(!page.body.contains("<script>alert"));
        assert!(
            page.body.contains("terverifikasi"),
            "the timeline shows verified signatures"
        );
        assert!(page.body.contains("prov-31.lapor.test"));
        // The verifier's inbox filters by agency (a picker of every agency).
        let dishub = vc.get("/petugas?agency=DKI-DISHUB").await;
        assert!(
            dishub.body.contains(&code) && dishub.body.contains("<option value=\"DKI-DINKES\"")
        );
        assert!(
            !vc.get("/petugas?agency=DKI-DINKES")
                .await
                .body
                .contains(&code)
        );
        let anon_page = vc.get(&format!("/petugas/tiket/{anon_id}")).await;
        assert!(
            anon_page
                .by_id("pelapor")
                .unwrap()
                .contains("tidak ditampilkan")
        );

        // A liaison of another agency: 403 with the reason, the inbox holds nothing of it.
        let other = Client::new(&c.base);
        login(
            &n.app_state,
            &other,
            "l.dinkes",
            Role::Liaison,
            Some("DKI-DINKES"),
        )
        .await;
        let refused = other.get(&format!("/petugas/tiket/{id}")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.body.contains("tidak diteruskan ke instansi Anda"));
        assert!(!refused.body.contains("Angkot"));
        assert!(!other.get("/petugas").await.body.contains(&code));
        let asked = other.get("/petugas?agency=DKI-DISHUB").await;
        assert_eq!(asked.status, StatusCode::FORBIDDEN);
        // The agency's liaison: its tickets, the reporter, start/respond only.
        let own = Client::new(&c.base);
        login(
            &n.app_state,
            &own,
            "l.dishub",
            Role::Liaison,
            Some("DKI-DISHUB"),
        )
        .await;
        assert!(own.get("/petugas").await.body.contains(&code));
        let p = own.get(&format!("/petugas/tiket/{id}")).await;
        assert!(p.body.contains("name=\"action\" value=\"start\""));
        assert!(!p.body.contains("name=\"action\" value=\"archive\""));
        assert!(
            p.body.contains("&lt;script&gt;"),
            "the handling liaison sees the reporter"
        );
        let token = p.field("csrf").unwrap();
        let a = own
            .post(
                &format!("/petugas/tiket/{id}"),
                &[("csrf", &token), ("action", "archive"), ("reason", "spam")],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(status(&n, &id), "dispatched");
    }
}

#[tokio::test]
async fn admins_manage_accounts_in_the_browser_and_over_json_and_others_cannot() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        login(&n.app_state, &c, "admin.web", Role::Admin, None).await;
        let page = c.get("/petugas/admin").await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = page.field("csrf").unwrap();
        let add = c
            .post(
                "/petugas/admin",
                &[
                    ("csrf", &csrf),
                    ("op", "add"),
                    ("username", "l.baru"),
                    ("password", PASSWORD),
                    ("role", "liaison"),
                    ("agency", "DKI-DISHUB"),
                ],
            )
            .await;
        assert_eq!(add.status, StatusCode::OK, "{}", add.body);
        assert!(add.body.contains("l.baru"));
        let weak = c
            .post(
                "/petugas/admin",
                &[
                    ("csrf", &csrf),
                    ("op", "add"),
                    ("username", "v.lemah"),
                    ("password", "123"),
                    ("role", "verifier"),
                ],
            )
            .await;
        assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
        let forged = c
            .post(
                "/petugas/admin",
                &[("op", "disable"), ("username", "l.baru")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let off = c
            .post(
                "/petugas/admin",
                &[("csrf", &csrf), ("op", "disable"), ("username", "l.baru")],
            )
            .await;
        assert_eq!(off.status, StatusCode::OK);
        let list = n.app_state.auth.list().unwrap();
        assert!(
            list.iter()
                .any(|(o, disabled)| o.username == "l.baru" && *disabled)
        );
        assert!(!list.iter().any(|(o, _)| o.username == "v.lemah"));
        assert_eq!(c.get("/petugas/federasi").await.status, StatusCode::OK);

        // A verifier sees no admin page.
        let v = Client::new(&c.base);
        login(&n.app_state, &v, "v.bukan", Role::Verifier, None).await;
        assert_eq!(v.get("/petugas/admin").await.status, StatusCode::FORBIDDEN);
        assert!(!v.get("/petugas").await.body.contains("/petugas/admin"));

        // The JSON API: the same rule.
        let admin = n.officer("admin.json", Role::Admin, None).await;
        let (st, _) = n
            .post(
                "/api/v1/admin/officers",
                Some(&admin),
                &json!({"username": "v.json", "password": PASSWORD, "role": "verifier"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, body) = n
            .post(
                "/api/v1/admin/officers",
                Some(&admin),
                &json!({"username": "x.json", "password": PASSWORD, "role": "raja"}),
            )
            .await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
        );
        let (st, _) = n
            .post(
                "/api/v1/admin/officers/v.json/role",
                Some(&admin),
                &json!({"role": "liaison", "agency": "DKI-DINKES"}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = n
            .post(
                "/api/v1/admin/officers/v.json/password",
                Some(&admin),
                &json!({"password": "another long password 2"}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, list) = n.get("/api/v1/admin/officers", Some(&admin)).await;
        assert_eq!(st, StatusCode::OK);
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["username"] == "v.json")
            .unwrap()
            .clone();
        assert_eq!(
            (entry["role"].as_str(), entry["agency"].as_str()),
            (Some("liaison"), Some("DKI-DINKES"))
        );
        let (st, _) = n
            .post(
                "/api/v1/admin/officers/nobody/disable",
                Some(&admin),
                &json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let verifier = n.officer("v.json2", Role::Verifier, None).await;
        let (st, _) = n.get("/api/v1/admin/officers", Some(&verifier)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = n
            .post(
                "/api/v1/admin/officers/v.json/disable",
                Some(&verifier),
                &json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn behind_a_tls_proxy_the_session_cookie_is_secure() {
    let db = helpers::sqlite();
    let (n, c) = node(&db).await;
    n.app_state
        .auth
        .add("v.tls", PASSWORD, Role::Verifier, None, Timestamp::now())
        .unwrap();
    let form = c.get("/petugas/masuk").await;
    let (csrf, pre) = (form.field("csrf").unwrap(), c.cookie("lapor_pra").unwrap());
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf", csrf.as_str()),
            ("username", "v.tls"),
            ("password", PASSWORD),
        ])
        .finish();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/petugas/masuk", n.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", format!("lapor_pra={pre}"))
        .header("X-Forwarded-Proto", "https")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lapor_sesi="))
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}
