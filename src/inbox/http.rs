//! The federation listener's routes (mTLS only; every route needs a verified peer identity):
//!
//! | route | |
//! |---|---|
//! | `GET /federation/v1/node` | node id, role, province, version, signing keys |
//! | `POST /federation/v1/events` | a batch of signed events (zstd or plain JSON) → per-event outcome |
//! | `GET /federation/v1/events?origin=X&after=N&limit=M` | catch-up feed of X's events the caller may hold |
//! | `GET /federation/v1/events?ticket=ID` | the whole ticket (filling a causal gap) |
//! | `POST /federation/v1/noop` | reads the body and answers its size (transport baseline for benchmarks) |

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::prelude::*;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::schema::{events, ticket_participants, tickets};
use crate::delivery::wire::{self, Batch, BatchAnswer, FeedPage};
use crate::delivery::{FedError, Federation};
use crate::domain::{NodeId, Timestamp};
use crate::tls::PeerIdentity;

/// Registers the federation routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/federation/v1/node", web::get().to(node))
        .route("/federation/v1/events", web::post().to(post_events))
        .route("/federation/v1/events", web::get().to(get_events))
        .route("/federation/v1/noop", web::post().to(noop));
}

fn refuse(
    fed: &Federation,
    status: StatusCode,
    code: &'static str,
    message: String,
) -> HttpResponse {
    fed.metrics().inc(
        "lapor_federation_requests_refused_total",
        &[("reason", code)],
        1,
    );
    tracing::warn!(reason = code, %message, "federation request refused");
    let mut body = serde_json::Map::new();
    body.insert("error".into(), Value::String(code.to_owned()));
    body.insert("message".into(), Value::String(message));
    HttpResponse::build(status).json(Value::Object(body))
}

/// The caller's node id, from its certificate, if it is a member of the federation: a
/// certificate from the federation CA proves who the caller is, not that it belongs — only the
/// configured peers do (a node removed from `[[federation.peers]]` is refused here even though
/// its certificate still verifies).
fn peer(req: &HttpRequest, fed: &Federation) -> Result<NodeId, HttpResponse> {
    match req.conn_data::<PeerIdentity>() {
        Some(PeerIdentity(node)) if fed.settings().peer(node).is_some() => Ok(node.clone()),
        Some(PeerIdentity(node)) => Err(refuse(
            fed,
            StatusCode::FORBIDDEN,
            "not_a_member",
            format!(
                "{node} holds a federation certificate but is not a member of this node's \
                 federation (not among its peers)"
            ),
        )),
        None => Err(refuse(
            fed,
            StatusCode::UNAUTHORIZED,
            "no_peer_identity",
            "federation routes need a client certificate from the federation CA naming a node"
                .into(),
        )),
    }
}

fn internal(fed: &Federation, e: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "federation request failed");
    fed.metrics().inc(
        "lapor_federation_requests_refused_total",
        &[("reason", "internal")],
        1,
    );
    HttpResponse::ServiceUnavailable()
        .json(json!({"error": "unavailable", "message": "the node cannot store events right now; retry later"}))
}

