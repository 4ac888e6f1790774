//! Every per-client limit of the public API, and the login throttles, in one place.
//!
//! ```text
//!  request ─► client address (forwarded: trusted proxies only)
//!     POST /reports ─────────────► intake bucket ─────────────────────────► handler
//!     /reports/{code}[/replies|/rating|/reopen]
//!        ─► (token header?) refused-token bucket not empty? ─► lookup bucket ─► handler
//!                                     ▲ charged when the token is refused (401/403/404)
//!     POST /auth/login ─► login bucket ─► username lockout ─► hash gate ─► argon2 (blocking)
//!                                              ▲ failures lock, a success resets
//! ```
//!
//! A refusal is `429` with `Retry-After` (whole seconds, at least 1) and the usual body
//! `{"error": "rate_limited", "message": …}`, logged without the address or username, and
//! counted in `lapor_rate_limited_total{limit}` (and `lapor_rejected_total{reason="rate_limited"}`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::forwarded::{ClientAddresses, Source};
use super::ratelimit::RateLimiter;
use super::reports::TOKEN_HEADER;
use crate::auth::AuthError;
use crate::auth::gate::{self, HashGate};
use crate::auth::lockout::Lockout;
use crate::config::Settings;
use crate::metrics::Metrics;

/// Which limit refused a request (the `limit` label of the metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Reports filed per client address.
    Intake,
    /// Tracking-code lookups and follow-ups per client address.
    Lookup,
    /// Refused follow-up tokens per client address.
    FollowUpToken,
    /// Login attempts per client address.
    LoginAddress,
    /// A username locked after consecutive failed logins.
    LoginLockout,
    /// Every hash slot and queue place taken.
    LoginBusy,
}

impl Limit {
    /// The metric label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Intake => "intake",
            Self::Lookup => "lookup",
            Self::FollowUpToken => "follow_up_token",
            Self::LoginAddress => "login_address",
            Self::LoginLockout => "login_lockout",
            Self::LoginBusy => "login_busy",
        }
    }

    fn message(self, secs: u64) -> String {
        let what = match self {
            Self::Intake => "too many reports from this address",
            Self::Lookup => "too many tracking-code requests from this address",
            Self::FollowUpToken => "too many refused follow-up tokens from this address",
            Self::LoginAddress => "too many logins from this address",
            Self::LoginLockout => "too many failed logins for this username",
            Self::LoginBusy => "too many logins in progress",
        };
        format!("{what}; retry in {secs} s")
    }
}

/// A refusal by a limit: 429 with `Retry-After`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Throttled {
    /// The limit.
    pub limit: Limit,
    /// Whole seconds until a retry can succeed (at least 1).
    pub retry_after_secs: u64,
    message: String,
}

impl ResponseError for Throttled {
    fn status_code(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", self.retry_after_secs.to_string()))
            .json(ErrorBody {
                error: ApiError::TooManyRequests(String::new()).code().to_owned(),
                message: self.message.clone(),
            })
    }
}

/// The limits' state; share it as `Arc<Limits>`.
#[derive(Debug)]
pub struct Limits {
    clients: ClientAddresses,
    intake: RateLimiter,
    lookups: RateLimiter,
    follow_up_failures: RateLimiter,
    login: RateLimiter,
    lockout: Lockout,
    hash_gate: HashGate,
    metrics: Arc<Metrics>,
}

impl Limits {
    /// The limits configured in `[http]` and `[auth]`.
    #[must_use]
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> Self {
        let (http, auth) = (&settings.raw.http, &settings.raw.auth);
        Self {
            clients: ClientAddresses::new(http.trusted_proxies.clone(), http.client_address_header),
            intake: RateLimiter::new(http.intake_per_minute),
            lookups: RateLimiter::new(http.lookups_per_minute),
            follow_up_failures: RateLimiter::new(http.follow_up_failures_per_minute),
            login: RateLimiter::new(http.login_per_minute),
            lockout: Lockout::new(
                auth.lockout_after_failures,
                Duration::from_secs(auth.lockout_secs),
                Duration::from_secs(auth.lockout_max_secs),
            ),
            hash_gate: HashGate::new(auth.hash_slots(), auth.hash_queue),
            metrics,
        }
    }

    /// The password-hashing gate (its queue is visible to tests and metrics).
    #[must_use]
    pub const fn hash_gate(&self) -> &HashGate {
        &self.hash_gate
    }

