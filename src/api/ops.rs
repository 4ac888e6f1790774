//! Operations routes: liveness, readiness, Prometheus metrics, the OpenAPI document.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::error::{ApiError, ErrorBody};
use super::{ApiState, block};
use crate::db::migrations;
use crate::domain::Status;
use crate::domain::event::SlaStep;
use crate::metrics::Gauge;
use crate::tickets::store::{self, GroupColumn};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Longest time a readiness check waits for the writer's answer.
const READY_PROBE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Readiness: the node can write now. The writer pings its own connection (the one every
/// write goes through) and checks that every migration is applied; while the database is
/// unavailable the answer is immediate, and it never waits longer than 1.5 s (`READY_PROBE`).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, body = ErrorBody)))]
pub async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    if let Some(why) = state.tickets.hold().reason() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", super::error::RETRY_AFTER_SECS.to_string()))
            .json(ErrorBody {
                error: "restoring".into(),
                message: why,
            });
    }
    let db = state.tickets.db().clone();
    let ready = web::block(move || {
        db.probe(READY_PROBE, |conn| {
            migrations::all_applied(conn).map_err(|e| e.to_string())
        })
    })
    .await;
    let refuse = |message: &str| {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", super::error::RETRY_AFTER_SECS.to_string()))
            .json(ErrorBody {
                error: "not_ready".into(),
                message: message.into(),
            })
    };
    match ready {
        Ok(Ok(true)) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Ok(Ok(false)) => refuse("migrations pending"),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "not ready");
            refuse(&format!("cannot write now: {e}"))
        }
        Err(_) => refuse("readiness check failed"),
    }
}

