//! Operator routes for the federation (admin): peer status and quarantined events.

use actix_web::{HttpRequest, HttpResponse, web};

use super::error::{ApiError, ErrorBody};
use super::officers::officer;
use super::{ApiState, block};
use crate::domain::{Role, Timestamp};
use crate::federation::PeerStatus;
use crate::federation::quarantine::QuarantineRow;

fn federation(state: &ApiState) -> Result<crate::federation::Federation, ApiError> {
    state.federation.clone().ok_or_else(|| {
        ApiError::NotFound("this node is not federated ([federation] is not configured)".into())
    })
}

/// Each peer: reachable or not, last contact, outbox depth and oldest undelivered age,
/// refusals, quarantine count (admin).
#[utoipa::path(get, path = "/api/v1/federation/peers", tag = "federation", security(("bearer" = [])),
    responses((status = 200, body = [PeerStatus]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn peers(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let o = officer(&state, &req).await?;
    o.require(&[Role::Admin], "see federation peers")?;
    let fed = federation(&state)?;
    let list = block(move || {
        fed.status(Timestamp::now())
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The latest quarantined (refused) events, with reasons (admin).
#[utoipa::path(get, path = "/api/v1/federation/quarantine", tag = "federation", security(("bearer" = [])),
    responses((status = 200, body = [QuarantineRow]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn quarantine(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let o = officer(&state, &req).await?;
    o.require(&[Role::Admin], "see quarantined events")?;
    let fed = federation(&state)?;
    let rows = block(move || {
        let mut c = fed.db().read()?;
        Ok(crate::federation::quarantine::list(&mut c, 500)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}
