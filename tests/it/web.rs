//! The web console through its front door, without a browser: a cookie-keeping HTTP client
//! against a real node (port 0, own database). Citizens' pages here; officers' and admins'
//! in `web_officers`; a real browser in `browser`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::StatusCode;

use crate::api::Node;
use crate::helpers::{self, TestDb};

/// A string that breaks out of any HTML context it is not escaped in.
pub const HOSTILE: &str = "<script>alert(\"x\")</script>' onmouseover=\"y\" &amp;";

/// One answer, read whole (the body as sent: compressed when the client asked).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The value of `<input … name="NAME" value="…">` on the page.
    pub fn field(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &self.body[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].to_owned())
    }

    /// The text of the element with id `id` (first text run).
    pub fn by_id(&self, id: &str) -> Option<String> {
        let at = self.body.find(&format!("id=\"{id}\""))?;
        let rest = &self.body[at..];
        let start = rest.find('>')? + 1;
        let end = rest[start..].find('<')?;
        Some(rest[start..start + end].trim().to_owned())
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// A browser without a browser: keeps cookies, follows no redirect, sends a language.
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
    pub accept_language: &'static str,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Mutex::new(BTreeMap::new()),
            accept_language: "id-ID,id;q=0.9",
        }
    }

    fn cookie_header(&self) -> String {
        let c = self.cookies.lock().unwrap();
        c.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req
            .header("Cookie", self.cookie_header())
            .header("Accept-Language", self.accept_language)
            .send()
            .await
            .unwrap();
        for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            let mut c = self.cookies.lock().unwrap();
            if val.is_empty() || attrs.contains("Max-Age=0") {
                c.remove(k);
            } else {
                c.insert(k.to_owned(), val.to_owned());
            }
        }
        Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: String::from_utf8_lossy(&resp.bytes().await.unwrap()).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// The compressed size of `path` with `encoding` (and the encoding the node chose).
    pub async fn weight(&self, path: &str, encoding: &str) -> (StatusCode, usize, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .header("Accept-Encoding", encoding)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let enc = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, resp.bytes().await.unwrap().len(), enc)
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }
}

/// A node and a console client for it.
pub async fn node(db: &TestDb) -> (Node, Client) {
    let n = Node::start(db, "intake_per_minute = 0\nlookups_per_minute = 0").await;
    let c = Client::new(&n.base);
    (n, c)
}

pub fn report_form<'a>(title: &'a str, body: &'a str, name: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("kind", "pengaduan"),
        ("title", title),
        ("body", body),
        ("category", "transportasi"),
        ("region", "3171"),
        ("agency", "DKI-DISHUB"),
        ("name", name),
        ("phone", "+6281234567890"),
    ]
}

/// Files a report through the form; returns (tracking code, token).
pub async fn file(c: &Client, form: &[(&str, &str)]) -> (String, String) {
    let a = c.post("/lapor", form).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    (a.by_id("kode").unwrap(), a.by_id("token").unwrap())
}

pub fn tickets(n: &Node) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = n.app_state.tickets.db().read().unwrap();
    diesel::sql_query("SELECT COUNT(*) AS n FROM tickets")
        .get_result::<N>(&mut c)
        .unwrap()
        .n
}

