//! `GET /nasional`: the statistics dashboard — on the hub, the nation (the hub holds every
//! ticket's public part); on a province node, its own tickets. The public part (total, by
//! status, by kind, SLA on time per step) needs no login; analysts and admins also see the
//! counts by category and by agency, and the federation's health (each peer's reachability
//! and queue, as this node sees it). Charts are server-rendered SVG (`web::charts`).
//!
//! The totals come from [`figures`] (`tickets::queries`' statistics); the national part — by
//! province, SLA by province and agency, flows, backlog by age — from the statistics kept with
//! every stored event (`web::national`, the read model of `/api/v1/hub/*`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use maud::{Markup, html};

use super::charts::{self, Bar};
use super::i18n::Lang;
use super::session::{self, Who};
use super::{Ctx, layout::Signed};
use crate::api::block;
use crate::auth::Officer;
use crate::domain::Role;
use crate::domain::event::SlaStep;
use crate::tickets::{Statistics, TicketError, Tickets};

/// The dashboard's figures for `viewer`: everything for analysts and admins, the public part
/// for anyone else.
///
/// # Errors
///
/// The database could not be read.
pub fn figures(tickets: &Tickets, viewer: Option<&Officer>) -> Result<Statistics, TicketError> {
    match viewer.filter(|o| matches!(o.role, Role::Analyst | Role::Admin)) {
        Some(o) => tickets.statistics(o),
        None => tickets.public_statistics(),
    }
}

fn step_name(l: Lang, s: SlaStep) -> &'static str {
    match s {
        SlaStep::VerifyDispatch => l.t("Verifikasi dan disposisi", "Verification and dispatch"),
        SlaStep::Response => l.t("Tanggapan instansi", "Agency response"),
        SlaStep::Overall => l.t("Penyelesaian (60 hari)", "Completion (60 days)"),
    }
}

/// The federation's health as this node sees it (each peer's reachability and queue), for
/// analysts and admins; `None` when the node is not federated. On the hub this is every
/// member; issue 22's signed status reports will add each node's own view.
fn health(ctx: &Ctx) -> Option<Vec<crate::federation::PeerStatus>> {
    let fed = ctx.state.federation.as_ref()?;
    match fed.status(crate::domain::Timestamp::now()) {
        Ok(peers) => Some(peers),
        Err(e) => {
            tracing::warn!(error = %e, "console: federation status unavailable");
            None
        }
    }
}

fn health_table(
    l: Lang,
    site: &super::layout::Site,
    peers: &[crate::federation::PeerStatus],
) -> Markup {
    html! {
        h2 { (l.t("Kesehatan federasi", "Federation health")) }
        table #kesehatan {
            thead { tr {
                th { "Node" } th { (l.t("Terjangkau", "Reachable")) } th { (l.t("Kontak terakhir", "Last contact")) }
                th { (l.t("Antrean", "Queued")) } th { (l.t("Tertua menunggu", "Oldest waiting")) }
            } }
            tbody {
                @for p in peers {
                    tr {
                        td { (p.node) }
                        td { @if p.reachable { (l.t("ya", "yes")) } @else { strong { (l.t("tidak", "no")) } } }
                        td { (p.last_contact_ms.map_or_else(|| "–".to_owned(), |ms| site.at_ms(l, ms))) }
                        td { (p.outbox_depth) }
                        td { (p.oldest_undelivered_age_ms.map_or_else(|| "–".to_owned(), |ms| format!("{} s", ms / 1000))) }
                    }
                }
            }
        }
    }
}

