//! The federation listener's routes (mTLS only; every route needs a verified peer identity
//! that is one of this node's peers):
//!
//! | route | |
//! |---|---|
//! | `GET /federation/v1/node` | node id, role, province, version, signing keys |
//! | `POST /federation/v1/events` | a batch of signed events (zstd or plain JSON) → per-event outcome |
//! | `GET /federation/v1/events?origin=X&after=N&limit=M` | catch-up feed of X's events the caller may hold |
//! | `GET /federation/v1/events?ticket=ID` | the whole ticket (filling a causal gap) |
//! | `POST /federation/v1/status` | a member's signed status, at the hub (`status`) → the hub's clock |
//! | `POST /federation/v1/noop` | reads the body and answers its size (transport baseline for benchmarks) |
//! | `GET /federation/v1/roster?after=N` | the hub-signed roster held (204 when not newer than `N`; 404 when none) |
//!
//! Every answer names the roster version held in `lapor-roster-version` ([`roster_version`]).
//!
//! Each handler parses, calls the member's inbox or feed, and renders. A refused request is a
//! [`Refusal`]: its status and `{"error": code, "message": …}` body come from its
//! `ResponseError` implementation; `counted` logs and counts it
//! (`lapor_federation_requests_refused_total{reason}`) before it is rendered.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::dictionary;
use super::feed::{self, FeedError, FeedQuery, FeedRefusal};
use super::node::Member;
use super::protocol::{self, Batch, BatchAnswer, DecompressError, DeferReason, Outcome};
use crate::domain::{NodeId, Timestamp};
use crate::tls::PeerIdentity;
use crate::tls::identity::PeerCertificate;

/// Registers the federation routes; the app data must hold a [`Member`].
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/federation/v1/node", web::get().to(node))
        .route("/federation/v1/events", web::post().to(post_events))
        .route("/federation/v1/events", web::get().to(get_events))
        .route("/federation/v1/status", web::post().to(post_status))
        .route("/federation/v1/noop", web::post().to(noop))
        .route("/federation/v1/roster", web::get().to(get_roster));
}

/// Middleware: every answer names the roster version this node holds, so a caller holding an
/// older one fetches it from here.
pub async fn roster_version(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let held = req
        .app_data::<web::Data<Member>>()
        .map(|m| m.members().version());
    let mut res = next.call(req).await?;
    if let Some(v) = held {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static(super::roster::VERSION_HEADER),
            actix_web::http::header::HeaderValue::from(v),
        );
    }
    Ok(res)
}

#[derive(Debug, serde::Deserialize)]
struct RosterQuery {
    #[serde(default)]
    after: i64,
}

async fn get_roster(
    req: HttpRequest,
    query: Result<web::Query<RosterQuery>, actix_web::Error>,
    member: web::Data<Member>,
) -> Result<HttpResponse, Refusal> {
    let r = async {
        let from = peer(&req, &member)?;
        let after = query.map_err(|e| Refusal::BadQuery(e.to_string()))?.after;
        let m = member.get_ref().clone();
        let held = web::block(move || {
            m.contact_from(&from, Timestamp::now());
            m.roster()
        })
        .await
        .map_err(|e| Refusal::failed(&e))?
        .map_err(|e| Refusal::failed(&e))?;
        match held {
            None => Err(Refusal::NoRoster),
            Some(r) if r.claimed_version().unwrap_or(0) <= after => {
                Ok(HttpResponse::NoContent().finish())
            }
            Some(r) => Ok(HttpResponse::Ok().json(r)),
        }
    }
    .await;
    counted(&member, r)
}

/// Why a federation request is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A certificate of the federation CA, but not one of this node's peers.
    #[error(
        "{0} holds a federation certificate but is not a member of this node's federation (not among its peers)"
    )]
    NotAMember(NodeId),
    /// The caller's certificate is revoked by the roster held (a connection made before).
    #[error("the client certificate is revoked by the federation roster")]
    CertificateRevoked,
    /// No roster is held here.
    #[error("this node holds no roster")]
    NoRoster,
    /// No verified client certificate naming a node.
    #[error("federation routes need a client certificate from the federation CA naming a node")]
    NoPeerIdentity,
    /// The body as sent is over the limit.
    #[error("request body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// The body could not be read.
    #[error("{0}")]
    BodyUnreadable(String),
    /// The body decompresses to more than the limit.
    #[error("decompresses to more than {0} bytes")]
    DecompressedTooLarge(usize),
    /// The body is not valid zstd.
    #[error("{0}")]
    BadCompression(String),
    /// A content encoding other than zstd or none.
    #[error("content-encoding {0:?} is not supported; use zstd or none")]
    UnsupportedEncoding(String),
    /// Not strict JSON.
    #[error("{0}")]
    MalformedJson(String),
    /// JSON, but not a batch.
    #[error("{0}")]
    MalformedBatch(String),
    /// More events than a batch may hold.
    #[error("{events} events; at most {max} per batch")]
    BatchTooLarge {
        /// Events in the batch.
        events: usize,
        /// The limit.
        max: usize,
    },
    /// The batch id does not match its events.
    #[error("batch id {claimed} does not match its events (expected {expected})")]
    BatchIdMismatch {
        /// As claimed (clipped).
        claimed: String,
        /// As computed.
        expected: String,
    },
    /// The query string could not be read.
    #[error("{0}")]
    BadQuery(String),
    /// The feed refused the request.
    #[error(transparent)]
    Feed(#[from] FeedRefusal),
    /// This node failed (the cause is logged, not shown).
    #[error("the node cannot store events right now; retry later")]
    Unavailable(String),
}

