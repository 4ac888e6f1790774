//! The web console: server-rendered HTML from the node's own binary, for citizens (`/`,
//! `/lacak`) and officers (`/petugas`). Compile-time templates (`maud`: every value escaped),
//! one embedded style sheet, no JavaScript, pages compressed (brotli, gzip, zstd).
//!
//! ```text
//!  browser ─► web::citizen / web::officer / web::admin   (parse the form, call, render)
//!                 │  tickets::{intake, commands, queries}, auth — exactly as api/ does
//!                 ▼
//!             web::*_pages (maud templates) ─► web::layout (shell, node clock) ─► HTML
//!  refusals ─► web::problem (status + message in the user's language, logged, counted)
//! ```
//!
//! | module | role |
//! |---|---|
//! | `i18n` | Bahasa Indonesia (default) and English: detection, names, refusals |
//! | `layout` | the page shell, dates in the node's zone, notices |
//! | `assets` | the embedded style sheet |
//! | `form` | urlencoded form bodies |
//! | `regions` | the regencies of the node's province (reference data) |
//! | `session` | the officer's session cookie and CSRF tokens |
//! | `problem` | refusals of the tickets wing and of `auth` as status and translated text |
//! | `citizen`, `citizen_pages` | filing, receipt, tracking, reply / rate / reopen |
//! | `signin` | login, logout, the session gate of every officer page, the CSRF check |
//! | `officer`, `officer_pages` | inbox, ticket page and actions |
//! | `admin`, `admin_pages` | officer accounts, federation peers and quarantine |
//! | `escalation` | the verifiers' SLA escalations (`/petugas/eskalasi`): list and acknowledgement |
//! | `dashboard`, `charts` | `/nasional`: statistics (public part; analysts more) as SVG bar charts |

pub mod admin;
pub mod admin_pages;
pub mod assets;
pub mod charts;
pub mod citizen;
pub mod citizen_pages;
pub mod dashboard;
pub mod escalation;
pub mod form;
pub mod i18n;
pub mod layout;
pub mod national;
pub mod officer;
pub mod officer_pages;
pub mod problem;
pub mod regions;
pub mod session;
pub mod signin;

use actix_web::http::StatusCode;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::Markup;

use self::i18n::Lang;
use self::layout::{Page, Site};
use crate::api::{ApiState, limits};
use crate::config::Settings;

/// What the console knows of its node besides the handler state.
#[derive(Debug, Clone)]
pub struct Console {
    /// Node, province and clock.
    pub site: Site,
    /// `(code, name)` of the regions a citizen picks from: the province, then its regencies.
    pub regions: Vec<(String, String)>,
    /// The node is the national hub.
    pub hub: bool,
}

impl Console {
    /// The console of the node `settings` describe.
    #[must_use]
    pub fn new(settings: &Settings) -> Self {
        let code = &settings.raw.node.province;
        let hub = settings.raw.node.role == crate::config::NodeRole::Hub;
        let (mut province, zone, offset) = settings.provinces.get(code).map_or_else(
            || (code.to_string(), "UTC".to_owned(), time::UtcOffset::UTC),
            |p| (p.name.clone(), p.zone.clone(), p.offset),
        );
        let mut regions = vec![(code.to_string(), province.clone())];
        regions.extend(regions::of_province(code.as_str()));
        if hub {
            // The hub's own tickets are national agencies'; its header names the nation.
            province = "Nasional".to_owned();
        }
        Self {
            hub,
            site: Site {
                node: settings.node_id().to_string(),
                province,
                zone,
                offset,
            },
            regions,
        }
    }
}

/// One request's context: the handler state, the console, the language and the way back.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Tickets, accounts, limits.
    pub state: web::Data<ApiState>,
    /// The console.
    pub console: web::Data<Console>,
    /// Language.
    pub lang: Lang,
    /// Path and query of the request.
    pub back: String,
}

impl Ctx {
    /// The context of `req` (`None` when the app was built without the console's data).
    #[must_use]
    pub fn of(req: &HttpRequest) -> Option<Self> {
        Some(Self {
            state: req.app_data::<web::Data<ApiState>>()?.clone(),
            console: req.app_data::<web::Data<Console>>()?.clone(),
            lang: Lang::of(req),
            back: req
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
        })
    }

    /// The page frame for this request.
    #[must_use]
    pub fn page(&self) -> Page<'_> {
        Page {
            lang: self.lang,
            back: self.back.clone(),
            site: &self.console.site,
            signed: None,
        }
    }
}

impl actix_web::FromRequest for Ctx {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Self::of(req).ok_or_else(|| {
            actix_web::error::ErrorInternalServerError("the web console is not configured")
        }))
    }
}

