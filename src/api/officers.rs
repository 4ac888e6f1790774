//! Officer endpoints: login/logout, the inbox, ticket detail, lifecycle actions, statistics.
//! Every handler authenticates the bearer token and checks role and scope:
//!
//! | endpoint | verifier | liaison | admin | analyst |
//! |---|---|---|---|---|
//! | `GET /tickets`, `GET /tickets/{id}` | all tickets | own agency's | – | – |
//! | `POST /tickets/{id}/actions` | triage actions | start/respond/resolve, own agency | – | – |
//! | `GET /stats` | – | – | yes | yes |

use actix_web::{HttpRequest, HttpResponse, web};

use super::dto::{
    Count, LoginRequest, LoginResponse, SlaCompliance, Stats, TicketDetail, TicketPage, TicketQuery,
};
use super::error::{ApiError, ErrorBody};
use super::views::{self, Audience};
use super::{ApiState, block, reports};
use crate::auth::Officer;
use crate::domain::event::SlaStep;
use crate::domain::{Actor, AgencyCode, Role, Status, TicketId, Timestamp};
use crate::tickets::Action;
use crate::tickets::model::TicketRow;
use crate::tickets::store::{self, Filter, GroupColumn};

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

/// The inbox filter an officer may use: a liaison is held to their agency.
fn scoped_filter(officer: &Officer, q: &TicketQuery) -> Result<Filter, ApiError> {
    officer.require(&[Role::Verifier, Role::Liaison], "read tickets")?;
    if let Some(s) = &q.status {
        if Status::parse(s).is_none() {
            return Err(ApiError::invalid("status", format!("unknown status {s:?}")));
        }
    }
    if let Some(k) = &q.kind {
        if !["pengaduan", "aspirasi", "permintaan_informasi"].contains(&k.as_str()) {
            return Err(ApiError::invalid("kind", format!("unknown kind {k:?}")));
        }
    }
    if let Some(r) = &q.region {
        crate::domain::RegionCode::parse(r).map_err(|e| ApiError::invalid("region", e))?;
    }
    let mut agency = q.agency.clone();
    if officer.role == Role::Liaison {
        let own = officer.agency.as_ref().map(ToString::to_string);
        if agency.is_some() && agency != own {
            return Err(ApiError::Forbidden(
                "a liaison officer may only list their own agency's tickets".into(),
            ));
        }
        agency = own;
    }
    Ok(Filter {
        status: q.status.clone(),
        agency,
        overdue: q.overdue,
        kind: q.kind.clone(),
        region: q.region.clone(),
        text: q.q.clone(),
    })
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
    let filter = scoped_filter(&officer, &q)?;
    let limit = i64::from(q.limit.unwrap_or(50));
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    if let Some(c) = &q.cursor {
        TicketId::parse(c).map_err(|_| {
            ApiError::invalid("cursor", "is not a cursor returned by this endpoint")
        })?;
    }
    let cursor = q.cursor.clone();
    let db = state.tickets.db().clone();
    let rows = block(move || {
        let mut c = db.read()?;
        Ok(store::search(
            &mut c,
            &filter,
            cursor.as_deref(),
            limit + 1,
        )?)
    })
    .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let items: Vec<_> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(views::ticket_view)
        .collect();
    let next_cursor = if more {
        items.last().map(|t| t.id.clone())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(TicketPage { items, next_cursor }))
}

/// Loads a ticket the officer may see (404 when it does not exist or is out of scope, so a
/// liaison cannot probe other agencies' tickets).
async fn visible_ticket(
    state: &ApiState,
    officer: &Officer,
    id: &str,
) -> Result<TicketRow, ApiError> {
    officer.require(&[Role::Verifier, Role::Liaison], "read tickets")?;
    let not_found = || ApiError::NotFound(format!("no ticket {id}"));
    let tid = TicketId::parse(id).map_err(|_| not_found())?;
    let db = state.tickets.db().clone();
    let row = block(move || {
        let mut c = db.read()?;
        Ok(store::by_id(&mut c, &tid)?)
    })
    .await?
    .ok_or_else(not_found)?;
    if officer.role == Role::Liaison
        && row.agency.as_deref() != officer.agency.as_ref().map(AgencyCode::as_str)
    {
        return Err(ApiError::Forbidden(
            "this ticket is not dispatched to your agency".into(),
        ));
    }
    Ok(row)
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
    let row = visible_ticket(&state, &officer, &path).await?;
    detail_of(&state, &officer, &row).await
}

/// The detail body of a ticket the officer may see.
async fn detail_of(
    state: &ApiState,
    officer: &Officer,
    row: &TicketRow,
) -> Result<HttpResponse, ApiError> {
    let events = reports::ticket_events(state, row).await?;
    let here = state.tickets.node().as_str();
    let allowed = crate::domain::report::may_see_reporter(
        row.anonymous,
        row.agency.as_deref(),
        &crate::domain::report::Viewer {
            role: officer.role,
            agency: officer.agency.as_ref().map(AgencyCode::as_str),
            at_origin: row.origin_node == here,
            at_handler: row.handling_node == here,
        },
    );
    let contact = if allowed {
        let db = state.tickets.db().clone();
        let id = TicketId::parse(&row.id).map_err(|e| ApiError::Internal(e.to_string()))?;
        block(move || {
            let mut c = db.read()?;
            Ok(store::contact(&mut c, &id)?)
        })
        .await?
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(TicketDetail {
        reporter: views::reporter(contact, allowed),
        suggested_agency: row
            .state()
            .ok()
            .and_then(|s| s.report.suggested_agency.map(|a| a.to_string())),
        allowed_actions: allowed_actions(officer, row, here),
        timeline: views::timeline(&events, Audience::Officer),
        ticket: views::ticket_view(row),
    }))
}

