//! Citizen endpoints: file a report, follow it by tracking code, reply, rate, reopen. No
//! account: follow-up actions (and reading a confidential report) need the follow-up token
//! given at intake, sent as the `X-Follow-Up-Token` header.

use actix_web::{HttpRequest, HttpResponse, web};

use super::dto::{
    Deadlines, MessageRequest, NewReportRequest, PublicReport, RatingRequest, ReportCreated,
};
use super::error::{ApiError, ErrorBody};
use super::{ApiState, block, views};
use crate::domain::{Actor, Timestamp};
use crate::tickets::{Action, NewReport};

/// Header carrying the follow-up token.
pub const TOKEN_HEADER: &str = "x-follow-up-token";

/// File a report.
#[utoipa::path(post, path = "/api/v1/reports", tag = "citizens", request_body = NewReportRequest,
    responses((status = 201, body = ReportCreated), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    state: web::Data<ApiState>,
    body: web::Json<NewReportRequest>,
) -> Result<HttpResponse, ApiError> {
    let report = NewReport::from(body.into_inner());
    let submitted = state
        .tickets
        .submit_async(&report, &Actor::citizen(), Timestamp::now())
        .await?;
    let crate::domain::Change::Created(created) = &submitted.event.change else {
        return Err(ApiError::Internal(
            "intake produced no created event".into(),
        ));
    };
    tracing::info!(ticket = %submitted.event.ticket, channel = ?created.channel, "report filed");
    Ok(HttpResponse::Created().json(ReportCreated {
        tracking_code: created.tracking_code.to_string(),
        follow_up_token: submitted.follow_up_token.clone(),
        status: crate::domain::Status::Submitted.as_str().to_owned(),
        deadlines: Deadlines {
            verify_due: created.verify_due.to_string(),
            response_due: None,
            auto_close_due: None,
            reopen_until: None,
            overall_due: created.overall_due.to_string(),
        },
    }))
}

/// The follow-up token a request carries, if any (a header that is not text counts as a
/// wrong token, not as none).
fn token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
}

/// Follow a report.
#[utoipa::path(get, path = "/api/v1/reports/{tracking_code}", tag = "citizens",
    params(("tracking_code" = String, Path, description = "e.g. 31-K7QX-9F2M"),
        ("X-Follow-Up-Token" = Option<String>, Header, description = "needed for confidential reports")),
    responses((status = 200, body = PublicReport), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown code, confidential report without its token, or a wrong token: one answer for all")))]
pub async fn show(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tickets, token) = (state.tickets.clone(), token(&req));
    let view = block(move || Ok(tickets.report(&path, token.as_deref())?)).await?;
    Ok(HttpResponse::Ok().json(views::public_report(&view)))
}

/// A citizen's follow-up with the follow-up token; answers the citizen's view after it.
async fn citizen_action(
    state: &ApiState,
    req: &HttpRequest,
    code: String,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let (tickets, token) = (state.tickets.clone(), token(req));
    let (event, view) =
        block(move || Ok(tickets.follow_up(&code, token.as_deref(), action, Timestamp::now())?))
            .await?;
    tracing::info!(ticket = %event.ticket, event.kind = event.change.kind(), "citizen follow-up");
    Ok(HttpResponse::Ok().json(views::public_report(&view)))
}

/// Reply to the agency.
#[utoipa::path(post, path = "/api/v1/reports/{tracking_code}/replies", tag = "citizens", request_body = MessageRequest,
    params(("tracking_code" = String, Path), ("X-Follow-Up-Token" = String, Header)),
    responses((status = 200, body = PublicReport), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reply(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<MessageRequest>,
) -> Result<HttpResponse, ApiError> {
    citizen_action(
        &state,
        &req,
        path.into_inner(),
        Action::Reply {
            message: body.into_inner().message,
        },
    )
    .await
}

/// Rate the outcome (1–5); closes a resolved report.
#[utoipa::path(post, path = "/api/v1/reports/{tracking_code}/rating", tag = "citizens", request_body = RatingRequest,
    params(("tracking_code" = String, Path), ("X-Follow-Up-Token" = String, Header)),
    responses((status = 200, body = PublicReport), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rate(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RatingRequest>,
) -> Result<HttpResponse, ApiError> {
    citizen_action(
        &state,
        &req,
        path.into_inner(),
        Action::Rate {
            rating: body.into_inner().rating,
        },
    )
    .await
}

/// Reopen a resolved or closed report within the window.
#[utoipa::path(post, path = "/api/v1/reports/{tracking_code}/reopen", tag = "citizens", request_body = MessageRequest,
    params(("tracking_code" = String, Path), ("X-Follow-Up-Token" = String, Header)),
    responses((status = 200, body = PublicReport), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reopen(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<MessageRequest>,
) -> Result<HttpResponse, ApiError> {
    citizen_action(
        &state,
        &req,
        path.into_inner(),
        Action::Reopen {
            message: body.into_inner().message,
        },
    )
    .await
}
