//! Officer accounts over HTTP (admin): `GET/POST /api/v1/admin/officers`, and per account
//! `disable`, `password`, `role`. The rule and the audit line are `auth::accounts`'s, shared
//! with the web console.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::officers::officer;
use super::{ApiState, block};
use crate::auth::{AccountChange, AccountError};
use crate::domain::{Role, Timestamp};

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotAllowed(n) => n.into(),
            AccountError::Auth(a) => a.into(),
        }
    }
}

/// An officer account as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfficerInfo {
    /// Account name.
    pub username: String,
    /// `verifier`, `liaison`, `admin` or `analyst`.
    pub role: String,
    /// A liaison's agency.
    pub agency: Option<String>,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
}

/// A new account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOfficerRequest {
    /// 3-64 characters of a-z, 0-9, '.', '_' or '-'.
    pub username: String,
    /// Initial password (at least 12 characters, not common, not the username).
    pub password: String,
    /// `verifier`, `liaison`, `admin` or `analyst`.
    pub role: String,
    /// A liaison's agency code.
    #[serde(default)]
    pub agency: Option<String>,
}

/// A new password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The new password.
    pub password: String,
}

/// A new role (and agency, for a liaison).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `verifier`, `liaison`, `admin` or `analyst`.
    pub role: String,
    /// A liaison's agency code.
    #[serde(default)]
    pub agency: Option<String>,
}

async fn administer(
    state: &ApiState,
    req: &HttpRequest,
    change: AccountChange,
) -> Result<(), ApiError> {
    let admin = officer(state, req).await?;
    let auth = state.auth.clone();
    block(move || Ok(auth.administer(&admin, &change, Timestamp::now())?)).await
}

/// Every officer account (admin).
#[utoipa::path(get, path = "/api/v1/admin/officers", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [OfficerInfo]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(state: web::Data<ApiState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let o = officer(&state, &req).await?;
    o.require(&[Role::Admin], "list officer accounts")?;
    let auth = state.auth.clone();
    let list = block(move || Ok(auth.list()?)).await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(|(o, disabled)| OfficerInfo {
                username: o.username,
                role: o.role.as_str().to_owned(),
                agency: o.agency.map(|a| a.to_string()),
                disabled,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Add an officer account (admin).
#[utoipa::path(post, path = "/api/v1/admin/officers", tag = "admin", security(("bearer" = [])),
    request_body = NewOfficerRequest,
    responses((status = 201), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewOfficerRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    administer(
        &state,
        &req,
        AccountChange::Add {
            username: b.username,
            password: b.password,
            role: b.role,
            agency: b.agency,
        },
    )
    .await?;
    Ok(HttpResponse::Created().finish())
}

/// Disable an account and end its sessions (admin).
#[utoipa::path(post, path = "/api/v1/admin/officers/{username}/disable", tag = "admin", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn disable(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    administer(
        &state,
        &req,
        AccountChange::Disable {
            username: path.into_inner(),
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set a new password and end the account's sessions (admin).
#[utoipa::path(post, path = "/api/v1/admin/officers/{username}/password", tag = "admin", security(("bearer" = [])),
    params(("username" = String, Path)), request_body = PasswordRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn password(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    administer(
        &state,
        &req,
        AccountChange::ResetPassword {
            username: path.into_inner(),
            password: body.into_inner().password,
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change an account's role and agency (admin).
#[utoipa::path(post, path = "/api/v1/admin/officers/{username}/role", tag = "admin", security(("bearer" = [])),
    params(("username" = String, Path)), request_body = RoleRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn role(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    administer(
        &state,
        &req,
        AccountChange::SetRole {
            username: path.into_inner(),
            role: b.role,
            agency: b.agency,
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
