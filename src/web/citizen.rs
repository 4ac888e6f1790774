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
use crate::domain::visibility::Audience;
use crate::domain::{
    Actor, AgencyCode, Category, Channel, Privacy, RegionCode, ReportKind, Timestamp,
};
use crate::tickets::agencies::{self, AgencyInfo};
use crate::tickets::{Action, Contact, NewReport};

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
                let r = Refusal::ticket(ctx.lang, crate::tickets::TicketError::NotFound);
                return form_page(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &f, Some(&r)).await;
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
    let Some(code) = q
        .kode
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
    else {
        return page(
            &ctx,
            StatusCode::OK,
            title,
            &pages::lookup_form(l, "", None),
        );
    };
    let tickets = ctx.state.tickets.clone();
    let c = code.clone();
    match block(move || Ok(tickets.report(&c, None))).await {
        Ok(Ok(view)) => {
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
        Ok(Err(e)) => {
            let r = Refusal::ticket(l, e);
            refused(&ctx, &r);
            page(
                &ctx,
                r.status,
                title,
                &pages::lookup_form(l, &code, Some(&r)),
            )
        }
        Err(e) => {
            let r = Refusal::ticket(
                l,
                crate::tickets::TicketError::Db(crate::db::DbError::Unavailable(e.to_string())),
            );
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
/// `buka` (reopen). Answers the citizen's view, with what was done or the refusal.
pub async fn follow_up(ctx: Ctx, step: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let l = ctx.lang;
    let title = l.t("Laporan saya", "My report");
    let f = Fields::parse(&body);
    let (code, token) = (f.text("kode").trim().to_owned(), f.given("token"));
    let action = match step.as_str() {
        "lihat" => None,
        "balas" => Some(Action::Reply {
            message: f.text("message"),
        }),
        "buka" => Some(Action::Reopen {
            message: f.text("message"),
        }),
        "nilai" => match f.text("rating").trim().parse::<u8>() {
            Ok(rating) => Some(Action::Rate { rating }),
            Err(_) => Some(Action::Rate { rating: 0 }),
        },
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
    let done = action.as_ref().map(|a| match a {
        Action::Reply { .. } => l.t("Balasan Anda terkirim.", "Your reply was sent."),
        Action::Rate { .. } => l.t(
            "Terima kasih atas penilaian Anda.",
            "Thank you for your rating.",
        ),
        _ => l.t("Laporan dibuka kembali.", "The report was reopened."),
    });
    let tickets = ctx.state.tickets.clone();
    let (c, t) = (code.clone(), token.clone());
    let acted = block(move || {
        Ok(match action {
            None => tickets.find_report(&c, t.as_deref(), true).and_then(|found| {
                let id = crate::domain::TicketId::parse(&found.ticket.id).map_err(crate::tickets::TicketError::Stored)?;
                tickets.report_view(&id, found.audience)
            }),
            Some(a) => {
                // A refused action shows the report as it stands, with the refusal.
                match tickets.follow_up(&c, t.as_deref(), a, Timestamp::now()) {
                    Ok((event, view)) => {
                        tracing::info!(ticket = %event.ticket, event.kind = event.change.kind(), "citizen follow-up (web)");
                        Ok(view)
                    }
                    Err(e) => Err(e),
                }
            }
        })
    })
    .await;
    let result = match acted {
        Ok(r) => r,
        Err(e) => Err(crate::tickets::TicketError::Db(
            crate::db::DbError::Unavailable(e.to_string()),
        )),
    };
    match result {
        Ok(view) => {
            let body = pages::report(
                l,
                &ctx.console.site,
                &view,
                Audience::Citizen,
                token.as_deref(),
                done,
                None,
            );
            page(&ctx, StatusCode::OK, title, &body)
        }
        Err(e) => {
            let r = Refusal::ticket(l, e);
            refused(&ctx, &r);
            // The report is shown again only when the token opened it: a refusal of the
            // action itself (a state that does not allow it, a field), never of the token.
            let tickets = ctx.state.tickets.clone();
            let (c, t) = (code.clone(), token.clone());
            let shown = if r.status == StatusCode::NOT_FOUND
                || r.status == StatusCode::UNAUTHORIZED
                || r.status == StatusCode::BAD_REQUEST
            {
                None
            } else {
                block(move || {
                    Ok(tickets
                        .find_report(&c, t.as_deref(), true)
                        .and_then(|found| {
                            let id = crate::domain::TicketId::parse(&found.ticket.id)
                                .map_err(crate::tickets::TicketError::Stored)?;
                            tickets.report_view(&id, found.audience)
                        }))
                })
                .await
                .ok()
                .and_then(Result::ok)
            };
            let body = match shown {
                Some(view) => pages::report(
                    l,
                    &ctx.console.site,
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
