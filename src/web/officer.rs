//! The officers' pages: `GET/POST /petugas/masuk` (login), `POST /petugas/keluar` (logout),
//! `GET /petugas` (inbox), `GET/POST /petugas/tiket/{id}` (ticket page, actions). The session
//! and CSRF rules are `web::session`'s; what an officer may read or do is the tickets wing's
//! (`inbox`, `ticket_detail` with its allowed actions, `officer_action`), as for the API. A
//! page without a live session answers the login form (401) and changes nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::form::Fields;
use super::layout::Signed;
use super::officer_pages as pages;
use super::problem::Refusal;
use super::session::{self, Who};
use super::{Ctx, see_other};
use crate::api::block;
use crate::auth::Officer;
use crate::domain::event::ArchiveReason;
use crate::domain::{AgencyCode, Role, Timestamp};
use crate::tickets::agencies::{self, AgencyInfo};
use crate::tickets::{Action, InboxQuery, TicketError};

/// A page for the signed-in `officer`.
pub fn signed_page(
    ctx: &Ctx,
    officer: &Officer,
    token: &str,
    status: StatusCode,
    title: &str,
    body: &Markup,
) -> HttpResponse {
    let mut p = ctx.page();
    p.signed = Some(Signed {
        username: officer.username.clone(),
        role: ctx.lang.role(officer.role),
        csrf: session::csrf_of(token),
        admin: officer.role == Role::Admin,
    });
    super::html(status, &p.render(title, body))
}

/// The login form, with a fresh double-submit token (and `info` or `refusal` above it).
pub fn login_page(
    ctx: &Ctx,
    req: &HttpRequest,
    status: StatusCode,
    username: &str,
    refusal: Option<&Refusal>,
    info: Option<&str>,
) -> HttpResponse {
    let l = ctx.lang;
    let csrf = session::fresh_token();
    let body = pages::login(l, &csrf, username, refusal, info);
    let mut resp = super::html(
        status,
        &ctx.page()
            .render(l.t("Masuk petugas", "Officer login"), &body),
    );
    let _ = resp.add_cookie(&session::cookie(req, session::PRE_LOGIN, csrf));
    resp
}

/// The officer of `req`, or the answer to give instead (the login form; 401 for a session
/// that ended, with its cookie removed).
pub async fn require(ctx: &Ctx, req: &HttpRequest) -> Result<(Officer, String), HttpResponse> {
    let l = ctx.lang;
    match session::who(&ctx.state, req).await {
        Who::Officer(o, t) => Ok((o, t)),
        Who::Nobody => Err(login_page(
            ctx,
            req,
            StatusCode::UNAUTHORIZED,
            "",
            None,
            Some(l.t("Silakan masuk terlebih dahulu.", "Please log in first.")),
        )),
        Who::Ended => {
            let r = Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                None,
                l.t(
                    "Sesi Anda telah berakhir; silakan masuk lagi.",
                    "Your session has ended; please log in again.",
                )
                .to_owned(),
            );
            r.record(&ctx.state.metrics);
            let mut resp = login_page(ctx, req, r.status, "", Some(&r), None);
            let _ = resp.add_cookie(&session::removal(req, session::SESSION));
            Err(resp)
        }
        Who::Failed(e) => {
            let r = Refusal::auth(l, e);
            r.record(&ctx.state.metrics);
            Err(login_page(ctx, req, r.status, "", Some(&r), None))
        }
    }
}

/// Refuses a form without the session's CSRF token (403; nothing changes).
pub fn check_csrf(ctx: &Ctx, f: &Fields, token: &str) -> Result<(), Refusal> {
    if session::same(f.raw("csrf"), &session::csrf_of(token)) {
        return Ok(());
    }
    let r = Refusal::new(StatusCode::FORBIDDEN, "csrf", None, ctx.lang.t(
        "Formulir ditolak: token keamanan (CSRF) tidak ada atau salah. Muat ulang halaman lalu coba lagi.",
        "Form refused: its security (CSRF) token is missing or wrong. Reload the page and try again.").to_owned());
    r.record(&ctx.state.metrics);
    Err(r)
}

/// `GET /petugas/masuk`.
pub async fn login_form(ctx: Ctx, req: HttpRequest) -> HttpResponse {
    login_page(&ctx, &req, StatusCode::OK, "", None, None)
}

