//! The citizen's pages: `GET /` (the report form), `POST /lapor` (file: the receipt, or the
//! form again with the refusal), `GET /lacak` (look up by tracking code; public view),
//! `POST /lacak/lihat` (the citizen's view with the follow-up token) and `POST /lacak/balas`,
//! `/lacak/nilai`, `/lacak/buka` (reply, rate, reopen). Every step goes through the tickets
//! wing exactly as the JSON API does (`submit_async`, `report`, `follow_up`); the per-client
//! limits are the API's (`api::limits`). The receipt is the answer to the `POST` itself (never
//! a page at a URL) so the token appears in no address, history or log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::Markup;
use serde::Deserialize;

use super::citizen_pages as pages;
use super::form::Fields;
use super::problem::Refusal;
use super::{Ctx, html};
use crate::api::block;
use crate::db::DbError;
use crate::domain::visibility::Audience;
use crate::domain::{
    Actor, AgencyCode, Category, Channel, Privacy, RegionCode, ReportKind, TicketId, Timestamp,
};
use crate::tickets::agencies::{self, AgencyInfo};
use crate::tickets::{Action, Contact, NewReport, ReportView, TicketError, Tickets};

fn page(ctx: &Ctx, status: StatusCode, title: &str, body: &Markup) -> HttpResponse {
    html(status, &ctx.page().render(title, body))
}

fn refused(ctx: &Ctx, r: &Refusal) {
    r.record(&ctx.state.metrics);
}

async fn agency_list(ctx: &Ctx) -> Vec<AgencyInfo> {
    let db = ctx.state.tickets.db().clone();
    block(move || {
        let mut c = db.read()?;
        Ok(agencies::list(&mut c)?)
    })
    .await
    .unwrap_or_else(|e| {
        tracing::warn!(error = %e, "console: agency list unavailable");
        Vec::new()
    })
}

async fn form_page(
    ctx: &Ctx,
    status: StatusCode,
    f: &Fields,
    refusal: Option<&Refusal>,
) -> HttpResponse {
    let l = ctx.lang;
    let agencies = agency_list(ctx).await;
    let body = pages::report_form(l, &ctx.console.regions, &agencies, f, refusal);
    page(ctx, status, l.t("Buat laporan", "File a report"), &body)
}

/// `GET /`: the report form.
pub async fn home(ctx: Ctx) -> HttpResponse {
    form_page(&ctx, StatusCode::OK, &Fields::default(), None).await
}

fn field_refusal(ctx: &Ctx, field: &'static str) -> Refusal {
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
}

/// The report a form describes (its choices parsed; the rest is the wing's to check).
fn new_report(ctx: &Ctx, f: &Fields) -> Result<NewReport, Refusal> {
    let kind = match f.raw("kind") {
        Some("pengaduan") => ReportKind::Pengaduan,
        Some("aspirasi") => ReportKind::Aspirasi,
        Some("permintaan_informasi") => ReportKind::PermintaanInformasi,
        _ => return Err(field_refusal(ctx, "kind")),
    };
    let category =
        Category::parse(&f.text("category")).map_err(|_| field_refusal(ctx, "category"))?;
    let region = RegionCode::parse(&f.text("region")).map_err(|_| field_refusal(ctx, "region"))?;
    let agency = f
        .given("agency")
        .map(|a| AgencyCode::parse(&a))
        .transpose()
        .map_err(|_| field_refusal(ctx, "agency"))?;
    let contact = Contact {
        name: f.given("name"),
        phone: f.given("phone"),
        email: f.given("email"),
    };
    Ok(NewReport {
        kind,
        title: f.text("title"),
        text: f.text("body"),
        category,
        region,
        agency,
        channel: Channel::Web,
        privacy: Privacy {
            anonymous: f.ticked("anonim"),
            confidential: f.ticked("rahasia"),
        },
        contact: contact.is_given().then_some(contact),
    })
}

/// `POST /lapor`: files the report; answers the receipt (201), or the form with the refusal.
pub async fn file(ctx: Ctx, body: web::Bytes) -> HttpResponse {
    let f = Fields::parse(&body);
    let report = match new_report(&ctx, &f) {
        Ok(r) => r,
        Err(r) => {
            refused(&ctx, &r);
            return form_page(&ctx, r.status, &f, Some(&r)).await;
        }
    };
    match ctx
        .state
        .tickets
        .submit_async(&report, &Actor::citizen(), Timestamp::now())
        .await
    {
        Ok(s) => {
            let crate::domain::Change::Created(created) = &s.event.change else {
                tracing::error!("intake produced no created event");
                let r = Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    None,
                    ctx.lang
                        .t(
                            "Terjadi kesalahan di server.",
                            "Something went wrong on the server.",
                        )
                        .to_owned(),
                );
                return form_page(&ctx, r.status, &f, Some(&r)).await;
            };
            tracing::info!(ticket = %s.event.ticket, channel = "web", "report filed");
            let l = ctx.lang;
            let due = ctx.console.site.datetime(l, created.verify_due);
            let body = pages::receipt(
                l,
                &ctx.console.site,
                created.tracking_code.as_str(),
                &s.follow_up_token,
                &due,
            );
            page(
                &ctx,
                StatusCode::CREATED,
                l.t("Tanda terima laporan", "Report receipt"),
                &body,
            )
        }
        Err(e) => {
            let r = Refusal::ticket(ctx.lang, e);
            refused(&ctx, &r);
            form_page(&ctx, r.status, &f, Some(&r)).await
        }
    }
}