    /// The client address of `req` (see `api::forwarded`); a malformed header from a trusted
    /// proxy is counted in `lapor_forwarded_malformed_total`.
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        let (ip, source) = self.clients.of(req)?;
        if source == Source::Malformed {
            self.metrics.inc("lapor_forwarded_malformed_total", &[], 1);
        }
        Some(ip)
    }

    /// Logs and counts a refusal.
    fn refuse(&self, limit: Limit, wait: Duration) -> Throttled {
        let secs = wait.as_millis().div_ceil(1000).max(1);
        let secs = u64::try_from(secs).unwrap_or(u64::MAX);
        tracing::info!(limit = limit.as_str(), retry_after_s = secs, "rate limited");
        self.metrics.count_rejection("rate_limited");
        self.metrics
            .inc("lapor_rate_limited_total", &[("limit", limit.as_str())], 1);
        Throttled {
            limit,
            retry_after_secs: secs,
            message: limit.message(secs),
        }
    }

    fn take(
        &self,
        bucket: &RateLimiter,
        limit: Limit,
        ip: Option<IpAddr>,
    ) -> Result<(), Throttled> {
        match ip {
            Some(ip) => bucket
                .check(ip, Instant::now())
                .map_err(|w| self.refuse(limit, w)),
            None => Ok(()),
        }
    }

    /// A login through every throttle: the client's bucket, the username's lockout, then `f`
    /// (which checks the password) on the blocking pool in a hash slot. A refused password
    /// counts towards the lockout; a success resets it.
    ///
    /// # Errors
    ///
    /// [`Throttled`] (429), or `f`'s error as an [`ApiError`].
    pub async fn login<T, F>(
        &self,
        req: &HttpRequest,
        username: &str,
        f: F,
    ) -> Result<T, actix_web::Error>
    where
        F: FnOnce() -> Result<T, AuthError> + Send + 'static,
        T: Send + 'static,
    {
        self.take(&self.login, Limit::LoginAddress, self.client(req))?;
        self.lockout
            .check(username, Instant::now())
            .map_err(|w| self.refuse(Limit::LoginLockout, w))?;
        let admission = self
            .hash_gate
            .enter()
            .ok_or_else(|| self.refuse(Limit::LoginBusy, Duration::from_secs(1)))?;
        let slot = self
            .hash_gate
            .acquire(admission)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let result = gate::run(slot, f)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        match &result {
            Ok(_) => self.lockout.success(username),
            Err(AuthError::BadCredentials) => {
                if let Some(period) = self.lockout.failure(username, Instant::now()) {
                    tracing::info!(
                        lock_s = period.as_secs(),
                        "username locked after failed logins"
                    );
                    self.metrics.inc("lapor_login_lockouts_total", &[], 1);
                }
            }
            Err(_) => {}
        }
        result.map_err(|e| ApiError::from(e).into())
    }
}

fn limits_of(req: &ServiceRequest) -> Option<Arc<Limits>> {
    req.app_data::<web::Data<ApiState>>()
        .map(|s| s.limits.clone())
}

/// Middleware of `POST /api/v1/reports`: the intake bucket.
pub async fn intake(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(limits) = limits_of(&req) {
        let ip = limits.client(req.request());
        limits.take(&limits.intake, Limit::Intake, ip)?;
    }
    next.call(req).await
}

/// Middleware of the tracking-code routes (`GET /reports/{code}`, `replies`, `rating`,
/// `reopen`): the lookup bucket; with a follow-up token, also the refused-token bucket, which
/// must not be empty and is charged when the token is refused (401, 403 or 404).
pub async fn follow_up(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let with_token = req.headers().contains_key(TOKEN_HEADER);
    follow_up_limited(req, next, with_token).await
}

/// Middleware of the web console's follow-up forms (`POST /lacak/{step}`), whose follow-up
/// token is a form field: every request counts as carrying a token, so refused tokens are
/// limited exactly as on the API.
pub async fn follow_up_form(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    follow_up_limited(req, next, true).await
}

async fn follow_up_limited(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    with_token: bool,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(limits) = limits_of(&req) else {
        return next.call(req).await;
    };
    let ip = limits.client(req.request());
    if let (Some(ip), true) = (ip, with_token) {
        limits
            .follow_up_failures
            .peek(ip, Instant::now())
            .map_err(|w| limits.refuse(Limit::FollowUpToken, w))?;
    }
    limits.take(&limits.lookups, Limit::Lookup, ip)?;
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let refused = matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    );
    if let (Some(ip), true, true) = (ip, with_token, refused) {
        // Charged after the fact: a refusal here only shows on the next request.
        let _ = limits.follow_up_failures.check(ip, Instant::now());
    }
    result
}