#[tokio::test]
async fn a_citizen_files_sees_the_receipt_and_follows_the_report_in_either_language() {
    for db in helpers::backends() {
        let (_n, c) = node(&db).await;
        let home = c.get("/").await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(home.body.contains("<html lang=\"id\""), "{}", db.name);
        assert!(home.body.contains("Kota Kupang") || home.body.contains("Jakarta Selatan"));
        assert!(
            home.body.contains("Tidak tahu"),
            "the agency picker offers 'not sure'"
        );
        let (code, token) = file(
            &c,
            &report_form("Lampu jalan mati", "Sudah seminggu.", "Budi"),
        )
        .await;
        assert!(code.starts_with("31-"), "{code}");
        assert!(token.len() >= 20);

        // Public view: status and timeline, no follow-up forms.
        let public = c.get(&format!("/lacak?kode={code}")).await;
        assert_eq!(public.status, StatusCode::OK);
        assert_eq!(
            public.by_id("status").as_deref(),
            Some("Belum diverifikasi")
        );
        assert!(public.body.contains("Laporan diterima"));
        assert!(!public.body.contains("/lacak/balas"));
        assert!(
            !public.body.contains("Budi"),
            "the public view never names the reporter"
        );
        // With the token: the citizen's forms.
        let mine = c
            .post("/lacak/lihat", &[("kode", &code), ("token", &token)])
            .await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
        assert!(mine.body.contains("/lacak/balas"));
        // A wrong token: the same refusal as an unknown code, nothing shown.
        let wrong = c
            .post("/lacak/lihat", &[("kode", &code), ("token", "salah")])
            .await;
        assert_eq!(wrong.status, StatusCode::NOT_FOUND);
        assert!(wrong.body.contains("Tidak ada laporan dengan kode ini"));
        assert!(!wrong.body.contains("Lampu jalan mati"));
        // A reply before any response is refused by the state machine, in the user's words.
        let early = c
            .post(
                "/lacak/nilai",
                &[("kode", &code), ("token", &token), ("rating", "5")],
            )
            .await;
        assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
        assert!(
            early
                .body
                .contains("tidak dapat dilakukan pada laporan berstatus")
        );

        // English: by Accept-Language, and by the switch (cookie).
        let mut en = Client::new(&c.base);
        en.accept_language = "en-GB,en;q=0.9";
        let page = en.get(&format!("/lacak?kode={code}")).await;
        assert!(page.body.contains("<html lang=\"en\""));
        assert_eq!(page.by_id("status").as_deref(), Some("Submitted"));
        let switch = c.get("/bahasa?ke=en&kembali=%2Flacak").await;
        assert_eq!(switch.status, StatusCode::SEE_OTHER);
        assert_eq!(switch.headers["location"], "/lacak");
        assert!(c.get("/lacak").await.body.contains("Track a report"));
        // The switch goes back only to this site.
        let away = c.get("/bahasa?ke=id&kembali=%2F%2Fevil.example").await;
        assert_eq!(away.headers["location"], "/");
    }
}

#[tokio::test]
async fn every_user_string_is_escaped_on_every_page() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        let (code, token) = file(&c, &report_form(HOSTILE, HOSTILE, HOSTILE)).await;
        for page in [
            c.get(&format!("/lacak?kode={code}")).await,
            c.post("/lacak/lihat", &[("kode", &code), ("token", &token)])
                .await,
            // A refused form echoes what was typed: escaped too.
            c.post("/lapor", &report_form(HOSTILE, "", HOSTILE)).await,
            c.get(&format!(
                "/lacak?kode={}",
                url::form_urlencoded::byte_serialize(HOSTILE.as_bytes()).collect::<String>()
            ))
            .await,
        ] {
            assert!(
                !page.body.contains("<script>alert"),
                "{}: unescaped: {}",
                db.name,
                page.body
            );
            assert!(!page.body.contains("\" onmouseover=\"y"), "{}", db.name);
        }
        let shown = c.get(&format!("/lacak?kode={code}")).await;
        assert!(
            shown
                .body
                .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            "{}",
            shown.body
        );
        // The officers' pages: inbox (title), ticket page (title, text, reporter), a search.
        crate::web_officers::login(
            &n.app_state,
            &c,
            "v.esc",
            lapor_node::domain::Role::Verifier,
            None,
        )
        .await;
        let id = crate::web_officers::ticket_id(&n, &code);
        let q: String = url::form_urlencoded::byte_serialize(HOSTILE.as_bytes()).collect();
        for page in [
            c.get("/petugas").await,
            c.get(&format!("/petugas/tiket/{id}")).await,
            c.get(&format!("/petugas?q={q}")).await,
        ] {
            assert!(
                page.body.contains("&lt;script&gt;"),
                "{}: {}",
                db.name,
                page.body
            );
            assert!(
                !page.body.contains("<script>alert"),
                "{}: unescaped",
                db.name
            );
            assert!(!page.body.contains("\" onmouseover=\"y"), "{}", db.name);
        }
    }
}

