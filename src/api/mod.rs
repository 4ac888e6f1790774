//! The public HTTP API (`/api/v1`), operations routes and the OpenAPI document.
//!
//! A handler parses the request, calls one function of `tickets` (or `auth`) off the async
//! executor ([`block`]) and renders the answer; what a request may see or do is decided
//! below it, in `tickets` and `domain`, for every channel alike.
//!
//! - `error`: the JSON error body, and every error's status and code (one place, with its
//!   policy);
//! - `dto`: request and response bodies (the wire format, with their OpenAPI schemas);
//! - `views`: renders `tickets::queries` read models into response bodies;
//! - `reports`: citizen endpoints (no account; follow-up token);
//! - `officers`: login, inbox, detail, actions, statistics (bearer token);
//! - `escalations`: SLA escalations to the node's verifiers (list, acknowledge);
//! - `admin`: node administration (agencies as managed data);
//! - `accounts`: officer accounts (admin; the rule and audit line are `auth::accounts`'s);
//! - `ops`: `/healthz`, `/readyz`, `/metrics` (the registry is [`crate::metrics`]),
//!   `/api-docs/openapi.json`;
//! - `federation`: operator routes for the federation (peers, quarantine);
//! - `sms`: admin routes of the SMS channel (outbox, dead letters, blocked numbers);
//! - `hub`: the national statistics (`/hub/stats`, `sla`, `flows`, `backlog`, `export`),
//!   answered by `hub::report`;
//! - `limits`: every per-client limit (intake, lookups, refused follow-up tokens, logins) and
//!   the login lockout and hash gate, as route middleware and a login wrapper;
//! - `forwarded`: the client address (from trusted reverse proxies' headers);
//! - `ratelimit`: the per-address token buckets.

pub mod accounts;
pub mod admin;
pub mod dto;
pub mod error;
pub mod escalations;
pub mod federation;
pub mod forwarded;
pub mod hub;
pub mod limits;
pub mod officers;
pub mod ops;
pub mod ratelimit;
pub mod reports;
pub mod sms;
pub mod views;

use std::sync::Arc;

use actix_web::error::JsonPayloadError;
use actix_web::{HttpRequest, web};

use self::error::ApiError;
use self::limits::Limits;
use crate::auth::Auth;
use crate::metrics::Metrics;
use crate::tickets::Tickets;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Ticket commands and queries.
    pub tickets: Tickets,
    /// Officer accounts and sessions.
    pub auth: Auth,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Per-client limits and login throttles.
    pub limits: Arc<Limits>,
    /// The federation side, when `[federation]` is configured.
    pub federation: Option<crate::federation::Federation>,
    /// The SMS channel, when `[sms]` is configured.
    pub sms: Option<crate::sms::Sms>,
}

/// Runs blocking (database) work off the async executor.
pub async fn block<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await?
}

/// JSON body handling: size limit (413), malformed JSON (400), a body that does not match the
/// schema (422, naming the field), wrong content type (400).
pub fn json_config(limit: usize, metrics: Arc<Metrics>) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req: &HttpRequest| {
            let (reason, e) = json_error(&err, limit);
            metrics.count_rejection(reason);
            e.into()
        })
}

fn json_error(err: &JsonPayloadError, limit: usize) -> (&'static str, ApiError) {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => (
            "too_large",
            ApiError::TooLarge(format!("request body is over the limit of {limit} bytes")),
        ),
        JsonPayloadError::ContentType => (
            "content_type",
            ApiError::BadRequest("Content-Type must be application/json".into()),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ("invalid_field", ApiError::invalid("body", e))
        }
        JsonPayloadError::Deserialize(e) => (
            "malformed_json",
            ApiError::BadRequest(format!("malformed JSON: {e}")),
        ),
        other => (
            "bad_body",
            ApiError::BadRequest(format!("cannot read request body: {other}")),
        ),
    }
}

/// Query strings that do not parse (400).
pub fn query_config(metrics: Arc<Metrics>) -> web::QueryConfig {
    web::QueryConfig::default().error_handler(move |err, _req| {
        metrics.count_rejection("bad_query");
        ApiError::BadRequest(format!("bad query string: {err}")).into()
    })
}

/// Headers on every answer: `X-Content-Type-Options: nosniff` (a browser never reads a JSON
/// answer as something else), and `Cache-Control: no-store` — answers carry follow-up tokens,
/// officer tokens and reporters' identities, which no browser or proxy cache may keep.
#[must_use]
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Cache-Control", "no-store"))
}

