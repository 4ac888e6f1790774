//! The node admin's pages: `GET/POST /petugas/admin` (officer accounts, through
//! `auth::Auth::administer`, the rule and audit line the JSON API uses too) and
//! `GET /petugas/federasi` (peers and quarantine, read as `api::federation` reads them).
//! Other roles get 403 with the reason.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::admin_pages as pages;
use super::form::Fields;
use super::problem::Refusal;
use super::signin::{check_csrf, require, signed_page};
use super::{Ctx, session};
use crate::api::block;
use crate::auth::{AccountChange, AccountError, Officer};
use crate::domain::{Role, Timestamp};
use crate::tickets::agencies;

fn forbidden(ctx: &Ctx, officer: &Officer, token: &str) -> HttpResponse {
    let l = ctx.lang;
    let r = Refusal::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        None,
        l.t(
            "Halaman ini hanya untuk admin node.",
            "This page is for node admins only.",
        )
        .to_owned(),
    );
    r.record(&ctx.state.metrics);
    let body = html! { (super::layout::notice(false, &r.message)) };
    signed_page(ctx, officer, token, r.status, l.t("Admin", "Admin"), &body)
}

async fn accounts_page(
    ctx: &Ctx,
    officer: &Officer,
    token: &str,
    status: StatusCode,
    done: Option<&str>,
    refusal: Option<&Refusal>,
) -> HttpResponse {
    let l = ctx.lang;
    let auth = ctx.state.auth.clone();
    let db = ctx.state.tickets.db().clone();
    let loaded = block(move || {
        let list = auth.list()?;
        let mut c = db.read()?;
        Ok((list, agencies::list(&mut c)?))
    })
    .await;
    let (list, agencies) = loaded.unwrap_or_default();
    let body = pages::accounts(l, &list, &agencies, &session::csrf_of(token), done, refusal);
    signed_page(
        ctx,
        officer,
        token,
        status,
        l.t("Akun petugas", "Officer accounts"),
        &body,
    )
}

/// `GET /petugas/admin`.
pub async fn accounts(ctx: Ctx, req: HttpRequest) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    if officer.role != Role::Admin {
        return forbidden(&ctx, &officer, &token);
    }
    accounts_page(&ctx, &officer, &token, StatusCode::OK, None, None).await
}

/// `POST /petugas/admin`: one account change (`op` = `add`, `disable`, `reset`, `role`).
pub async fn change(ctx: Ctx, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    if officer.role != Role::Admin {
        return forbidden(&ctx, &officer, &token);
    }
    let l = ctx.lang;
    let f = Fields::parse(&body);
    if let Err(r) = check_csrf(&ctx, &f, &token) {
        return accounts_page(&ctx, &officer, &token, r.status, None, Some(&r)).await;
    }
    let username = f.text("username").trim().to_owned();
    let change = match f.raw("op") {
        Some("add") => AccountChange::Add {
            username,
            password: f.text("password"),
            role: f.text("role"),
            agency: f.given("agency"),
        },
        Some("disable") => AccountChange::Disable { username },
        Some("reset") => AccountChange::ResetPassword {
            username,
            password: f.text("password"),
        },
        Some("role") => AccountChange::SetRole {
            username,
            role: f.text("role"),
            agency: f.given("agency"),
        },
        _ => {
            let r = Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                Some("op"),
                l.t("Perubahan tidak dikenal.", "Unknown change.")
                    .to_owned(),
            );
            r.record(&ctx.state.metrics);
            return accounts_page(&ctx, &officer, &token, r.status, None, Some(&r)).await;
        }
    };
    let (auth, admin, c) = (ctx.state.auth.clone(), officer.clone(), change.clone());
    let result = block(move || Ok(auth.administer(&admin, &c, Timestamp::now()))).await;
    match result {
        Ok(Ok(())) => {
            let done = format!("{}: {}", l.t("Tersimpan", "Saved"), change.username());
            accounts_page(&ctx, &officer, &token, StatusCode::OK, Some(&done), None).await
        }
        Ok(Err(e)) => {
            let r = match e {
                AccountError::Auth(a) => Refusal::auth(l, a),
                AccountError::NotAllowed(_) => Refusal::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    None,
                    l.t("Hanya admin.", "Admins only.").to_owned(),
                ),
            };
            r.record(&ctx.state.metrics);
            accounts_page(&ctx, &officer, &token, r.status, None, Some(&r)).await
        }
        Err(_) => {
            let r = Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                None,
                l.t(
                    "Layanan sedang tidak tersedia; coba lagi sebentar lagi.",
                    "The service is temporarily unavailable; try again shortly.",
                )
                .to_owned(),
            );
            r.record(&ctx.state.metrics);
            accounts_page(&ctx, &officer, &token, r.status, None, Some(&r)).await
        }
    }
}

/// `GET /petugas/federasi`: peers and quarantine (admin).
pub async fn federation(ctx: Ctx, req: HttpRequest) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    if officer.role != Role::Admin {
        return forbidden(&ctx, &officer, &token);
    }
    let l = ctx.lang;
    let fed = ctx.state.federation.clone();
    let loaded = block(move || {
        Ok(match fed {
            None => (None, Vec::new()),
            Some(f) => {
                let peers = f
                    .status(Timestamp::now())
                    .map_err(|e| crate::api::error::ApiError::Internal(e.to_string()))?;
                let mut c = f.db().read()?;
                (
                    Some(peers),
                    crate::federation::quarantine::list(&mut c, 200)?,
                )
            }
        })
    })
    .await;
    match loaded {
        Ok((peers, quarantine)) => {
            let body = pages::federation(l, &ctx.console.site, peers.as_deref(), &quarantine);
            signed_page(
                &ctx,
                &officer,
                &token,
                StatusCode::OK,
                l.t("Federasi", "Federation"),
                &body,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "console: federation status unavailable");
            let body = html! { (super::layout::notice(false, l.t("Status federasi tidak tersedia.", "Federation status unavailable."))) };
            signed_page(
                &ctx,
                &officer,
                &token,
                StatusCode::SERVICE_UNAVAILABLE,
                l.t("Federasi", "Federation"),
                &body,
            )
        }
    }
}
