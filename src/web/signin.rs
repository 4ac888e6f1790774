//! Signing in and out of the console: `GET/POST /petugas/masuk` (login through the API's
//! throttles), `POST /petugas/keluar` (logout), the gate every officer page passes (`require`:
//! a live session, or the login form with 401 and nothing changed), the CSRF check of every
//! officer form, and the frame of a signed-in page. The cookie and token rules are
//! `web::session`'s.

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
use crate::domain::{Role, Timestamp};

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