async fn node(req: HttpRequest, fed: web::Data<Federation>) -> HttpResponse {
    let from = match peer(&req, &fed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let f = fed.get_ref().clone();
    let now = Timestamp::now();
    match web::block(move || {
        f.contact_from(&from, now);
        f.node_info()
    })
    .await
    {
        Ok(Ok(info)) => HttpResponse::Ok().json(info),
        Ok(Err(e)) => internal(&fed, &e),
        Err(e) => internal(&fed, &e),
    }
}

/// Reads the body up to `limit` bytes; `Err` = over the limit.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, Option<String>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Some(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn post_events(
    req: HttpRequest,
    payload: web::Payload,
    fed: web::Data<Federation>,
) -> HttpResponse {
    let from = match peer(&req, &fed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let s = fed.settings();
    let raw = match read_body(payload, s.max_request_bytes).await {
        Ok(b) => b,
        Err(None) => {
            return refuse(
                &fed,
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body exceeds {} bytes", s.max_request_bytes),
            );
        }
        Err(Some(e)) => return refuse(&fed, StatusCode::BAD_REQUEST, "body_unreadable", e),
    };
    let body = match req
        .headers()
        .get("content-encoding")
        .map(actix_web::http::header::HeaderValue::as_bytes)
    {
        None | Some(b"identity") => {
            if raw.len() > s.max_decompressed_bytes {
                return refuse(
                    &fed,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request body exceeds {} bytes", s.max_decompressed_bytes),
                );
            }
            raw
        }
        Some(b"zstd") => match wire::decompress(&raw, s.max_decompressed_bytes) {
            Ok(b) => b,
            Err(e) if e.starts_with("decompresses") => {
                return refuse(
                    &fed,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "decompressed_too_large",
                    e,
                );
            }
            Err(e) => return refuse(&fed, StatusCode::BAD_REQUEST, "bad_compression", e),
        },
        Some(other) => {
            return refuse(
                &fed,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!(
                    "content-encoding {:?} is not supported; use zstd or none",
                    String::from_utf8_lossy(other)
                ),
            );
        }
    };
    let value = match crate::crypto::strict_json::parse(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                &fed,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                e.to_string(),
            );
        }
    };
    let batch: Batch = match serde_json::from_value(value) {
        Ok(b) => b,
        Err(e) => {
            return refuse(
                &fed,
                StatusCode::UNPROCESSABLE_ENTITY,
                "malformed_batch",
                e.to_string(),
            );
        }
    };
    if batch.events.len() > s.batch_max_events {
        return refuse(
            &fed,
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} events; at most {} per batch",
                batch.events.len(),
                s.batch_max_events
            ),
        );
    }
    let expected = wire::batch_id(&batch.events);
    if batch.batch != expected {
        return refuse(
            &fed,
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_id_mismatch",
            format!(
                "batch id {} does not match its events (expected {expected})",
                batch.batch.chars().take(64).collect::<String>()
            ),
        );
    }
    let raw_origins: Vec<(String, String)> = batch
        .events
        .iter()
        .map(|e| {
            let s = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (s("id"), s("origin"))
        })
        .collect();
    let f = fed.get_ref().clone();
    let now = Timestamp::now();
    let id = batch.batch.clone();
    let result = web::block(move || {
        let outcomes = f.inbox().receive(&from, batch.events, batch.pii, now);
        f.contact_from(&from, now);
        outcomes
    })
    .await;
    match result {
        Ok(Ok(results)) => {
            // Events from an origin whose keys are not pinned yet: fetch them (the sender
            // retries the deferred events).
            let unknown: std::collections::BTreeSet<String> = results
                .iter()
                .filter(|o| matches!(o, crate::inbox::Outcome::Deferred { reason, .. } if reason == "unknown_origin_keys"))
                .filter_map(|o| origin_of(o.id(), &raw_origins))
                .collect();
            for origin in unknown {
                if let Ok(node) = NodeId::parse(&origin) {
                    if fed.settings().peer(&node).is_some() {
                        let f = fed.get_ref().clone();
                        actix_web::rt::spawn(async move {
                            if let Err(e) = f.fetch_keys(&node).await {
                                tracing::warn!(peer = %node, error = %e, "key fetch after unknown-key events failed");
                            }
                        });
                    }
                }
            }
            HttpResponse::Ok().json(BatchAnswer { batch: id, results })
        }
        Ok(Err(e)) => internal(&fed, &e),
        Err(e) => internal(&fed, &e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    origin: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
    ticket: Option<String>,
}

async fn get_events(
    req: HttpRequest,
    query: Result<web::Query<FeedQuery>, actix_web::Error>,
    fed: web::Data<Federation>,
) -> HttpResponse {
    let from = match peer(&req, &fed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let q = match query {
        Ok(q) => q.into_inner(),
        Err(e) => return refuse(&fed, StatusCode::BAD_REQUEST, "bad_query", e.to_string()),
    };
    let f = fed.get_ref().clone();
    let result = web::block(move || {
        f.contact_from(&from, Timestamp::now());
        feed(&f, &from, &q)
    })
    .await;
    match result {
        Ok(Ok(Ok(page))) => match serde_json::to_vec(&page) {
            Ok(json) => HttpResponse::Ok()
                .content_type("application/json")
                .insert_header(("content-encoding", "zstd"))
                .body(crate::delivery::compress(&json)),
            Err(e) => internal(&fed, &e),
        },
        Ok(Ok(Err((status, code, message)))) => refuse(&fed, status, code, message),
        Ok(Err(e)) => internal(&fed, &e),
        Err(e) => internal(&fed, &e),
    }
}

fn origin_of(id: &str, origins: &[(String, String)]) -> Option<String> {
    origins
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, o)| o.clone())
}