/// `POST /petugas/masuk`: checks the double-submit token, then logs in through the API's
/// throttles (`Limits::login`); sets the session cookie and goes to the inbox.
pub async fn login(ctx: Ctx, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let l = ctx.lang;
    let f = Fields::parse(&body);
    let username = f.text("username").trim().to_owned();
    let expected = req
        .cookie(session::PRE_LOGIN)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !session::same(f.raw("csrf"), &expected) {
        let r = Refusal::new(StatusCode::FORBIDDEN, "csrf", None, l.t(
            "Formulir ditolak: token keamanan (CSRF) tidak ada atau salah. Coba masuk lagi.",
            "Form refused: its security (CSRF) token is missing or wrong. Try logging in again.").to_owned());
        r.record(&ctx.state.metrics);
        return login_page(&ctx, &req, r.status, &username, Some(&r), None);
    }
    let auth = ctx.state.auth.clone();
    let (name, password) = (username.clone(), f.text("password"));
    match ctx
        .state
        .limits
        .login(&req, &username, move || {
            auth.login(&name, &password, Timestamp::now())
        })
        .await
    {
        Ok((token, _expires, officer)) => {
            tracing::info!(officer = %officer.username, channel = "web", "officer logged in");
            let mut resp = see_other("/petugas");
            let _ = resp.add_cookie(&session::cookie(&req, session::SESSION, token));
            let _ = resp.add_cookie(&session::removal(&req, session::PRE_LOGIN));
            resp
        }
        Err(e) => {
            let status = e.as_response_error().status_code();
            let message = if status == StatusCode::TOO_MANY_REQUESTS {
                l.t(
                    "Terlalu banyak percobaan masuk; tunggu sebentar lalu coba lagi.",
                    "Too many login attempts; wait a moment and try again.",
                )
            } else if status == StatusCode::UNAUTHORIZED {
                l.t(
                    "Nama pengguna atau kata sandi salah, atau akun dinonaktifkan.",
                    "Wrong username or password, or the account is disabled.",
                )
            } else {
                l.t(
                    "Terjadi kesalahan di server.",
                    "Something went wrong on the server.",
                )
            };
            let code = if status == StatusCode::TOO_MANY_REQUESTS {
                "rate_limited"
            } else if status == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "internal"
            };
            let r = Refusal::new(status, code, None, message.to_owned());
            // The throttles log and count their own refusals.
            if status != StatusCode::TOO_MANY_REQUESTS {
                r.record(&ctx.state.metrics);
            }
            login_page(&ctx, &req, status, &username, Some(&r), None)
        }
    }
}

/// `POST /petugas/keluar`: ends the session (CSRF-checked).
pub async fn logout(ctx: Ctx, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    if let Err(r) = check_csrf(&ctx, &Fields::parse(&body), &token) {
        let page = html! { (super::layout::notice(false, &r.message)) };
        return signed_page(
            &ctx,
            &officer,
            &token,
            r.status,
            ctx.lang.t("Keluar", "Log out"),
            &page,
        );
    }
    let auth = ctx.state.auth.clone();
    let _ = block(move || Ok(auth.revoke(&token))).await;
    tracing::info!(officer = %officer.username, channel = "web", "officer logged out");
    let mut resp = see_other("/petugas/masuk");
    let _ = resp.add_cookie(&session::removal(&req, session::SESSION));
    resp
}

fn inbox_query(f: &Fields) -> InboxQuery {
    InboxQuery {
        status: f.given("status"),
        agency: f.given("agency"),
        overdue: f.ticked("overdue").then_some(true),
        kind: f.given("kind"),
        region: f.given("region"),
        text: f.given("q"),
        cursor: f.given("cursor"),
        limit: Some(25),
    }
}

/// `GET /petugas`: the inbox (verifiers and liaisons); admins and analysts get their links.
pub async fn inbox(ctx: Ctx, req: HttpRequest) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let l = ctx.lang;
    let title = l.t("Kotak masuk", "Inbox");
    if matches!(officer.role, Role::Admin | Role::Analyst) {
        let body = html! {
            p { (l.t("Peran Anda tidak menangani tiket.", "Your role does not handle tickets.")) }
            @if officer.role == Role::Admin {
                ul { li { a href="/petugas/admin" { (l.t("Akun petugas", "Officer accounts")) } }
                     li { a href="/petugas/federasi" { (l.t("Federasi: peer dan karantina", "Federation: peers and quarantine")) } } }
            }
        };
        return signed_page(&ctx, &officer, &token, StatusCode::OK, title, &body);
    }
    let f = Fields::parse(req.query_string().as_bytes());
    let (tickets, query, o) = (ctx.state.tickets.clone(), inbox_query(&f), officer.clone());
    let result = block(move || Ok(tickets.inbox(&o, &query))).await;
    let (status, page, refusal) = match result {
        Ok(Ok(page)) => (StatusCode::OK, page, None),
        Ok(Err(e)) => {
            let r = Refusal::ticket(l, e);
            r.record(&ctx.state.metrics);
            (
                r.status,
                crate::tickets::InboxPage {
                    tickets: Vec::new(),
                    next_cursor: None,
                },
                Some(r),
            )
        }
        Err(e) => {
            let r = Refusal::ticket(
                l,
                TicketError::Db(crate::db::DbError::Unavailable(e.to_string())),
            );
            (
                r.status,
                crate::tickets::InboxPage {
                    tickets: Vec::new(),
                    next_cursor: None,
                },
                Some(r),
            )
        }
    };
    let body = pages::inbox(
        l,
        &ctx.console.site,
        &f,
        &page,
        Timestamp::now(),
        refusal.as_ref(),
    );
    signed_page(&ctx, &officer, &token, status, title, &body)
}