/// Registers every route; the citizen routes carry their per-client limits (`limits`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    use actix_web::middleware::from_fn;

    cfg.route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .route("/api-docs/openapi.json", web::get().to(ops::openapi))
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource("/reports")
                        .wrap(from_fn(limits::intake))
                        .route(web::post().to(reports::create)),
                )
                .service(
                    web::resource("/reports/{tracking_code}")
                        .wrap(from_fn(limits::follow_up))
                        .route(web::get().to(reports::show)),
                )
                .service(
                    web::resource("/reports/{tracking_code}/replies")
                        .wrap(from_fn(limits::follow_up))
                        .route(web::post().to(reports::reply)),
                )
                .service(
                    web::resource("/reports/{tracking_code}/rating")
                        .wrap(from_fn(limits::follow_up))
                        .route(web::post().to(reports::rate)),
                )
                .service(
                    web::resource("/reports/{tracking_code}/reopen")
                        .wrap(from_fn(limits::follow_up))
                        .route(web::post().to(reports::reopen)),
                )
                .route(
                    "/reports/{tracking_code}/erase",
                    web::post().to(officers::erase),
                )
                .route("/auth/login", web::post().to(officers::login))
                .route("/auth/logout", web::post().to(officers::logout))
                .route("/tickets", web::get().to(officers::list))
                .route("/tickets/{id}", web::get().to(officers::detail))
                .route("/tickets/{id}/actions", web::post().to(officers::act))
                .route("/stats", web::get().to(officers::stats))
                .route("/escalations", web::get().to(escalations::list))
                .route("/escalations/{id}/ack", web::post().to(escalations::ack))
                .route("/hub/stats", web::get().to(hub::stats))
                .route("/hub/sla", web::get().to(hub::sla))
                .route("/hub/flows", web::get().to(hub::flows))
                .route("/hub/backlog", web::get().to(hub::backlog))
                .route("/hub/export", web::get().to(hub::export))
                .route("/hub/federation", web::get().to(hub::federation))
                .route("/admin/agencies", web::get().to(admin::list_agencies))
                .route("/admin/agencies", web::post().to(admin::add_agency))
                .route(
                    "/admin/agencies/{code}/disable",
                    web::post().to(admin::disable_agency),
                )
                .route(
                    "/admin/agencies/{code}/enable",
                    web::post().to(admin::enable_agency),
                )
                .route("/admin/officers", web::get().to(accounts::list))
                .route("/admin/officers", web::post().to(accounts::add))
                .route(
                    "/admin/officers/{username}/disable",
                    web::post().to(accounts::disable),
                )
                .route(
                    "/admin/officers/{username}/password",
                    web::post().to(accounts::password),
                )
                .route(
                    "/admin/officers/{username}/role",
                    web::post().to(accounts::role),
                )
                .route("/admin/sms/outbox", web::get().to(sms::outbox))
                .route("/admin/sms/retry", web::post().to(sms::retry))
                .route("/admin/sms/blocked", web::get().to(sms::blocked))
                .route("/admin/sms/blocked", web::post().to(sms::block))
                .route("/admin/sms/unblock", web::post().to(sms::unblock))
                .route("/federation/peers", web::get().to(federation::peers))
                .route(
                    "/federation/quarantine",
                    web::get().to(federation::quarantine),
                ),
        )
        .default_service(web::to(ops::not_found));
}

/// The routes above, as (method, path) pairs: the OpenAPI test checks each is documented.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api-docs/openapi.json"),
    ("post", "/api/v1/reports"),
    ("get", "/api/v1/reports/{tracking_code}"),
    ("post", "/api/v1/reports/{tracking_code}/replies"),
    ("post", "/api/v1/reports/{tracking_code}/rating"),
    ("post", "/api/v1/reports/{tracking_code}/reopen"),
    ("post", "/api/v1/reports/{tracking_code}/erase"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/tickets"),
    ("get", "/api/v1/tickets/{id}"),
    ("post", "/api/v1/tickets/{id}/actions"),
    ("get", "/api/v1/stats"),
    ("get", "/api/v1/escalations"),
    ("post", "/api/v1/escalations/{id}/ack"),
    ("get", "/api/v1/hub/stats"),
    ("get", "/api/v1/hub/sla"),
    ("get", "/api/v1/hub/flows"),
    ("get", "/api/v1/hub/backlog"),
    ("get", "/api/v1/hub/export"),
    ("get", "/api/v1/hub/federation"),
    ("get", "/api/v1/admin/agencies"),
    ("post", "/api/v1/admin/agencies"),
    ("post", "/api/v1/admin/agencies/{code}/disable"),
    ("post", "/api/v1/admin/agencies/{code}/enable"),
    ("get", "/api/v1/admin/officers"),
    ("post", "/api/v1/admin/officers"),
    ("post", "/api/v1/admin/officers/{username}/disable"),
    ("post", "/api/v1/admin/officers/{username}/password"),
    ("post", "/api/v1/admin/officers/{username}/role"),
    ("get", "/api/v1/admin/sms/outbox"),
    ("post", "/api/v1/admin/sms/retry"),
    ("get", "/api/v1/admin/sms/blocked"),
    ("post", "/api/v1/admin/sms/blocked"),
    ("post", "/api/v1/admin/sms/unblock"),
    ("get", "/api/v1/federation/peers"),
    ("get", "/api/v1/federation/quarantine"),
];
