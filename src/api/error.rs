//! Errors of the HTTP API. Every refusal is a JSON body `{"error": code, "message": text}` with
//! a precise status; the code is stable, the message is for humans. Client faults (4xx) say
//! exactly what was wrong; server faults (5xx) are logged with their cause and answered with a
//! generic message, never internals. `diesel` errors are mapped in one place
//! ([`ApiError::from`]): a missing connection, a lost one, or a database that is locked, full
//! or failing ([`crate::db::health::unavailable`]) is 503 with `Retry-After`, anything else
//! 500. A 503 is logged at debug level only: the writer logs the outage once, with its cause.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::{AuthError, NotAllowed};
use crate::db::DbError;
use crate::tickets::TicketError;
use crate::tickets::agencies::AgencyError;

/// Seconds a client is asked to wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

/// An API refusal.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or a query string is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no, wrong, expired or revoked credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role or agency scope does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource (or hidden from this caller).
    #[error("{0}")]
    NotFound(String),
    /// 409: the ticket's state does not allow the action.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// 422: well-formed JSON with a missing, mistyped or invalid field.
    #[error("{code}: {message}")]
    Unprocessable {
        /// Stable code (`invalid_field`, `unknown_region`, `unknown_agency`, `too_long`).
        code: &'static str,
        /// Human text naming the field.
        message: String,
    },
    /// 429: too many requests from this client.
    #[error("{0}")]
    TooManyRequests(String),
    /// 503: the database is unreachable.
    #[error("service unavailable")]
    Unavailable(String),
    /// 500: a fault on our side (logged with its cause).
    #[error("internal error")]
    Internal(String),
}

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// The stable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "illegal_transition",
            Self::TooLarge(_) => "payload_too_large",
            Self::Unprocessable { code, .. } => code,
            Self::TooManyRequests(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// A 422 naming a field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::Unprocessable {
            code: "invalid_field",
            message: format!("{field}: {message}"),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            Self::Unavailable(cause) => {
                tracing::debug!(error.cause = %cause, "request refused: database unavailable");
                "the service is temporarily unavailable; retry later".to_owned()
            }
            Self::Internal(cause) => {
                tracing::error!(error.cause = %cause, "internal error");
                "internal error".to_owned()
            }
            other => {
                // Messages of 400/422 may quote the client's input (which may hold personal
                // data): the log gets the code only. Our own texts are logged whole.
                if matches!(other, Self::BadRequest(_) | Self::Unprocessable { .. }) {
                    tracing::info!(error.code = other.code(), "request refused");
                } else {
                    tracing::info!(error.code = other.code(), error.message = %other, "request refused");
                }
                match other {
                    Self::Unprocessable { message, .. } => message.clone(),
                    _ => other.to_string(),
                }
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()));
        }
        response.json(ErrorBody {
            error: self.code().to_owned(),
            message,
        })
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => Self::Unavailable(m),
            DbError::Query(q) if crate::db::health::unavailable(&q) => {
                Self::Unavailable(q.to_string())
            }
            DbError::Query(q) => Self::Internal(q.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => Self::NotFound("not found".into()),
            other if crate::db::health::unavailable(&other) => Self::Unavailable(other.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<TicketError> for ApiError {
    fn from(e: TicketError) -> Self {
        match e {
            TicketError::Invalid { field, message } => {
                let code = if message.contains("limit") {
                    "too_long"
                } else {
                    "invalid_field"
                };
                Self::Unprocessable {
                    code,
                    message: format!("{field}: {message}"),
                }
            }
            TicketError::NotFound => Self::NotFound("ticket not found".into()),
            TicketError::UnknownRegion(r) => Self::Unprocessable {
                code: "unknown_region",
                message: format!("region: unknown region {r}"),
            },
            TicketError::UnknownAgency(a) => Self::Unprocessable {
                code: "unknown_agency",
                message: format!("agency: unknown agency {a}"),
            },
            TicketError::AgencyUnavailable { agency, reason } => Self::Unprocessable {
                code: "agency_unavailable",
                message: format!("agency: {agency} {reason}"),
            },
            TicketError::Transition(t) => match t {
                crate::domain::TransitionError::Forbidden { .. }
                | crate::domain::TransitionError::WrongAgency { .. } => {
                    Self::Forbidden(t.to_string())
                }
                crate::domain::TransitionError::Invalid(m) if m.starts_with("rating") => {
                    Self::invalid("rating", m)
                }
                crate::domain::TransitionError::IllegalStatus { status, .. } => {
                    let next = crate::domain::Status::parse(status).map_or_else(String::new, |s| {
                        format!("; allowed now: {}", s.next_actions_text())
                    });
                    Self::Conflict(format!("{t}{next}"))
                }
                other => Self::Conflict(other.to_string()),
            },
            TicketError::NotHandler(h) => Self::Conflict(format!(
                "this node does not handle the ticket (handler: {h})"
            )),
            TicketError::Db(d) => d.into(),
            TicketError::Log(crate::event_log::store::LogError::Db(q))
                if crate::db::health::unavailable(&q) =>
            {
                Self::Unavailable(q.to_string())
            }
            TicketError::Log(l) => Self::Internal(l.to_string()),
            TicketError::Encode(x) => Self::Internal(x.to_string()),
        }
    }
}

impl From<NotAllowed> for ApiError {
    fn from(e: NotAllowed) -> Self {
        Self::Forbidden(e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid { field, message } => Self::invalid(field, message),
            AuthError::UnknownOfficer(_) => Self::NotFound(e.to_string()),
            AuthError::Db(d) => d.into(),
            AuthError::BadCredentials
            | AuthError::Disabled
            | AuthError::MissingToken
            | AuthError::InvalidToken
            | AuthError::Expired
            | AuthError::Revoked => Self::Unauthorized(e.to_string()),
        }
    }
}

impl From<AgencyError> for ApiError {
    fn from(e: AgencyError) -> Self {
        match e {
            AgencyError::Exists(_) => Self::Conflict(e.to_string()),
            AgencyError::Unknown(_) => Self::NotFound(e.to_string()),
            AgencyError::UnknownRegion { .. } => Self::Unprocessable {
                code: "unknown_region",
                message: e.to_string(),
            },
            AgencyError::Db(d) => d.into(),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(e.to_string())
    }
}