type Refusal = (StatusCode, &'static str, String);

/// The catch-up feed for `requester`: the hub may hold every event (public parts); any other
/// node only the events of tickets it takes part in. Personal data only for the ticket's
/// handler, never the hub, never for anonymous reports.
fn feed(
    fed: &Federation,
    requester: &NodeId,
    q: &FeedQuery,
) -> Result<Result<FeedPage, Refusal>, FedError> {
    let mut conn = fed.db().read()?;
    let to_hub = fed.is_hub(requester);
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let rows: Vec<(String, i64, String, String)>;
    let (mut next_after, mut head) = (0, 0);
    if let Some(ticket) = &q.ticket {
        let held: i64 = events::table
            .filter(events::ticket.eq(ticket))
            .count()
            .get_result(&mut conn)?;
        if held == 0 {
            return Ok(Err((
                StatusCode::NOT_FOUND,
                "unknown_ticket",
                format!("no events of ticket {ticket} here"),
            )));
        }
        if !to_hub && !crate::outbox::store::is_participant(&mut conn, ticket, requester.as_str())?
        {
            return Ok(Err((
                StatusCode::FORBIDDEN,
                "not_a_participant",
                format!("{requester} takes no part in that ticket"),
            )));
        }
        rows = events::table
            .filter(events::ticket.eq(ticket))
            .order((
                events::stored_at_ms.asc(),
                events::origin.asc(),
                events::seq.asc(),
            ))
            .select((events::id, events::seq, events::ticket, events::raw))
            .load(&mut conn)?;
    } else {
        let Some(origin) = &q.origin else {
            return Ok(Err((
                StatusCode::BAD_REQUEST,
                "bad_query",
                "give origin (with after) or ticket".into(),
            )));
        };
        let after = q.after.unwrap_or(0).max(0);
        let scanned: Vec<(String, i64, String, String)> = events::table
            .filter(events::origin.eq(origin))
            .filter(events::seq.gt(after))
            .order(events::seq.asc())
            .limit(limit)
            .select((events::id, events::seq, events::ticket, events::raw))
            .load(&mut conn)?;
        head = events::table
            .filter(events::origin.eq(origin))
            .select(diesel::dsl::max(events::seq))
            .first::<Option<i64>>(&mut conn)?
            .unwrap_or(0);
        next_after = scanned.last().map_or(after.max(head), |r| r.1);
        rows = if to_hub {
            scanned
        } else {
            let tickets_of: Vec<String> = scanned.iter().map(|r| r.2.clone()).collect();
            let mine: std::collections::HashSet<String> = ticket_participants::table
                .filter(ticket_participants::node.eq(requester.as_str()))
                .filter(ticket_participants::ticket.eq_any(&tickets_of))
                .select(ticket_participants::ticket)
                .load::<String>(&mut conn)?
                .into_iter()
                .collect();
            scanned
                .into_iter()
                .filter(|r| mine.contains(&r.2))
                .collect()
        };
    }
    let mut page = FeedPage {
        next_after,
        head,
        ..FeedPage::default()
    };
    for (id, _, ticket, raw) in rows {
        let v: Value = serde_json::from_str(&raw).map_err(|e| FedError::BadAnswer {
            peer: "local log".into(),
            cause: e.to_string(),
        })?;
        let created = v.get("kind").and_then(Value::as_str) == Some("created");
        if created && !to_hub {
            let entitled: Option<(String, bool)> = tickets::table
                .find(&ticket)
                .select((tickets::handling_node, tickets::anonymous))
                .first(&mut conn)
                .optional()?;
            if entitled.is_some_and(|(h, anon)| h == requester.as_str() && !anon) {
                if let Some(p) = wire::pii_part(&mut conn, &ticket, &id)? {
                    page.pii.push(p);
                }
            }
        }
        page.events.push(v);
    }
    Ok(Ok(page))
}

async fn noop(req: HttpRequest, payload: web::Payload, fed: web::Data<Federation>) -> HttpResponse {
    if let Err(r) = peer(&req, &fed) {
        return r;
    }
    match read_body(payload, fed.settings().max_request_bytes).await {
        Ok(b) => HttpResponse::Ok().json(json!({"bytes": b.len()})),
        Err(_) => refuse(
            &fed,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "too large".into(),
        ),
    }
}
