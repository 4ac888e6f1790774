//! Officer endpoints: login/logout, the inbox, ticket detail, lifecycle actions, statistics.
//! Every handler authenticates the bearer token here; role and scope are checked below, by
//! `tickets` (the same for every channel):
//!
//! | endpoint | verifier | liaison | admin | analyst |
//! |---|---|---|---|---|
//! | `GET /tickets`, `GET /tickets/{id}` | all tickets | own agency's | – | – |
//! | `POST /tickets/{id}/actions` | triage actions | start/respond/resolve, own agency | – | – |
//! | `GET /stats` | – | – | yes | yes |

use actix_web::{HttpRequest, HttpResponse, web};

use super::dto::{
    ActionRequest, LoginRequest, LoginResponse, Stats, TicketDetail, TicketPage, TicketQuery,
};
use super::error::{ApiError, ErrorBody};
use super::{ApiState, block, views};
use crate::auth::Officer;
use crate::domain::Timestamp;
use crate::tickets::{Action, InboxQuery};

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
        })?;
    let value = header.to_str().unwrap_or_default();
    value
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })
}

/// The authenticated officer of a request.
pub async fn officer(state: &ApiState, req: &HttpRequest) -> Result<Officer, ApiError> {
    let token = bearer(req)?;
    let auth = state.auth.clone();
    block(move || {
        auth.authenticate(&token, Timestamp::now())
            .map_err(ApiError::from)
    })
    .await
}

/// Log in.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "officers", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "login limit of the address, locked username or every hash slot busy; see Retry-After")))]
pub async fn login(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, actix_web::Error> {
    let LoginRequest { username, password } = body.into_inner();
    let auth = state.auth.clone();
    let name = username.clone();
    let (token, expires, officer) = state
        .limits
        .login(&req, &username, move || {
            auth.login(&name, &password, Timestamp::now())
        })
        .await?;
    tracing::info!(officer = %officer.username, "officer logged in");
    Ok(HttpResponse::Ok().json(LoginResponse {
        token,
        expires_at: expires.to_string(),
        role: format!("{:?}", officer.role).to_lowercase(),
        agency: officer.agency.map(|a| a.to_string()),
    }))
}

/// Log out (revoke the token).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "officers", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    officer(&state, &req).await?;
    let token = bearer(&req)?;
    let auth = state.auth.clone();
    block(move || auth.revoke(&token).map_err(ApiError::from)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The inbox.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "officers", params(TicketQuery), security(("bearer" = [])),
    responses((status = 200, body = TicketPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<TicketQuery>,
) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let (tickets, query) = (state.tickets.clone(), InboxQuery::from(q.into_inner()));
    let page = block(move || Ok(tickets.inbox(&officer, &query)?)).await?;
    Ok(HttpResponse::Ok().json(views::page(&page)))
}

/// Ticket detail and timeline.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "officers", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = TicketDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn detail(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let tickets = state.tickets.clone();
    let detail = block(move || Ok(tickets.ticket_detail(&officer, &path)?)).await?;
    Ok(HttpResponse::Ok().json(views::detail(&detail)))
}

/// Take a lifecycle action.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/actions", tag = "officers", params(("id" = String, Path)),
    request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = TicketDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn act(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ActionRequest>,
) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let (tickets, action) = (state.tickets.clone(), Action::from(body.into_inner()));
    let who = officer.username.clone();
    let (event, detail) = block(move || {
        let event = tickets.officer_action(&officer, &path, action, Timestamp::now())?;
        let detail = match tickets.ticket_detail(&officer, &path) {
            // A liaison who returned the ticket (not their authority) no longer reads it.
            Err(crate::tickets::TicketError::OutOfScope(_))
                if matches!(event.change, crate::domain::Change::NotOurAuthority { .. }) =>
            {
                tickets.detail_after_return(&path)
            }
            other => other,
        };
        Ok((event, detail))
    })
    .await?;
    tracing::info!(ticket = %event.ticket, event.kind = event.change.kind(), officer = %who, "officer action");
    Ok(HttpResponse::Ok().json(views::detail(&detail?)))
}

/// Statistics.
#[utoipa::path(get, path = "/api/v1/stats", tag = "officers", security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn stats(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let tickets = state.tickets.clone();
    let stats = block(move || Ok(tickets.statistics(&officer)?)).await?;
    Ok(HttpResponse::Ok().json(views::stats(&stats)))
}

/// Erase a reporter's personal data (admin): the contact and its salt are deleted and an
/// `erased` event is appended; signatures stay valid.
#[utoipa::path(post, path = "/api/v1/reports/{tracking_code}/erase", tag = "officers",
    params(("tracking_code" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn erase(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let (tickets, who) = (state.tickets.clone(), officer.username.clone());
    let event = block(move || Ok(tickets.erase_report(&officer, &path, Timestamp::now())?)).await?;
    tracing::info!(ticket = %event.ticket, officer = %who, "personal data erased");
    Ok(HttpResponse::NoContent().finish())
}