impl Refusal {
    /// The machine-readable code: the body's `error` and the metric's `reason`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotAMember(_) => "not_a_member",
            Self::NoPeerIdentity => "no_peer_identity",
            Self::CertificateRevoked => "certificate_revoked",
            Self::NoRoster => "no_roster",
            Self::BodyTooLarge(_) => "body_too_large",
            Self::BodyUnreadable(_) => "body_unreadable",
            Self::DecompressedTooLarge(_) => "decompressed_too_large",
            Self::BadCompression(_) => "bad_compression",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::MalformedJson(_) => "malformed_json",
            Self::MalformedBatch(_) => "malformed_batch",
            Self::BatchTooLarge { .. } => "batch_too_large",
            Self::BatchIdMismatch { .. } => "batch_id_mismatch",
            Self::BadQuery(_) | Self::Feed(FeedRefusal::NoSubject) => "bad_query",
            Self::Feed(FeedRefusal::UnknownTicket(_)) => "unknown_ticket",
            Self::Feed(FeedRefusal::NotAParticipant(_)) => "not_a_participant",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The metric's `reason` label: the code, except `internal` for this node's failures.
    const fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "internal",
            other => other.code(),
        }
    }

    fn failed(e: &dyn std::fmt::Display) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotAMember(_)
            | Self::CertificateRevoked
            | Self::Feed(FeedRefusal::NotAParticipant(_)) => StatusCode::FORBIDDEN,
            Self::NoPeerIdentity => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge(_) | Self::DecompressedTooLarge(_) | Self::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::BodyUnreadable(_)
            | Self::BadCompression(_)
            | Self::MalformedJson(_)
            | Self::BadQuery(_)
            | Self::Feed(FeedRefusal::NoSubject) => StatusCode::BAD_REQUEST,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MalformedBatch(_) | Self::BatchIdMismatch { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NoRoster | Self::Feed(FeedRefusal::UnknownTicket(_)) => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(json!({"error": self.code(), "message": self.to_string()}))
    }
}

/// Logs and counts a refusal (this node's own failures with their cause) and passes the
/// result on.
fn counted(member: &Member, r: Result<HttpResponse, Refusal>) -> Result<HttpResponse, Refusal> {
    if let Err(e) = &r {
        member.metrics().inc(
            "lapor_federation_requests_refused_total",
            &[("reason", e.reason())],
            1,
        );
        match e {
            Refusal::Unavailable(cause) => {
                tracing::error!(error = %cause, "federation request failed");
            }
            other => {
                tracing::warn!(reason = other.code(), message = %other, "federation request refused");
            }
        }
    }
    r
}

/// The caller's node id, from its certificate, if it is a member of the federation: a
/// certificate from the federation CA proves who the caller is, not that it belongs — only the
/// members do (a node removed from `[[federation.peers]]` or from the roster is refused here
/// even though its certificate still verifies), and not with a certificate the roster revoked.
fn peer(req: &HttpRequest, member: &Member) -> Result<NodeId, Refusal> {
    // A session resumed (or kept alive) from before a revocation skipped the handshake's check.
    if let Some(PeerCertificate(fp)) = req.conn_data::<PeerCertificate>() {
        if member.members().policy().is_revoked(fp) {
            return Err(Refusal::CertificateRevoked);
        }
    }
    match req.conn_data::<PeerIdentity>() {
        Some(PeerIdentity(node)) if member.is_peer(node) => Ok(node.clone()),
        Some(PeerIdentity(node)) => Err(Refusal::NotAMember(node.clone())),
        None => Err(Refusal::NoPeerIdentity),
    }
}

async fn node(req: HttpRequest, member: web::Data<Member>) -> Result<HttpResponse, Refusal> {
    let r = async {
        let from = peer(&req, &member)?;
        let m = member.get_ref().clone();
        let now = Timestamp::now();
        let info = web::block(move || {
            m.contact_from(&from, now);
            m.node_info()
        })
        .await
        .map_err(|e| Refusal::failed(&e))?
        .map_err(|e| Refusal::failed(&e))?;
        Ok(HttpResponse::Ok().json(info))
    }
    .await;
    counted(&member, r)
}

