//! The officers' pages: `GET /petugas` (inbox), `GET/POST /petugas/tiket/{id}` (ticket page,
//! actions). Every page passes `web::signin::require` (a live session) and every form its CSRF
//! check; what an officer may read or do is the tickets wing's (`inbox`, `ticket_detail` with
//! its allowed actions, `officer_action`), as for the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::form::Fields;
use super::officer_pages as pages;
use super::problem::Refusal;
use super::session;
use super::signin::{check_csrf, require, signed_page};
use super::{Ctx, see_other};
use crate::api::block;
use crate::auth::Officer;
use crate::domain::event::ArchiveReason;
use crate::domain::{AgencyCode, Role, Timestamp};
use crate::tickets::agencies::{self, AgencyInfo};
use crate::tickets::{Action, InboxQuery, TicketError};

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
                     li { a href="/petugas/eskalasi" { (l.t("Eskalasi SLA", "SLA escalations")) } }
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
    // A liaison's inbox is its agency's: no agency filter to offer.
    let agencies = if officer.role == Role::Verifier {
        agency_list(&ctx).await
    } else {
        Vec::new()
    };
    let escalations = if officer.role == Role::Verifier {
        Some(super::escalation::inbox_line(&ctx, &officer).await)
    } else {
        None
    };
    let inbox = pages::inbox(
        l,
        &ctx.console.site,
        &f,
        &agencies,
        &page,
        Timestamp::now(),
        refusal.as_ref(),
    );
    let body = html! { @if let Some(e) = escalations { (e) } (inbox) };
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
