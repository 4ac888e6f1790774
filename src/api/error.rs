//! Errors of the HTTP API, and the one place where every other error becomes an answer.
//!
//! Every refusal is a JSON body `{"error": code, "message": text}` with a precise status; the
//! code is stable, the message is for humans. The policy:
//!
//! - **What the user sees.** The caller's faults (4xx) say exactly what was wrong: the field
//!   and its rule, the state that forbids the action and what is allowed now. Their codes come
//!   from typed reasons, never from a message's wording: a field's problem
//!   ([`crate::tickets::Problem::code`]: `too_long`, `invalid_field`), a variant of
//!   [`TicketError`] or of the state machine's [`TransitionError`]. The node's faults (5xx)
//!   answer a fixed text: no internals.
//! - **What is logged.** Each refusal once, here, at `info`, with its code; the message too,
//!   except for 400 and 422, whose texts may quote the caller's input (which may hold personal
//!   data). A 503 is logged at `debug` only (the writer logs the outage once, with its cause);
//!   a 500 at `error`.
//! - **Causes kept for 5xx.** [`ApiError::Unavailable`] and [`ApiError::Internal`] carry the
//!   cause's text for that log line. Database errors are sorted in one place
//!   ([`crate::db::health::unavailable`]): a missing connection, a lost one, or a database that
//!   is locked, full or failing is 503 with `Retry-After`, anything else 500; `NotFound` from
//!   diesel is 404.
//!
//! Every `From<_> for ApiError` is in this module.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::reports::TOKEN_HEADER;
use crate::auth::{AuthError, NotAllowed};
use crate::db::DbError;
use crate::domain::{Status, TransitionError};
use crate::event_log::keys::KeysError;
use crate::event_log::store::LogError;
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
    /// 503: a restored node fetches its own events back before it writes (the reason).
    #[error("{0}")]
    Restoring(String),
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
            Self::Restoring(_) => "restoring",
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
            Self::Unavailable(_) | Self::Restoring(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        if matches!(self, Self::Unavailable(_) | Self::Restoring(_)) {
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

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Db(q) if crate::db::health::unavailable(&q) => {
                Self::Unavailable(q.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<KeysError> for ApiError {
    fn from(e: KeysError) -> Self {
        match e {
            KeysError::Db(d) => d.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<TicketError> for ApiError {
    fn from(e: TicketError) -> Self {
        match e {
            TicketError::Invalid { field, problem } => Self::Unprocessable {
                code: problem.code(),
                message: format!("{field}: {problem}"),
            },
            TicketError::NotFound | TicketError::NoSuchTicket(_) | TicketError::NotFiledHere(_) => {
                Self::NotFound(e.to_string())
            }
            TicketError::ReportHidden => Self::NotFound(format!(
                "no report with this tracking code that this request may see (a confidential \
                 report needs its {TOKEN_HEADER}, and a follow-up needs the right one)"
            )),
            TicketError::TokenRequired => {
                Self::Unauthorized(format!("this action needs the {TOKEN_HEADER} header"))
            }
            TicketError::BadTrackingCode(id) => Self::BadRequest(id.to_string()),
            TicketError::UnknownRegion(r) => Self::Unprocessable {
                code: "unknown_region",
                message: format!("region: unknown region {r}"),
            },
            TicketError::UnknownAgency(a) => Self::Unprocessable {
                code: "unknown_agency",
                message: format!("agency: unknown agency {a}"),
            },
            TicketError::AgencyUnavailable { agency, why } => Self::Unprocessable {
                code: "agency_unavailable",
                message: format!("agency: {agency} {why}"),
            },
            TicketError::NotAllowed(n) => n.into(),
            TicketError::OutOfScope(s) => Self::Forbidden(s.to_string()),
            TicketError::Transition(t) => t.into(),
            TicketError::NotHandler(_) | TicketError::AlreadyAcknowledged(_) => {
                Self::Conflict(e.to_string())
            }
            TicketError::NoSuchEscalation(_) => Self::NotFound(e.to_string()),
            TicketError::Held(h) => Self::Restoring(h.0),
            TicketError::Db(d) => d.into(),
            TicketError::Log(l) => l.into(),
            TicketError::Keys(k) => k.into(),
            TicketError::Stored(_) | TicketError::Encode(_) => Self::Internal(e.to_string()),
        }
    }
}

/// The state machine's refusals: a role or agency that may not (403), a state that does not
/// allow the change (409, with what is allowed now). Values it refuses (a rating out of range)
/// never reach it from a channel: `tickets::input` refuses them first, as field problems.
impl From<TransitionError> for ApiError {
    fn from(t: TransitionError) -> Self {
        match t {
            TransitionError::Forbidden { .. } | TransitionError::WrongAgency { .. } => {
                Self::Forbidden(t.to_string())
            }
            TransitionError::IllegalStatus { status, .. } => {
                let next = Status::parse(status).map_or_else(String::new, |s| {
                    format!("; allowed now: {}", s.next_actions_text())
                });
                Self::Conflict(format!("{t}{next}"))
            }
            TransitionError::Existence(_)
            | TransitionError::Invalid(_)
            | TransitionError::Authority { .. } => Self::Conflict(t.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NotAllowed;
    use crate::domain::{Role, TrackingCode};
    use crate::tickets::{OutOfScope, Problem, Unavailability};

    fn answer(e: impl Into<ApiError>) -> (u16, &'static str, String) {
        let e = e.into();
        let message = match &e {
            ApiError::Unprocessable { message, .. } => message.clone(),
            other => other.to_string(),
        };
        (e.status_code().as_u16(), e.code(), message)
    }

    #[test]
    fn ticket_refusals_keep_their_status_and_code() {
        let field = |problem| TicketError::Invalid {
            field: "title",
            problem,
        };
        let cases: Vec<(TicketError, u16, &str)> = vec![
            (field(Problem::TooLong { len: 9, max: 8 }), 422, "too_long"),
            (field(Problem::Empty), 422, "invalid_field"),
            (field(Problem::Length { max: 32 }), 422, "invalid_field"),
            (TicketError::NotFound, 404, "not_found"),
            (TicketError::NoSuchTicket("x".into()), 404, "not_found"),
            (
                TicketError::NotFiledHere(TrackingCode::parse("31-AAAA-AAAA").unwrap()),
                404,
                "not_found",
            ),
            (TicketError::ReportHidden, 404, "not_found"),
            (TicketError::TokenRequired, 401, "unauthorized"),
            (
                TicketError::BadTrackingCode(TrackingCode::parse("x").unwrap_err()),
                400,
                "bad_request",
            ),
            (
                TicketError::UnknownRegion("9901".into()),
                422,
                "unknown_region",
            ),
            (
                TicketError::UnknownAgency("NOPE".into()),
                422,
                "unknown_agency",
            ),
            (
                TicketError::AgencyUnavailable {
                    agency: "DKI-DISHUB".into(),
                    why: Unavailability::Disabled,
                },
                422,
                "agency_unavailable",
            ),
            (
                TicketError::NotAllowed(NotAllowed {
                    role: Role::Analyst,
                    what: "read tickets",
                }),
                403,
                "forbidden",
            ),
            (
                TicketError::OutOfScope(OutOfScope::OtherAgencyTicket),
                403,
                "forbidden",
            ),
            (
                TicketError::Transition(TransitionError::IllegalStatus {
                    change: "verify",
                    status: "archived",
                }),
                409,
                "illegal_transition",
            ),
            (
                TicketError::Transition(TransitionError::Forbidden {
                    change: "verify",
                    role: Role::Citizen,
                }),
                403,
                "forbidden",
            ),
            (
                TicketError::Transition(TransitionError::Invalid("the reopen window has passed")),
                409,
                "illegal_transition",
            ),
            (
                TicketError::NotHandler("n".into()),
                409,
                "illegal_transition",
            ),
            (
                TicketError::Db(DbError::Unavailable("gone".into())),
                503,
                "unavailable",
            ),
            (
                TicketError::Stored(TrackingCode::parse("x").unwrap_err()),
                500,
                "internal",
            ),
        ];
        for (e, status, code) in cases {
            let shown = e.to_string();
            let (s, c, _) = answer(e);
            assert_eq!((s, c), (status, code), "{shown}");
        }
    }

    #[test]
    fn messages_say_what_to_do_and_never_internals() {
        let (_, _, m) = answer(TicketError::Invalid {
            field: "title",
            problem: Problem::TooLong { len: 201, max: 200 },
        });
        assert_eq!(m, "title: is 201 characters; the limit is 200");
        let (_, _, m) = answer(TicketError::ReportHidden);
        assert!(m.contains(TOKEN_HEADER), "{m}");
        let (_, _, m) = answer(TicketError::TokenRequired);
        assert_eq!(m, format!("this action needs the {TOKEN_HEADER} header"));
        let (_, _, m) = answer(TicketError::Transition(TransitionError::IllegalStatus {
            change: "verify",
            status: "archived",
        }));
        assert_eq!(
            m,
            "cannot verify a ticket that is archived; allowed now: nothing (the ticket is final)"
        );
        let (_, _, m) = answer(TicketError::AgencyUnavailable {
            agency: "DKI-DISHUB".into(),
            why: Unavailability::NotAMember {
                owner: "prov-32.lapor.test".into(),
            },
        });
        assert!(
            m.starts_with("agency: DKI-DISHUB is handled by node prov-32.lapor.test, which"),
            "{m}"
        );
        let (_, _, m) = answer(TicketError::Stored(TrackingCode::parse("x").unwrap_err()));
        assert_eq!(m, "internal error");
    }
}