#[tokio::test]
async fn a_refused_report_shows_why_in_the_form_and_files_nothing() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        let empty = c.post("/lapor", &report_form("", "isi", "Budi")).await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(empty.body.contains("Judul: wajib diisi"), "{}", empty.body);
        let long = "x".repeat(8_001);
        let too_long = c.post("/lapor", &report_form("Judul", &long, "Budi")).await;
        assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(too_long.body.contains("terlalu panjang"), "{}", db.name);
        let mut nobody = report_form("Judul", "isi", "");
        nobody.retain(|(k, _)| *k != "phone");
        let no_reporter = c.post("/lapor", &nobody).await;
        assert_eq!(no_reporter.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(no_reporter.body.contains("pilih anonim"));
        let mut bad_kind = report_form("Judul", "isi", "Budi");
        bad_kind[0] = ("kind", "gosip");
        assert_eq!(
            c.post("/lapor", &bad_kind).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let mut bad_region = report_form("Judul", "isi", "Budi");
        bad_region[4] = ("region", "99");
        assert_eq!(
            c.post("/lapor", &bad_region).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            tickets(&n),
            0,
            "{}: a refused form filed something",
            db.name
        );
        // Anonymous without contact is fine.
        let mut anon = report_form("Judul", "isi", "");
        anon.retain(|(k, _)| *k != "phone" && *k != "name");
        anon.push(("anonim", "on"));
        file(&c, &anon).await;
        assert_eq!(tickets(&n), 1);
    }
}

#[tokio::test]
async fn pages_are_compressed_and_under_sixty_kilobytes() {
    let db = helpers::sqlite();
    let (n, c) = node(&db).await;
    let (code, _) = file(
        &c,
        &report_form("Jalan berlubang", &"Panjang. ".repeat(500), "Budi"),
    )
    .await;
    for _ in 0..30 {
        file(
            &c,
            &report_form("Jalan berlubang lagi", &"Panjang. ".repeat(200), "Budi"),
        )
        .await;
    }
    let officer = crate::web_officers::login(
        &n.app_state,
        &c,
        "verif.web",
        lapor_node::domain::Role::Verifier,
        None,
    )
    .await;
    let id = crate::web_officers::ticket_id(&n, &code);
    for path in [
        "/".to_owned(),
        format!("/lacak?kode={code}"),
        "/petugas".to_owned(),
        format!("/petugas/tiket/{id}"),
        "/petugas/masuk".to_owned(),
        "/nasional".to_owned(),
    ] {
        for enc in ["br", "gzip"] {
            let (status, bytes, chosen) = c.weight(&path, enc).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            eprintln!("page weight: {path:<45} {enc:<5} {bytes:>6} bytes");
            assert_eq!(chosen, enc, "{path} is not compressed with {enc}");
            assert!(bytes <= 60 * 1024, "{path} weighs {bytes} bytes with {enc}");
        }
    }
    let (_, css, _) = c.weight(lapor_node::web::assets::CSS_PATH, "br").await;
    assert!(css < 4 * 1024);
    drop(officer);
}

