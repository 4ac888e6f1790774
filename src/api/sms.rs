//! Admin routes of the SMS channel: the outbox by state with its dead letters, sending dead
//! letters again, blocked numbers. A node without `[sms]` answers 404 `sms_not_configured`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::officers::officer;
use super::{ApiState, block as off_executor};
use crate::domain::{Role, Timestamp};
use crate::sms::admin::{self, AdminError, OutboxView};
use crate::sms::model::BlockedRow;

async fn admin_db(
    state: &ApiState,
    req: &HttpRequest,
    what: &'static str,
) -> Result<crate::db::Db, ApiError> {
    let o = officer(state, req).await?;
    o.require(&[Role::Admin], what)?;
    if state.sms.is_none() {
        return Err(ApiError::NotFound(
            "this node has no SMS channel ([sms] is not configured)".into(),
        ));
    }
    Ok(state.tickets.db().clone())
}

fn admin_error(e: AdminError) -> ApiError {
    match e {
        AdminError::NotANumber(e) => ApiError::Unprocessable {
            code: "invalid_field",
            message: format!("number: {e}"),
        },
        AdminError::Db(e) => e.into(),
    }
}

/// The SMS outbox by state, and its dead letters (admin).
#[utoipa::path(get, path = "/api/v1/admin/sms/outbox", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = OutboxView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn outbox(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let db = admin_db(&state, &req, "see the SMS outbox").await?;
    let view = off_executor(move || Ok(admin::outbox(&db)?)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Which dead letters to send again.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// One outbox id; absent: every dead letter.
    #[serde(default)]
    pub id: Option<i64>,
}

/// Send dead letters again (admin): answers `{"queued": n}`.
#[utoipa::path(post, path = "/api/v1/admin/sms/retry", tag = "admin", security(("bearer" = [])),
    request_body = RetryRequest,
    responses((status = 200, description = "queued again"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn retry(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<RetryRequest>,
) -> Result<HttpResponse, ApiError> {
    let db = admin_db(&state, &req, "retry SMS").await?;
    let id = body.id;
    let n = off_executor(move || Ok(admin::retry(&db, id, Timestamp::now())?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "queued": n })))
}

/// Blocked numbers (admin).
#[utoipa::path(get, path = "/api/v1/admin/sms/blocked", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "blocked numbers: phone, note, blocked_by, blocked_at_ms"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn blocked(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let db = admin_db(&state, &req, "see blocked numbers").await?;
    let list: Vec<BlockedRow> = off_executor(move || Ok(admin::blocked(&db)?)).await?;
    let rows: Vec<_> = list
        .into_iter()
        .map(|b| {
            serde_json::json!({"phone": b.phone, "note": b.note, "blocked_by": b.blocked_by,
                "blocked_at_ms": b.blocked_at_ms})
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// A number to block or unblock.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberRequest {
    /// The number (08…, 628… or +628…).
    pub number: String,
    /// Why (blocking only).
    #[serde(default)]
    pub note: Option<String>,
}

/// Block a number (admin): its messages are dropped unanswered. Answers `{"blocked": number}`.
#[utoipa::path(post, path = "/api/v1/admin/sms/blocked", tag = "admin", security(("bearer" = [])),
    request_body = NumberRequest,
    responses((status = 200, description = "blocked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn block(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NumberRequest>,
) -> Result<HttpResponse, ApiError> {
    let o = officer(&state, &req).await?;
    let db = admin_db(&state, &req, "block numbers").await?;
    let NumberRequest { number, note } = body.into_inner();
    let by = o.username.clone();
    let phone = off_executor(move || {
        admin::block(&db, &number, note, &by, Timestamp::now()).map_err(admin_error)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "blocked": phone })))
}

/// Unblock a number (admin). Answers `{"unblocked": true|false}` (false: it was not blocked).
#[utoipa::path(post, path = "/api/v1/admin/sms/unblock", tag = "admin", security(("bearer" = [])),
    request_body = NumberRequest,
    responses((status = 200, description = "unblocked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn unblock(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NumberRequest>,
) -> Result<HttpResponse, ApiError> {
    let db = admin_db(&state, &req, "unblock numbers").await?;
    let number = body.into_inner().number;
    let was = off_executor(move || admin::unblock(&db, &number).map_err(admin_error)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "unblocked": was })))
}