fn page_body(l: Lang, s: &Statistics, full: bool) -> Markup {
    let sla: Vec<Bar> = s
        .sla
        .iter()
        .map(|c| Bar {
            label: step_name(l, c.step).to_owned(),
            // Nothing measured yet: no bar, no percentage.
            value: if c.measured == 0 {
                0
            } else {
                c.on_time_permille
            },
            shown: if c.measured == 0 {
                "– (0/0)".to_owned()
            } else {
                format!(
                    "{} % ({}/{})",
                    c.on_time_permille / 10,
                    c.measured - c.breached,
                    c.measured
                )
            },
        })
        .collect();
    html! {
        p { (l.t("Jumlah laporan: ", "Reports: ")) strong #total { (s.total) } }
        h2 { (l.t("Menurut status", "By status")) }
        (charts::bars("per-status", l.t("Laporan menurut status", "Reports by status"), &charts::counts(&s.by_status, |k| l.status(k).to_owned())))
        h2 { (l.t("Menurut jenis", "By kind")) }
        (charts::bars("per-jenis", l.t("Laporan menurut jenis", "Reports by kind"), &charts::counts(&s.by_kind, |k| l.kind(k).to_owned())))
        h2 { (l.t("Ketepatan waktu (SLA)", "On time (SLA)")) }
        (charts::bars("sla", l.t("Persentase tepat waktu per tahap", "Share on time per step"), &sla))
        @if full {
            h2 { (l.t("Menurut kategori", "By category")) }
            (charts::bars("per-kategori", l.t("Laporan menurut kategori", "Reports by category"), &charts::counts(&s.by_category, str::to_owned)))
            h2 { (l.t("Menurut instansi", "By agency")) }
            (charts::bars("per-instansi", l.t("Laporan menurut instansi", "Reports by agency"), &charts::counts(&s.by_agency, str::to_owned)))
        } @else {
            p { a href="/petugas/masuk" { (l.t("Analis: masuk untuk rincian per kategori dan instansi.", "Analysts: log in for the figures by category and agency.")) } }
        }
    }
}

/// `GET /nasional`.
pub async fn dashboard(ctx: Ctx, req: HttpRequest) -> HttpResponse {
    let l = ctx.lang;
    let viewer = match session::who(&ctx.state, &req).await {
        Who::Officer(o, t) => Some((o, t)),
        _ => None,
    };
    let (tickets, o) = (
        ctx.state.tickets.clone(),
        viewer.as_ref().map(|(o, _)| o.clone()),
    );
    let full = viewer
        .as_ref()
        .is_some_and(|(o, _)| matches!(o.role, Role::Analyst | Role::Admin));
    let who = if full {
        crate::hub::report::Audience::Officials
    } else {
        crate::hub::report::Audience::Public {
            k: i64::from(ctx.state.tickets.statistics_settings().small_cell_k),
        }
    };
    // The hub's analysts also see every member node's health (reading it raises new alerts,
    // as the API does).
    let watch = (full && ctx.console.hub && ctx.state.federation.is_some()).then(|| {
        (
            crate::api::hub::health_scope(&ctx.state),
            ctx.state.metrics.clone(),
        )
    });
    let result = block(move || {
        let s = figures(&tickets, o.as_ref())?;
        let mut conn = tickets.db().read_statistics()?;
        let n = super::national::figures(&mut conn, who, full)?;
        drop(conn);
        let h = watch.and_then(|(scope, metrics)| {
            crate::hub::watch::read(
                tickets.db(),
                &scope,
                Some(&metrics),
                crate::domain::Timestamp::now(),
            )
            .inspect_err(|e| tracing::warn!(error = %e, "console: federation health unavailable"))
            .ok()
        });
        Ok(Ok::<_, TicketError>((s, n, h)))
    })
    .await;
    let title = if ctx.console.hub {
        l.t("Statistik nasional", "National statistics")
    } else {
        l.t("Statistik node", "Node statistics")
    };
    let peers = if full { health(&ctx) } else { None };
    let (status, body) = match result {
        Ok(Ok((s, n, h))) => (
            StatusCode::OK,
            html! {
                (page_body(l, &s, full))
                (super::national::section(l, &n))
                @if let Some(h) = &h { (super::national::health(l, &ctx.console.site, h)) }
                @if let Some(p) = &peers { (health_table(l, &ctx.console.site, p)) }
            },
        ),
        Ok(Err(e)) => {
            let r = super::problem::Refusal::ticket(l, e);
            r.record(&ctx.state.metrics);
            (r.status, super::layout::notice(false, &r.message))
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            super::layout::notice(
                false,
                l.t(
                    "Layanan sedang tidak tersedia.",
                    "The service is temporarily unavailable.",
                ),
            ),
        ),
    };
    let mut p = ctx.page();
    p.signed = viewer.map(|(o, t)| Signed {
        username: o.username.clone(),
        role: l.role(o.role),
        csrf: session::csrf_of(&t),
        admin: o.role == Role::Admin,
    });
    super::html(status, &p.render(title, &body))
}