/// Runs `f` on the tickets wing off the executor (a failed hand-off is the node's fault).
async fn run<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&Tickets) -> Result<T, TicketError> + Send + 'static,
) -> Result<T, TicketError> {
    let tickets = ctx.state.tickets.clone();
    block(move || Ok(f(&tickets)))
        .await
        .unwrap_or_else(|e| Err(TicketError::Db(DbError::Unavailable(e.to_string()))))
}

/// The report `code` as its citizen sees it with `token` (the wing's rules for both).
fn citizen_view(t: &Tickets, code: &str, token: Option<&str>) -> Result<ReportView, TicketError> {
    let found = t.find_report(code, token, true)?;
    let id = TicketId::parse(&found.ticket.id).map_err(TicketError::Stored)?;
    t.report_view(&id, found.audience)
}

/// `GET /lacak` query.
#[derive(Debug, Deserialize)]
pub struct Lookup {
    /// Tracking code.
    pub kode: Option<String>,
}

/// `GET /lacak[?kode=…]`: the lookup form, or the public view of the report.
pub async fn track(ctx: Ctx, q: web::Query<Lookup>) -> HttpResponse {
    let l = ctx.lang;
    let title = l.t("Lacak laporan", "Track a report");
    let code = q
        .kode
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if code.is_empty() {
        return page(
            &ctx,
            StatusCode::OK,
            title,
            &pages::lookup_form(l, "", None),
        );
    }
    let c = code.clone();
    match run(&ctx, move |t| t.report(&c, None)).await {
        Ok(view) => {
            let body = pages::report(
                l,
                &ctx.console.site,
                &view,
                Audience::Public,
                None,
                None,
                None,
            );
            page(&ctx, StatusCode::OK, title, &body)
        }
        Err(e) => {
            let r = Refusal::ticket(l, e);
            refused(&ctx, &r);
            page(
                &ctx,
                r.status,
                title,
                &pages::lookup_form(l, &code, Some(&r)),
            )
        }
    }
}

/// `POST /lacak/{step}`: `lihat` (open with the token), `balas` (reply), `nilai` (rate),
/// `buka` (reopen). Answers the citizen's view with what was done — or the refusal: over the
/// report when the token opened it (the action itself was refused), over the lookup form
/// when the code or token was refused.
pub async fn follow_up(ctx: Ctx, step: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let l = ctx.lang;
    let title = l.t("Laporan saya", "My report");
    let f = Fields::parse(&body);
    let (code, token) = (f.text("kode").trim().to_owned(), f.given("token"));
    let (action, done) = match step.as_str() {
        "lihat" => (None, None),
        "balas" => (
            Some(Action::Reply {
                message: f.text("message"),
            }),
            Some(l.t("Balasan Anda terkirim.", "Your reply was sent.")),
        ),
        "buka" => (
            Some(Action::Reopen {
                message: f.text("message"),
            }),
            Some(l.t("Laporan dibuka kembali.", "The report was reopened.")),
        ),
        "nilai" => (
            // Not a number: rating 0, which the wing refuses as out of range.
            Some(Action::Rate {
                rating: f.text("rating").trim().parse().unwrap_or(0),
            }),
            Some(l.t(
                "Terima kasih atas penilaian Anda.",
                "Thank you for your rating.",
            )),
        ),
        _ => {
            let r = Refusal::new(
                StatusCode::NOT_FOUND,
                "not_found",
                None,
                l.t("Halaman tidak ditemukan.", "No such page.").to_owned(),
            );
            refused(&ctx, &r);
            return page(
                &ctx,
                r.status,
                title,
                &pages::lookup_form(l, &code, Some(&r)),
            );
        }
    };
    let (c, t) = (code.clone(), token.clone());
    let result = run(&ctx, move |tickets| match action {
        None => citizen_view(tickets, &c, t.as_deref()),
        Some(a) => tickets.follow_up(&c, t.as_deref(), a, Timestamp::now()).map(|(event, view)| {
            tracing::info!(ticket = %event.ticket, event.kind = event.change.kind(), channel = "web", "citizen follow-up");
            view
        }),
    })
    .await;
    let site = &ctx.console.site;
    match result {
        Ok(view) => page(
            &ctx,
            StatusCode::OK,
            title,
            &pages::report(
                l,
                site,
                &view,
                Audience::Citizen,
                token.as_deref(),
                done,
                None,
            ),
        ),
        Err(e) => {
            let r = Refusal::ticket(l, e);
            refused(&ctx, &r);
            let reopened = if matches!(r.field, Some("code" | "token")) {
                None
            } else {
                let (c, t) = (code.clone(), token.clone());
                run(&ctx, move |tickets| citizen_view(tickets, &c, t.as_deref()))
                    .await
                    .ok()
            };
            let body = match reopened {
                Some(view) => pages::report(
                    l,
                    site,
                    &view,
                    Audience::Citizen,
                    token.as_deref(),
                    None,
                    Some(&r),
                ),
                None => pages::lookup_form(l, &code, Some(&r)),
            };
            page(&ctx, r.status, title, &body)
        }
    }
}