#[tokio::test]
async fn the_api_limits_apply_to_the_forms_and_refuse_with_a_page() {
    let db = helpers::sqlite();
    let n = Node::start(&db, "intake_per_minute = 1\nmax_body_bytes = 4096").await;
    let c = Client::new(&n.base);
    file(&c, &report_form("Satu", "isi", "Budi")).await;
    let second = c.post("/lapor", &report_form("Dua", "isi", "Budi")).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(second.headers.contains_key("retry-after"));
    assert!(
        second.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        second.body.contains("Terlalu banyak permintaan"),
        "{}",
        second.body
    );
    let big = "x".repeat(5000);
    let too_big = c
        .post("/lacak/lihat", &[("kode", "31-AAAA-AAAA"), ("token", &big)])
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(too_big.body.contains("terlalu besar"), "{}", too_big.body);
    // Unknown paths keep the API's JSON 404.
    let (st, v) = n.get("/tidak-ada", None).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(tickets(&n), 1);
}

#[tokio::test]
async fn with_the_token_the_citizen_replies_rates_and_reopens() {
    for db in helpers::backends() {
        let (n, c) = node(&db).await;
        let (code, token) = file(&c, &report_form("Trotoar rusak", "Jl. Sudirman", "Budi")).await;
        let id = crate::web_officers::ticket_id(&n, &code);
        let v = n
            .officer("v.fu", lapor_node::domain::Role::Verifier, None)
            .await;
        let l = n
            .officer(
                "l.fu",
                lapor_node::domain::Role::Liaison,
                Some("DKI-DISHUB"),
            )
            .await;
        let act = |who: String, body: serde_json::Value| {
            let path = format!("/api/v1/tickets/{id}/actions");
            let n = &n;
            async move {
                let (st, v) = n.post(&path, Some(&who), &body).await;
                assert_eq!(st, StatusCode::OK, "{v}");
            }
        };
        act(
            v.clone(),
            serde_json::json!({"action": "dispatch", "agency": "DKI-DISHUB"}),
        )
        .await;
        act(
            l.clone(),
            serde_json::json!({"action": "respond", "message": "Sudah kami perbaiki."}),
        )
        .await;
        let reply = c
            .post(
                "/lacak/balas",
                &[
                    ("kode", &code),
                    ("token", &token),
                    ("message", "Belum, masih rusak."),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.body.contains("Balasan Anda terkirim"));
        assert_eq!(reply.by_id("status").as_deref(), Some("Sedang diproses"));
        assert!(
            reply.body.contains("Belum, masih rusak."),
            "the citizen sees their reply"
        );
        // The public does not see the citizen's reply.
        assert!(
            !c.get(&format!("/lacak?kode={code}"))
                .await
                .body
                .contains("Belum, masih rusak.")
        );
        // An empty reply: refused in the form, the report shown again, nothing changes.
        let empty = c
            .post(
                "/lacak/balas",
                &[("kode", &code), ("token", &token), ("message", " ")],
            )
            .await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(empty.body.contains("Pesan: wajib diisi"), "{}", empty.body);
        assert_eq!(empty.by_id("status").as_deref(), Some("Sedang diproses"));
        act(
            l.clone(),
            serde_json::json!({"action": "resolve", "message": "Selesai diperbaiki."}),
        )
        .await;
        let bad = c
            .post(
                "/lacak/nilai",
                &[("kode", &code), ("token", &token), ("rating", "9")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        let rated = c
            .post(
                "/lacak/nilai",
                &[("kode", &code), ("token", &token), ("rating", "4")],
            )
            .await;
        assert_eq!(rated.status, StatusCode::OK);
        assert_eq!(rated.by_id("status").as_deref(), Some("Ditutup"));
        let reopened = c
            .post(
                "/lacak/buka",
                &[
                    ("kode", &code),
                    ("token", &token),
                    ("message", "Rusak lagi."),
                ],
            )
            .await;
        assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.body);
        assert_eq!(reopened.by_id("status").as_deref(), Some("Dibuka kembali"));
        // Without the token: refused before anything is looked up.
        let none = c
            .post("/lacak/buka", &[("kode", &code), ("message", "x")])
            .await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert!(!none.body.contains("Trotoar"));
    }
}
