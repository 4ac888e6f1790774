//! The public HTTP API (`/api/v1`), operations routes and the OpenAPI document.
//!
//! - `error`: the JSON error body and status mapping;
//! - `metrics`: Prometheus registry and request-metrics middleware;
//! - `ratelimit`: per-client-address limit of public intake;
pub mod error;