/// An HTML answer.
#[must_use]
pub fn html(status: StatusCode, page: &Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.0.clone())
}

/// A `303 See Other` to `to`.
#[must_use]
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, to.to_owned()))
        .finish()
}

/// `GET /bahasa?ke=en&kembali=/lacak`: sets the language cookie and goes back (only to a
/// path on this site).
pub async fn switch_language(req: HttpRequest, q: web::Query<form::Switch>) -> HttpResponse {
    let lang = Lang::parse(&q.ke).unwrap_or_else(|| Lang::of(&req));
    let back = q
        .kembali
        .as_deref()
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or("/");
    let cookie = actix_web::cookie::Cookie::build(i18n::COOKIE, lang.code())
        .path("/")
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    let mut resp = see_other(back);
    let _ = resp.add_cookie(&cookie);
    resp
}

/// Middleware of the console's routes: a refusal that is not a page (a 429 of the per-client
/// limits, a 413 of the body limit — they answer JSON or text for the API) becomes a page in
/// the user's language, with the same status and `Retry-After`. Unknown paths keep the API's
/// JSON 404.
pub async fn html_errors(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    // No clone of the request is held across the call: routing needs it unshared.
    let ctx = Ctx::of(req.request());
    match next.call(req).await {
        Ok(res) => {
            let res = res.map_into_boxed_body();
            let matched = res.request().match_pattern().is_some();
            match ctx.and_then(|c| as_page(&c, res.response()).filter(|_| matched)) {
                Some(page) => Ok(res.into_response(page)),
                None => Ok(res),
            }
        }
        Err(e) => match ctx.and_then(|c| as_page(&c, &e.error_response())) {
            Some(page) => Err(actix_web::error::InternalError::from_response(e, page).into()),
            None => Err(e),
        },
    }
}

/// The page that replaces `res`, when it is a refusal that is not a page already.
fn as_page(ctx: &Ctx, res: &HttpResponse) -> Option<HttpResponse> {
    let status = res.status();
    let is_text = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_text {
        return None;
    }
    let l = ctx.lang;
    let text = match status {
        StatusCode::TOO_MANY_REQUESTS => l.t(
            "Terlalu banyak permintaan dari alamat Anda; tunggu sebentar lalu coba lagi.",
            "Too many requests from your address; wait a moment and try again.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            l.t("Isian formulir terlalu besar.", "The form is too large.")
        }
        s if s.is_server_error() => l.t(
            "Terjadi kesalahan di server; coba lagi sebentar lagi.",
            "Something went wrong on the server; try again shortly.",
        ),
        _ => l.t("Permintaan ditolak.", "The request was refused."),
    };
    let body =
        maud::html! { (layout::notice(false, text)) p { a href="/" { (l.t("Kembali", "Back")) } } };
    let title = l.t("Tidak dapat diproses", "Cannot be processed");
    let mut page = html(status, &ctx.page().render(title, &body));
    if let Some(v) = res.headers().get(actix_web::http::header::RETRY_AFTER) {
        page.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, v.clone());
    }
    Some(page)
}

/// Registers the console's routes. Call after the API's routes: the console's scope has an
/// empty prefix, so it must come last (its unknown paths fall to the app's default service).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(html_errors))
            .wrap(Compress::default())
            .route(assets::CSS_PATH, web::get().to(assets::css))
            .route("/bahasa", web::get().to(switch_language))
            .route("/", web::get().to(citizen::home))
            .service(
                web::resource("/lapor")
                    .wrap(from_fn(limits::intake))
                    .route(web::post().to(citizen::file)),
            )
            .service(
                web::resource("/lacak")
                    .wrap(from_fn(limits::follow_up))
                    .route(web::get().to(citizen::track)),
            )
            .service(
                web::resource("/lacak/{step}")
                    .wrap(from_fn(limits::follow_up_form))
                    .route(web::post().to(citizen::follow_up)),
            )
            .route("/petugas", web::get().to(officer::inbox))
            .route("/petugas/masuk", web::get().to(signin::login_form))
            .route("/petugas/masuk", web::post().to(signin::login))
            .route("/petugas/keluar", web::post().to(signin::logout))
            .route("/petugas/tiket/{id}", web::get().to(officer::ticket))
            .route("/petugas/tiket/{id}", web::post().to(officer::act))
            .route("/petugas/eskalasi", web::get().to(escalation::list))
            .route(
                "/petugas/eskalasi/{id}",
                web::post().to(escalation::acknowledge),
            )
            .route("/petugas/admin", web::get().to(admin::accounts))
            .route("/petugas/admin", web::post().to(admin::change))
            .route("/petugas/federasi", web::get().to(admin::federation))
            .route("/nasional", web::get().to(dashboard::dashboard)),
    );
}
