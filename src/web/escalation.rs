//! The verifiers' SLA escalations: `GET /petugas/eskalasi` (the open ones: ticket, agency,
//! step, how late; one acknowledgement form each) and `POST /petugas/eskalasi/{id}` (the
//! acknowledgement, CSRF-checked). Who may see and acknowledge them is the tickets wing's
//! (`Tickets::escalations`, `Tickets::acknowledge`), as for the API: verifiers and admins.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::form::Fields;
use super::i18n::Lang;
use super::layout::{Site, notice};
use super::problem::Refusal;
use super::session;
use super::signin::{check_csrf, require, signed_page};
use super::{Ctx, see_other};
use crate::api::block;
use crate::auth::Officer;
use crate::domain::Timestamp;
use crate::tickets::{EscalationView, TicketError};

fn title(l: Lang) -> &'static str {
    l.t("Eskalasi SLA", "SLA escalations")
}

/// How late, in days and hours.
#[must_use]
pub fn lateness(l: Lang, ms: i64) -> String {
    let hours = ms / 3_600_000;
    let (d, h) = (hours / 24, hours % 24);
    match l {
        Lang::Id => format!("{d} hari {h} jam"),
        Lang::En => format!("{d} d {h} h"),
    }
}

fn step_text(l: Lang, step: &str) -> &'static str {
    match step {
        "response" => l.t("Tanggapan instansi", "Agency response"),
        "overall" => l.t("Penyelesaian", "Completion"),
        _ => l.t("Verifikasi dan disposisi", "Verification and dispatch"),
    }
}

/// The list of open escalations with their forms.
#[must_use]
pub fn page(
    l: Lang,
    site: &Site,
    open: &[EscalationView],
    csrf: &str,
    done: bool,
    refusal: Option<&Refusal>,
) -> Markup {
    html! {
        @if done { (notice(true, l.t("Eskalasi ditandai sudah ditanggapi.", "Escalation acknowledged."))) }
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        p { (l.t("Instansi yang melewati batas waktu tanggapan atau penyelesaian tiket yang ditangani node ini.",
                 "Agencies that missed a response or completion deadline on tickets this node handles.")) }
        @if open.is_empty() {
            p #eskalasi-kosong { (l.t("Tidak ada eskalasi terbuka.", "No open escalations.")) }
        } @else {
            table #eskalasi {
                thead { tr {
                    th { (l.t("Tiket", "Ticket")) } th { (l.t("Instansi", "Agency")) }
                    th { (l.t("Tahap", "Step")) } th { (l.t("Batas", "Deadline")) }
                    th { (l.t("Terlambat", "Late by")) } th {}
                } }
                tbody {
                    @for e in open {
                        tr {
                            td { a href=(format!("/petugas/tiket/{}", e.ticket)) { (e.tracking_code) } }
                            td { (e.agency) }
                            td { (step_text(l, e.step)) }
                            td { (site.at_ms(l, e.due_ms)) }
                            td { span.badge.late { (lateness(l, e.late_ms)) } }
                            td {
                                form method="post" action=(format!("/petugas/eskalasi/{}", e.id)) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { (l.t("Tandai ditanggapi", "Acknowledge")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn render(
    ctx: &Ctx,
    officer: &Officer,
    token: &str,
    status: StatusCode,
    done: bool,
    refusal: Option<&Refusal>,
) -> HttpResponse {
    let l = ctx.lang;
    let (tickets, o) = (ctx.state.tickets.clone(), officer.clone());
    let open = match block(move || Ok(tickets.escalations(&o, Timestamp::now()))).await {
        Ok(r) => r,
        Err(e) => Err(TicketError::Db(crate::db::DbError::Unavailable(
            e.to_string(),
        ))),
    };
    match open {
        Ok(open) => {
            let body = page(
                l,
                &ctx.console.site,
                &open,
                &session::csrf_of(token),
                done,
                refusal,
            );
            signed_page(ctx, officer, token, status, title(l), &body)
        }
        Err(e) => {
            let r = Refusal::ticket(l, e);
            r.record(&ctx.state.metrics);
            let body = html! { (notice(false, &r.message)) };
            signed_page(ctx, officer, token, r.status, title(l), &body)
        }
    }
}

/// `GET /petugas/eskalasi[?selesai=1]`.
pub async fn list(ctx: Ctx, req: HttpRequest) -> HttpResponse {
    let (officer, token) = match require(&ctx, &req).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let done = Fields::parse(req.query_string().as_bytes())
        .given("selesai")
        .is_some();
    render(&ctx, &officer, &token, StatusCode::OK, done, None).await
}

/// `POST /petugas/eskalasi/{id}`: acknowledge (CSRF-checked), then back to the list (303) — or
/// the list with the refusal and its status, nothing changed.
pub async fn acknowledge(
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
    let refusal = match check_csrf(&ctx, &f, &token) {
        Err(r) => r,
        Ok(()) => {
            let (tickets, o) = (ctx.state.tickets.clone(), officer.clone());
            let r = block(move || Ok(tickets.acknowledge(&o, &id, Timestamp::now()))).await;
            match r {
                Ok(Ok(_)) => return see_other("/petugas/eskalasi?selesai=1"),
                Ok(Err(e)) => {
                    let r = Refusal::ticket(ctx.lang, e);
                    r.record(&ctx.state.metrics);
                    r
                }
                Err(e) => Refusal::ticket(
                    ctx.lang,
                    TicketError::Db(crate::db::DbError::Unavailable(e.to_string())),
                ),
            }
        }
    };
    render(
        &ctx,
        &officer,
        &token,
        refusal.status,
        false,
        Some(&refusal),
    )
    .await
}

/// The inbox's line for verifiers and admins: how many escalations are open, with the link.
pub async fn inbox_line(ctx: &Ctx, officer: &Officer) -> Markup {
    let l = ctx.lang;
    let (tickets, o) = (ctx.state.tickets.clone(), officer.clone());
    let n = block(move || Ok(tickets.escalations(&o, Timestamp::now())))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|v| v.len());
    // Without a count (the database failed), only the link: the page says why.
    html! {
        p #eskalasi-sla {
            a href="/petugas/eskalasi" { (title(l)) }
            @match n {
                Some(0) => { " · " (l.t("tidak ada yang terbuka", "none open")) },
                Some(n) => { " " span.badge.late { (n) " " (l.t("terbuka", "open")) } },
                None => {},
            }
        }
    }
}