async fn agency_list(ctx: &Ctx) -> Vec<AgencyInfo> {
    let db = ctx.state.tickets.db().clone();
    block(move || {
        let mut c = db.read()?;
        Ok(agencies::list(&mut c)?)
    })
    .await
    .unwrap_or_default()
}

/// Renders the ticket page (or the refusal to show it).
async fn ticket_page(
    ctx: &Ctx,
    officer: &Officer,
    token: &str,
    id: &str,
    status: StatusCode,
    done: Option<&str>,
    refusal: Option<&Refusal>,
) -> HttpResponse {
    let l = ctx.lang;
    let (tickets, o, i) = (ctx.state.tickets.clone(), officer.clone(), id.to_owned());
    let detail = match block(move || Ok(tickets.ticket_detail(&o, &i))).await {
        Ok(r) => r,
        Err(e) => Err(TicketError::Db(crate::db::DbError::Unavailable(
            e.to_string(),
        ))),
    };
    match detail {
        Ok(d) => {
            let agencies = if d.allowed_actions.contains(&"dispatch") {
                agency_list(ctx).await
            } else {
                Vec::new()
            };
            let body = pages::ticket(
                l,
                &ctx.console.site,
                &d,
                &agencies,
                &session::csrf_of(token),
                done,
                refusal,
            );
            signed_page(
                ctx,
                officer,
                token,
                status,
                &format!("{} {}", l.t("Tiket", "Ticket"), d.ticket.tracking_code),
                &body,
            )
        }
        Err(e) => {
            let r = Refusal::ticket(l, e);
            r.record(&ctx.state.metrics);
            let body = html! { (super::layout::notice(false, &r.message)) p { a href="/petugas" { (l.t("Kembali ke kotak masuk", "Back to the inbox")) } } };
            signed_page(ctx, officer, token, r.status, l.t("Tiket", "Ticket"), &body)
        }
    }
}

/// `GET /petugas/tiket/{id}[?selesai=action]`.
pub async fn ticket(ctx: Ctx, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let f = Fields::parse(req.query_string().as_bytes());
    let done = f
        .given("selesai")
        .map(|a| format!("{} ✓", ctx.lang.action(&a)));
    ticket_page(
        &ctx,
        &officer,
        &token,
        &id,
        StatusCode::OK,
        done.as_deref(),
        None,
    )
    .await
}

/// The action a form names, with its fields (the wing checks their values).
fn action_of(ctx: &Ctx, f: &Fields) -> Result<Action, Refusal> {
    let bad = |field: &'static str| {
        let l = ctx.lang;
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
            format!(
                "{}: {}",
                l.field(field),
                l.t("pilihan tidak dikenal", "unknown choice")
            ),
        )
    };
    Ok(match f.raw("action").unwrap_or_default() {
        "verify" => Action::Verify,
        "dispatch" => Action::Dispatch {
            agency: AgencyCode::parse(&f.text("agency")).map_err(|_| bad("agency"))?,
        },
        "postpone" => Action::Postpone {
            note: f.text("note"),
        },
        "archive" => Action::Archive {
            reason: match f.raw("reason") {
                Some("spam") => ArchiveReason::Spam,
                Some("unclear") => ArchiveReason::Unclear,
                Some("out_of_scope") => ArchiveReason::OutOfScope,
                Some("duplicate") => ArchiveReason::Duplicate,
                _ => return Err(bad("reason")),
            },
        },
        "not_our_authority" => Action::NotOurAuthority {
            note: f.text("note"),
        },
        "start" => Action::Start,
        "respond" => Action::Respond {
            message: f.text("message"),
        },
        "resolve" => Action::Resolve {
            message: f.text("message"),
        },
        _ => return Err(bad("action")),
    })
}

/// `POST /petugas/tiket/{id}`: one lifecycle action (CSRF-checked), then back to the ticket
/// page (303) — or the page with the refusal and its status, nothing changed.
pub async fn act(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let f = Fields::parse(&body);
    let refused = match check_csrf(&ctx, &f, &token).and_then(|()| action_of(&ctx, &f)) {
        Err(r) => Some(r),
        Ok(action) => {
            let name = f.text("action");
            let (tickets, o, i) = (ctx.state.tickets.clone(), officer.clone(), id.to_string());
            match block(move || Ok(tickets.officer_action(&o, &i, action, Timestamp::now()))).await
            {
                Ok(Ok(event)) => {
                    tracing::info!(ticket = %event.ticket, event.kind = event.change.kind(), officer = %officer.username, channel = "web", "officer action");
                    let q: String = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("selesai", &name)
                        .finish();
                    return see_other(&format!("/petugas/tiket/{}?{q}", id.as_str()));
                }
                Ok(Err(e)) => {
                    let r = Refusal::ticket(ctx.lang, e);
                    r.record(&ctx.state.metrics);
                    Some(r)
                }
                Err(e) => Some(Refusal::ticket(
                    ctx.lang,
                    TicketError::Db(crate::db::DbError::Unavailable(e.to_string())),
                )),
            }
        }
    };
    let r = refused.unwrap_or_else(|| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            String::new(),
        )
    });
    ticket_page(&ctx, &officer, &token, &id, r.status, None, Some(&r)).await
}