/// Reads the body up to `limit` bytes.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, Refusal> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Refusal::BodyUnreadable(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(Refusal::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The batch in a request body: decoded, decompressed within bounds, strict JSON, its id
/// checked.
fn parse_batch(req: &HttpRequest, raw: Vec<u8>, member: &Member) -> Result<Batch, Refusal> {
    let s = member.settings();
    let body = match req
        .headers()
        .get("content-encoding")
        .map(actix_web::http::header::HeaderValue::as_bytes)
    {
        None | Some(b"identity") => {
            if raw.len() > s.max_decompressed_bytes {
                return Err(Refusal::BodyTooLarge(s.max_decompressed_bytes));
            }
            raw
        }
        Some(b"zstd") => match protocol::decompress(&raw, s.max_decompressed_bytes) {
            Ok(b) => b,
            Err(DecompressError::TooLarge(max)) => return Err(Refusal::DecompressedTooLarge(max)),
            Err(e) => return Err(Refusal::BadCompression(e.to_string())),
        },
        Some(other) => {
            return Err(Refusal::UnsupportedEncoding(
                String::from_utf8_lossy(other).into_owned(),
            ));
        }
    };
    let value = crate::crypto::strict_json::parse(&body)
        .map_err(|e| Refusal::MalformedJson(e.to_string()))?;
    let batch: Batch =
        serde_json::from_value(value).map_err(|e| Refusal::MalformedBatch(e.to_string()))?;
    if batch.events.len() > s.batch_max_events {
        return Err(Refusal::BatchTooLarge {
            events: batch.events.len(),
            max: s.batch_max_events,
        });
    }
    let expected = protocol::batch_id(&batch.events);
    if batch.batch != expected {
        return Err(Refusal::BatchIdMismatch {
            claimed: batch.batch.chars().take(64).collect(),
            expected,
        });
    }
    Ok(batch)
}

async fn post_events(
    req: HttpRequest,
    payload: web::Payload,
    member: web::Data<Member>,
) -> Result<HttpResponse, Refusal> {
    let r = async {
        let from = peer(&req, &member)?;
        let raw = read_body(payload, member.settings().max_request_bytes).await?;
        let batch = parse_batch(&req, raw, &member)?;
        let origins: Vec<(String, String)> = batch
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
        let m = member.get_ref().clone();
        let now = Timestamp::now();
        let id = batch.batch.clone();
        let results = web::block(move || {
            m.inbox()
                .accept_key_statements(&from, batch.key_statements, now);
            let outcomes = m.inbox().receive(&from, batch.events, batch.pii, now);
            m.contact_from(&from, now);
            m.batch_from(&from);
            outcomes
        })
        .await
        .map_err(|e| Refusal::failed(&e))?
        .map_err(|e| Refusal::failed(&e))?;
        // Events from an origin whose keys are not pinned yet: that peer's worker fetches them
        // (the sender retries the deferred events).
        for o in &results {
            if let Outcome::Deferred {
                id,
                reason: DeferReason::UnknownOriginKeys,
            } = o
            {
                let origin = origins.iter().find(|(i, _)| i == id).map(|(_, o)| o);
                if let Some(node) = origin.and_then(|o| NodeId::parse(o).ok()) {
                    member.want_keys(&node);
                }
            }
        }
        let exceptions = req
            .headers()
            .get(protocol::ANSWER_EXCEPTIONS.0)
            .is_some_and(|v| v.as_bytes() == protocol::ANSWER_EXCEPTIONS.1.as_bytes());
        let answer = BatchAnswer::new(id, results, exceptions);
        let json = serde_json::to_vec(&answer).map_err(|e| Refusal::failed(&e))?;
        Ok(json_answer(&req, json))
    }
    .await;
    counted(&member, r)
}

async fn get_events(
    req: HttpRequest,
    query: Result<web::Query<FeedQuery>, actix_web::Error>,
    member: web::Data<Member>,
) -> Result<HttpResponse, Refusal> {
    let r = async {
        let from = peer(&req, &member)?;
        let q = query
            .map_err(|e| Refusal::BadQuery(e.to_string()))?
            .into_inner();
        let m = member.get_ref().clone();
        let page = web::block(move || {
            m.contact_from(&from, Timestamp::now());
            feed::page(&m, &from, &q)
        })
        .await
        .map_err(|e| Refusal::failed(&e))?
        .map_err(|e| match e {
            FeedError::Refused(r) => Refusal::Feed(r),
            FeedError::Failed(e) => Refusal::failed(&e),
        })?;
        let json = serde_json::to_vec(&page).map_err(|e| Refusal::failed(&e))?;
        let body = if with_dictionary(&req) {
            dictionary::compress(&json, protocol::FAST)
        } else {
            protocol::compress(&json)
        };
        let mut r = HttpResponse::Ok();
        named_dictionary(&mut r);
        Ok(r.content_type("application/json")
            .insert_header(("content-encoding", "zstd"))
            .body(body))
    }
    .await;
    counted(&member, r)
}

