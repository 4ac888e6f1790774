//! Citizen endpoints: file a report, follow it by tracking code, reply, rate, reopen. No
//! account: follow-up actions (and reading a confidential report) need the follow-up token
//! given at intake, sent as the `X-Follow-Up-Token` header.

use actix_web::{HttpRequest, HttpResponse, web};

use super::dto::{
    Deadlines, MessageRequest, NewReportRequest, PublicReport, RatingRequest, ReportCreated,
};
use super::error::{ApiError, ErrorBody};
use super::views::{self, Audience};
use super::{ApiState, block};
use crate::domain::{Actor, Channel, Privacy, Timestamp, TrackingCode};
use crate::event_log::store as log;
use crate::tickets::model::TicketRow;
use crate::tickets::{Action, NewReport, hash_token, store};

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
    let b = body.into_inner();
    let report = NewReport {
        kind: b.kind,
        title: b.title,
        text: b.body,
        category: b.category,
        region: b.region,
        agency: b.agency,
        channel: b.channel.unwrap_or(Channel::Api),
        privacy: Privacy {
            anonymous: b.anonymous,
            confidential: b.confidential,
        },
        contact: b.reporter,
    };
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

async fn load_by_id(state: &ApiState, id: crate::domain::TicketId) -> Result<TicketRow, ApiError> {
    let db = state.tickets.db().clone();
    block(move || {
        let mut c = db.read()?;
        store::by_id(&mut c, &id)?.ok_or_else(|| ApiError::NotFound("ticket not found".into()))
    })
    .await
}

/// Finds a report by tracking code and decides the caller's audience: `Citizen` with the
/// right token, `Public` without one.
///
/// No answer may tell whether a report the caller cannot see exists: an unknown code, a
/// confidential report asked for without a token, and a wrong token (on any report) all get
/// the same 404 with the same message. An action that needs the token is refused for its
/// absence (401) before the code is even looked up.
async fn find(
    state: &ApiState,
    req: &HttpRequest,
    code: &str,
    need_token: bool,
) -> Result<(TicketRow, Audience), ApiError> {
    let code = TrackingCode::parse(code).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let token = req
        .headers()
        .get(TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    if need_token && token.is_none() {
        return Err(ApiError::Unauthorized(format!(
            "this action needs the {TOKEN_HEADER} header"
        )));
    }
    let tickets = state.tickets.clone();
    let node = state.tickets.node().to_string();
    block(move || {
        let mut c = tickets.db().read()?;
        let hidden = || {
            ApiError::NotFound(format!(
                "no report with this tracking code that this request may see (a confidential \
                 report needs its {TOKEN_HEADER}, and a follow-up needs the right one)"
            ))
        };
        let row = store::by_tracking_code(&mut c, tickets.codes(), &code)?
            .filter(|r| r.origin_node == node);
        let audience = match (row.as_ref(), token) {
            (Some(row), Some(t)) => {
                let id = crate::domain::TicketId::parse(&row.id)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                let stored = store::follow_up_hash(&mut c, &id)?;
                if stored.is_none_or(|h| h != hash_token(&t)) {
                    return Err(hidden());
                }
                Audience::Citizen
            }
            (Some(row), None) if !row.confidential => Audience::Public,
            _ => return Err(hidden()),
        };
        Ok((row.ok_or_else(hidden)?, audience))
    })
    .await
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
    let (row, audience) = find(&state, &req, &path, false).await?;
    let events = ticket_events(&state, &row).await?;
    Ok(HttpResponse::Ok().json(views::public_report(&row, &events, audience)))
}

/// A ticket's events in fold order, each with whether its signature verified with the key its
/// origin held at the event's time.
pub async fn ticket_events(
    state: &ApiState,
    row: &TicketRow,
) -> Result<Vec<(crate::domain::Event, bool)>, ApiError> {
    let db = state.tickets.db().clone();
    let id =
        crate::domain::TicketId::parse(&row.id).map_err(|e| ApiError::Internal(e.to_string()))?;
    block(move || {
        let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
        let mut c = db.read()?;
        let keyring = crate::event_log::keys::keyring(&mut c).map_err(|e| internal(&e))?;
        let rows = log::for_ticket(&mut c, &id).map_err(|e| internal(&e))?;
        // A verified event comes out of the verification already decoded; only the others are
        // decoded on their own.
        let mut checked = std::collections::HashMap::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let (event, verified) = match crate::crypto::signing::verify(r.raw.as_bytes(), &keyring)
            {
                Ok(e) => (e, true),
                Err(_) => (log::decode(r).map_err(|e| internal(&e))?, false),
            };
            checked.insert(event.id.clone(), verified);
            events.push(event);
        }
        Ok(crate::domain::fold::order(&events)
            .into_iter()
            .map(|e| (e.clone(), checked.get(&e.id).copied().unwrap_or(false)))
            .collect())
    })
    .await
}

async fn citizen_action(
    state: &ApiState,
    req: &HttpRequest,
    code: &str,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let (row, _) = find(state, req, code, true).await?;
    let id =
        crate::domain::TicketId::parse(&row.id).map_err(|e| ApiError::Internal(e.to_string()))?;
    let tickets = state.tickets.clone();
    let kind = block(move || Ok(tickets.act(&id, &Actor::citizen(), action, Timestamp::now())?))
        .await?
        .0
        .change
        .kind();
    let row = load_by_id(state, id).await?;
    let events = ticket_events(state, &row).await?;
    tracing::info!(ticket = %row.id, event.kind = kind, "citizen follow-up");
    Ok(HttpResponse::Ok().json(views::public_report(&row, &events, Audience::Citizen)))
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
        &path,
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
        &path,
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
        &path,
        Action::Reopen {
            message: body.into_inner().message,
        },
    )
    .await
}
