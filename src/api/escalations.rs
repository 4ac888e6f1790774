//! SLA escalations to this node's verifiers (`tickets::escalations`): the open list and the
//! acknowledgement, for verifiers and admins (any other role gets 403).

use actix_web::{HttpRequest, HttpResponse, web};

use super::dto::{EscalationBody, EscalationList};
use super::error::{ApiError, ErrorBody};
use super::officers::officer;
use super::{ApiState, block};
use crate::domain::Timestamp;
use crate::tickets::EscalationView;

fn body(v: EscalationView) -> EscalationBody {
    let at = |ms: i64| Timestamp::from_millis(ms).to_string();
    EscalationBody {
        due_at: at(v.due_ms),
        breached_at: at(v.breached_at_ms),
        acknowledged_at: v.acknowledged_at_ms.map(at),
        id: v.id,
        ticket: v.ticket,
        tracking_code: v.tracking_code,
        agency: v.agency,
        step: v.step.to_owned(),
        late_ms: v.late_ms,
        acknowledged_by: v.acknowledged_by,
    }
}

/// The open SLA escalations.
#[utoipa::path(get, path = "/api/v1/escalations", tag = "officers", security(("bearer" = [])),
    responses((status = 200, body = EscalationList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a verifier or admin")))]
pub async fn list(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let tickets = state.tickets.clone();
    let open = block(move || Ok(tickets.escalations(&officer, Timestamp::now())?)).await?;
    Ok(HttpResponse::Ok().json(EscalationList {
        escalations: open.into_iter().map(body).collect(),
    }))
}

/// Acknowledge an SLA escalation (it leaves the open list; who and when are kept and logged).
#[utoipa::path(post, path = "/api/v1/escalations/{id}/ack", tag = "officers", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = EscalationBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a verifier or admin"),
        (status = 404, body = ErrorBody, description = "no such escalation"),
        (status = 409, body = ErrorBody, description = "already acknowledged")))]
pub async fn ack(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let tickets = state.tickets.clone();
    let done = block(move || Ok(tickets.acknowledge(&officer, &path, Timestamp::now())?)).await?;
    Ok(HttpResponse::Ok().json(body(done)))
}