/// A JSON answer, zstd-compressed when the caller accepts it.
fn json_answer(req: &HttpRequest, json: Vec<u8>) -> HttpResponse {
    let zstd = req
        .headers()
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("zstd")));
    let mut r = HttpResponse::Ok();
    r.content_type("application/json");
    named_dictionary(&mut r);
    if zstd {
        let body = if with_dictionary(req) {
            dictionary::compress(&json, protocol::FAST)
        } else {
            protocol::compress(&json)
        };
        r.insert_header(("content-encoding", "zstd")).body(body)
    } else {
        r.body(json)
    }
}

/// Whether the caller named the dictionary this node holds (so answers may use it).
fn with_dictionary(req: &HttpRequest) -> bool {
    dictionary::names_ours(
        req.headers()
            .get(dictionary::HEADER)
            .map(actix_web::http::header::HeaderValue::as_bytes),
    )
}

/// Names the dictionary this node holds, so the caller's next bodies may use it.
fn named_dictionary(r: &mut actix_web::HttpResponseBuilder) {
    if let Some(v) = dictionary::header_value() {
        r.insert_header((dictionary::HEADER, v));
    }
}

async fn noop(
    req: HttpRequest,
    payload: web::Payload,
    member: web::Data<Member>,
) -> Result<HttpResponse, Refusal> {
    let r = async {
        peer(&req, &member)?;
        let b = read_body(payload, member.settings().max_request_bytes).await?;
        Ok(HttpResponse::Ok().json(json!({"bytes": b.len()})))
    }
    .await;
    counted(&member, r)
}

/// A member's status, at the hub: membership (as every route), then `status::receive` (node
/// id = certificate, pinned key, signature, newer than the held one). A refusal is logged and
/// counted in `lapor_federation_status_refused_total{reason}`.
async fn post_status(
    req: HttpRequest,
    payload: web::Payload,
    member: web::Data<Member>,
) -> HttpResponse {
    use super::status::{self, MAX_STATUS_BYTES, StatusRefusal};
    let r = async {
        let from = match peer(&req, &member) {
            Ok(n) => n,
            Err(Refusal::NotAMember(n)) => return Err(StatusRefusal::NotAMember(n)),
            Err(_) => return Err(StatusRefusal::NoPeerIdentity),
        };
        if member.role != crate::config::NodeRole::Hub {
            return Err(StatusRefusal::NotTheHub);
        }
        let raw = read_body(payload, MAX_STATUS_BYTES)
            .await
            .map_err(|e| match e {
                Refusal::BodyTooLarge(n) => StatusRefusal::TooLarge(n),
                other => StatusRefusal::Unreadable(other.to_string()),
            })?;
        let encoding = req
            .headers()
            .get("content-encoding")
            .map(|v| v.as_bytes().to_vec());
        let m = member.get_ref().clone();
        let now = Timestamp::now();
        web::block(move || {
            let value = status::parse(&raw, encoding.as_deref())?;
            let s = status::receive(m.db(), &from, value, now)?;
            m.contact_from(&from, now);
            Ok(s)
        })
        .await
        .map_err(|e| StatusRefusal::Unavailable(e.to_string()))?
    }
    .await;
    match r {
        Ok(s) => {
            tracing::debug!(node = %s.node, head = s.head.seq, "node status stored");
            let mut r = HttpResponse::Ok();
            named_dictionary(&mut r);
            r.json(protocol::StatusAnswer {
                received_ms: Timestamp::now().millis(),
            })
        }
        Err(e) => {
            // A member whose key is not pinned yet (its first status can beat the key fetch):
            // its keys are fetched, and its next status verifies.
            if let (StatusRefusal::UnknownKey(_), Some(PeerIdentity(node))) =
                (&e, req.conn_data::<PeerIdentity>())
            {
                member.want_keys(node);
            }
            member.metrics().inc(
                "lapor_federation_status_refused_total",
                &[("reason", e.code())],
                1,
            );
            if let StatusRefusal::Unavailable(cause) = &e {
                tracing::error!(error = %cause, "node status not stored");
            } else {
                tracing::warn!(reason = e.code(), message = %e, "node status refused");
            }
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = match &e {
                StatusRefusal::Unavailable(_) => {
                    "the hub cannot store statuses right now; retry later".to_owned()
                }
                other => other.to_string(),
            };
            HttpResponse::build(status).json(json!({"error": e.code(), "message": message}))
        }
    }
}
