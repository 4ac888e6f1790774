//! Node administration over HTTP (admin): agencies as managed data. Every change is logged
//! with the officer who made it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::officers::officer;
use super::{ApiState, block};
use crate::domain::reference::{Agency, AgencyLevel};
use crate::domain::{AgencyCode, NodeId, RegionCode, Role};
use crate::tickets::agencies::{self, AgencyInfo};

/// Every agency (admin and verifiers: the dispatch picker).
#[utoipa::path(get, path = "/api/v1/admin/agencies", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [AgencyInfo]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_agencies(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let o = officer(&state, &req).await?;
    o.require(&[Role::Admin, Role::Verifier], "list agencies")?;
    let db = state.tickets.db().clone();
    let list = block(move || {
        let mut c = db.read()?;
        Ok(agencies::list(&mut c)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// A new agency.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgencyRequest {
    /// 2-32 characters of A-Z, 0-9 and '-'.
    pub code: String,
    /// Name.
    pub name: String,
    /// `national`, `province` or `regency`.
    pub level: String,
    /// The region it serves.
    pub region: String,
    /// The node that handles its tickets (default: this node).
    #[serde(default)]
    pub owner_node: Option<String>,
}

/// Add an agency (admin).
#[utoipa::path(post, path = "/api/v1/admin/agencies", tag = "admin", security(("bearer" = [])),
    request_body = NewAgencyRequest,
    responses((status = 201, body = AgencyInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_agency(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewAgencyRequest>,
) -> Result<HttpResponse, ApiError> {
    let o = officer(&state, &req).await?;
    o.require(&[Role::Admin], "add agencies")?;
    let b = body.into_inner();
    let name = b.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "must be 1-200 characters of text",
        ));
    }
    let agency = Agency {
        code: AgencyCode::parse(&b.code).map_err(|e| ApiError::invalid("code", e))?,
        name,
        level: AgencyLevel::parse(&b.level)
            .ok_or_else(|| ApiError::invalid("level", "must be national, province or regency"))?,
        region: RegionCode::parse(&b.region).map_err(|e| ApiError::invalid("region", e))?,
        owner: match b.owner_node {
            Some(n) => NodeId::parse(&n).map_err(|e| ApiError::invalid("owner_node", e))?,
            None => state.tickets.node().clone(),
        },
    };
    let (tickets, code) = (state.tickets.clone(), agency.code.to_string());
    let info = block(move || {
        let provinces = tickets.provinces().clone();
        tickets.db().write(move |c| {
            agencies::add(c, &agency, &provinces)?;
            agencies::get(c, agency.code.as_str())?
                .ok_or_else(|| ApiError::Internal("the added agency is not there".into()))
        })
    })
    .await?;
    tracing::info!(officer = %o.username, agency = %code, "agency added");
    Ok(HttpResponse::Created().json(info))
}

/// Stop new dispatches to an agency (admin).
#[utoipa::path(post, path = "/api/v1/admin/agencies/{code}/disable", tag = "admin", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable_agency(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&state, &req, path.into_inner(), true).await
}

/// Take dispatches to a disabled agency again (admin).
#[utoipa::path(post, path = "/api/v1/admin/agencies/{code}/enable", tag = "admin", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable_agency(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&state, &req, path.into_inner(), false).await
}

async fn set_disabled(
    state: &ApiState,
    req: &HttpRequest,
    code: String,
    disabled: bool,
) -> Result<HttpResponse, ApiError> {
    let o = officer(state, req).await?;
    o.require(&[Role::Admin], "disable or enable agencies")?;
    let db = state.tickets.db().clone();
    let c2 = code.clone();
    block(move || {
        db.write(move |c| {
            agencies::set_disabled(c, &c2, disabled)?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    tracing::info!(officer = %o.username, agency = %code, disabled, "agency status changed");
    Ok(HttpResponse::NoContent().finish())
}