fn peer_gauges(peers: &[crate::federation::PeerStatus]) -> Vec<Gauge> {
    let per = |name, help, f: &dyn Fn(&crate::federation::PeerStatus) -> f64| Gauge {
        name,
        help,
        samples: peers
            .iter()
            .map(|p| (vec![("peer", p.node.clone())], f(p)))
            .collect(),
    };
    vec![
        per(
            "lapor_federation_peer_up",
            "1 when the last exchange with the peer succeeded.",
            &|p| f64::from(u8::from(p.reachable)),
        ),
        per(
            "lapor_federation_outbox_depth",
            "Events waiting for delivery to the peer.",
            &|p| p.outbox_depth as f64,
        ),
        per(
            "lapor_federation_outbox_oldest_age_seconds",
            "Age of the oldest event waiting for the peer.",
            &|p| p.oldest_undelivered_age_ms.unwrap_or(0) as f64 / 1000.0,
        ),
        per(
            "lapor_federation_outbox_refused",
            "Events the peer refused (kept, marked).",
            &|p| p.refused as f64,
        ),
        per(
            "lapor_federation_quarantined",
            "Events from the peer held in quarantine.",
            &|p| p.quarantined as f64,
        ),
        per(
            "lapor_federation_last_contact_age_seconds",
            "Seconds since the peer last answered or called (-1: never).",
            &|p| {
                p.last_contact_ms.map_or(-1.0, |t| {
                    (crate::domain::Timestamp::now().millis() - t) as f64 / 1000.0
                })
            },
        ),
    ]
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let db = state.tickets.db().clone();
    let (by_status, groups, alerts, escalations) = block(move || {
        let mut c = db.read()?;
        Ok((
            store::count_by(&mut c, GroupColumn::Status)?,
            store::count_by_status_and_breaches(&mut c)?,
            crate::hub::alerts::counts(&mut c)?,
            crate::tickets::escalations::open_counts(&mut c)?,
        ))
    })
    .await?;
    let tickets = Gauge {
        name: "lapor_tickets",
        help: "Tickets on this node by status.",
        samples: Status::ALL
            .iter()
            .map(|s| {
                let n = by_status
                    .iter()
                    .find(|(k, _)| k == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (vec![("status", s.as_str().to_owned())], n as f64)
            })
            .collect(),
    };
    let breaches = Gauge {
        name: "lapor_sla_breached_tickets",
        help: "Tickets with a recorded SLA breach, by step.",
        samples: [
            (SlaStep::VerifyDispatch, "verify_dispatch"),
            (SlaStep::Response, "response"),
            (SlaStep::Overall, "overall"),
        ]
        .iter()
        .map(|(step, name)| {
            let bit = i32::from(step.bit());
            let n: i64 = groups
                .iter()
                .filter(|(_, b, _)| b & bit != 0)
                .map(|(_, _, n)| n)
                .sum();
            (vec![("step", (*name).to_owned())], n as f64)
        })
        .collect(),
    };
    let ws = state.tickets.db().writer_stats();
    let load =
        |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let writer = Gauge {
        name: "lapor_db_write_total",
        help: "Writer activity since start: group commits, jobs in them, failed group commits.",
        samples: vec![
            (vec![("kind", "groups".to_owned())], load(&ws.groups)),
            (vec![("kind", "jobs".to_owned())], load(&ws.jobs)),
            (
                vec![("kind", "failed_groups".to_owned())],
                load(&ws.failed_groups),
            ),
            (
                vec![("kind", "refused_jobs".to_owned())],
                load(&ws.refused_jobs),
            ),
            (
                vec![("kind", "reconnects".to_owned())],
                load(&ws.reconnects),
            ),
        ],
    };
    let health = state.tickets.db().health();
    let db_up = Gauge {
        name: "lapor_db_up",
        help: "1 while the writer holds a working database connection.",
        samples: vec![(vec![], f64::from(u8::from(health.is_up())))],
    };
    let db_outages = Gauge {
        name: "lapor_db_outages_total",
        help: "Times the writer lost the database since start.",
        samples: vec![(vec![], health.outages() as f64)],
    };
    let intake = state.tickets.intake_stats();
    let intake = Gauge {
        name: "lapor_intake_groups_total",
        help: "Reports filed since start, grouped: writer jobs (groups), the reports in them, \
               and those whose event the writer had to seal again (its place ahead was taken).",
        samples: vec![
            (vec![("kind", "groups".to_owned())], intake.groups as f64),
            (vec![("kind", "reports".to_owned())], intake.reports as f64),
            (
                vec![("kind", "resealed".to_owned())],
                intake.resealed as f64,
            ),
        ],
    };
    let alerts = Gauge {
        name: "lapor_federation_alerts",
        help: "Federation-health alerts holding now (raised at the hub), by kind.",
        samples: alerts
            .into_iter()
            .map(|(kind, n)| (vec![("kind", kind.to_owned())], n as f64))
            .collect(),
    };
    let escalations = Gauge {
        name: "lapor_sla_escalations_open",
        help: "SLA escalations to this node's verifiers not yet acknowledged, by step.",
        samples: escalations
            .into_iter()
            .map(|(step, n)| (vec![("step", step.to_owned())], n as f64))
            .collect(),
    };
    let mut gauges = vec![
        tickets,
        breaches,
        writer,
        db_up,
        db_outages,
        intake,
        alerts,
        escalations,
    ];
    if let Some(fed) = state.federation.clone() {
        let peers = block(move || {
            fed.status(crate::domain::Timestamp::now())
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
        gauges.extend(peer_gauges(&peers));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&gauges)))
}

/// The OpenAPI document of this API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "lapor-node API", description = "Citizen and officer API of a LAPOR! node."),
    paths(
        healthz, readyz, metrics, openapi,
        super::reports::create, super::reports::show, super::reports::reply, super::reports::rate, super::reports::reopen,
        super::officers::login, super::officers::logout, super::officers::list, super::officers::detail,
        super::officers::act, super::officers::stats, super::officers::erase,
        super::escalations::list, super::escalations::ack,
        super::federation::peers, super::federation::quarantine,
        super::admin::list_agencies, super::admin::add_agency, super::admin::disable_agency,
        super::admin::enable_agency,
        super::accounts::list, super::accounts::add, super::accounts::disable,
        super::accounts::password, super::accounts::role,
        super::sms::outbox, super::sms::retry, super::sms::blocked, super::sms::block,
        super::sms::unblock,
        super::hub::stats, super::hub::sla, super::hub::flows, super::hub::backlog, super::hub::export, super::hub::federation,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// Declares the bearer-token security scheme.
#[derive(Debug)]
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3 document.
#[utoipa::path(get, path = "/api-docs/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Anything else.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
}