/// Take a lifecycle action.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/actions", tag = "officers", params(("id" = String, Path)),
    request_body = Action, security(("bearer" = [])),
    responses((status = 200, body = TicketDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn act(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Action>,
) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    let row = visible_ticket(&state, &officer, &path).await?;
    let action = body.into_inner();
    let actor = Actor {
        role: officer.role,
        officer: Some(officer.username.clone()),
        agency: officer.agency.clone(),
    };
    let id = TicketId::parse(&row.id).map_err(|e| ApiError::Internal(e.to_string()))?;
    let tickets = state.tickets.clone();
    let (event, _) = block(move || {
        tickets
            .act(&id, &actor, action, Timestamp::now())
            .map_err(ApiError::from)
    })
    .await?;
    tracing::info!(ticket = %id, event.kind = event.change.kind(), officer = %officer.username, "officer action");
    let row = visible_ticket(&state, &officer, &path).await?;
    detail_of(&state, &officer, &row).await
}

/// Statistics.
#[utoipa::path(get, path = "/api/v1/stats", tag = "officers", security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn stats(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let officer = officer(&state, &req).await?;
    officer.require(&[Role::Analyst, Role::Admin], "read statistics")?;
    let db = state.tickets.db().clone();
    let stats = block(move || {
        let mut c = db.read()?;
        let counts = |c: &mut crate::db::DbConn, col| -> Result<Vec<Count>, ApiError> {
            Ok(store::count_by(c, col)?
                .into_iter()
                .map(|(key, count)| Count { key, count })
                .collect())
        };
        let by_status = counts(&mut c, GroupColumn::Status)?;
        let total = by_status.iter().map(|x| x.count).sum();
        let groups = store::count_by_status_and_breaches(&mut c)?;
        Ok(Stats {
            total,
            by_kind: counts(&mut c, GroupColumn::Kind)?,
            by_category: counts(&mut c, GroupColumn::Category)?,
            by_agency: counts(&mut c, GroupColumn::Agency)?,
            by_status,
            sla: sla_compliance(&groups),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(stats))
}

/// On-time shares per SLA step from counts by (status, breach bits). A step is measured once it
/// is finished (the ticket moved past it) or breached.
fn sla_compliance(groups: &[(String, i32, i64)]) -> Vec<SlaCompliance> {
    [SlaStep::VerifyDispatch, SlaStep::Response, SlaStep::Overall]
        .into_iter()
        .map(|step| {
            let bit = i32::from(step.bit());
            let (mut measured, mut breached) = (0i64, 0i64);
            for (status, bits, n) in groups {
                let st = Status::parse(status).unwrap_or(Status::Submitted);
                let finished = match step {
                    SlaStep::VerifyDispatch => !st.is_triage() && st != Status::Archived,
                    SlaStep::Response => {
                        matches!(st, Status::Responded | Status::Resolved | Status::Closed)
                    }
                    SlaStep::Overall => matches!(st, Status::Resolved | Status::Closed),
                };
                if bits & bit != 0 {
                    breached += n;
                    measured += n;
                } else if finished {
                    measured += n;
                }
            }
            let on_time_permille = if measured == 0 {
                1000
            } else {
                (measured - breached) * 1000 / measured
            };
            SlaCompliance {
                step: serde_json::to_value(step)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                measured,
                breached,
                on_time_permille,
            }
        })
        .collect()
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
    officer.require(&[Role::Admin], "erase personal data")?;
    let code = crate::domain::TrackingCode::parse(&path)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tickets = state.tickets.clone();
    let node = state.tickets.node().to_string();
    let lookup = code.clone();
    let row = block(move || {
        let mut c = tickets.db().read()?;
        Ok(store::by_tracking_code(&mut c, tickets.codes(), &lookup)?)
    })
    .await?
    .filter(|r| r.origin_node == node)
    .ok_or_else(|| ApiError::NotFound(format!("no report with tracking code {code} filed here")))?;
    let id = TicketId::parse(&row.id).map_err(|e| ApiError::Internal(e.to_string()))?;
    let actor = Actor {
        role: Role::Admin,
        officer: Some(officer.username.clone()),
        agency: None,
    };
    let tickets = state.tickets.clone();
    block(move || Ok(tickets.erase(&id, &actor, Timestamp::now())?)).await?;
    tracing::info!(ticket = %id, officer = %officer.username, "personal data erased");
    Ok(HttpResponse::NoContent().finish())
}

/// The actions `officer` may take on `row` now: the status's next actions for the officer's
/// role, a liaison's only on a ticket of its agency, and none where this node does not handle
/// the ticket.
fn allowed_actions(officer: &Officer, row: &TicketRow, here: &str) -> Vec<String> {
    let Some(status) = crate::domain::Status::parse(&row.status) else {
        return Vec::new();
    };
    if row.handling_node != here {
        return Vec::new();
    }
    let own_agency = row.agency.as_deref() == officer.agency.as_ref().map(AgencyCode::as_str);
    status
        .next_actions()
        .iter()
        .filter(|(_, role)| *role == officer.role && (*role != Role::Liaison || own_agency))
        .map(|(action, _)| (*action).to_owned())
        .collect()
}
