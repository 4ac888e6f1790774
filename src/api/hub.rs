//! National statistics (`/api/v1/hub/…`): parse the query string, decide the audience from
//! the token, call `hub::report`, render JSON or CSV.
//!
//! | endpoint | no token (public) | analyst, admin | other roles |
//! |---|---|---|---|
//! | `GET /hub/stats`, `GET /hub/sla` | small cells suppressed | exact | 403 |
//! | `GET /hub/flows`, `GET /hub/backlog` | 401 | exact | 403 |
//! | `GET /hub/export` | small cells suppressed (open data, whoever asks) | same | same |

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::{ApiState, block};
use crate::domain::{Role, Timestamp};
use crate::hub::query::{self, Dataset, RequestError};
use crate::hub::report::{self, Audience, Table, Value};

/// A statistics answer: the question, and rows of key values and figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct HubTable {
    /// `stats`, `sla`, `flows` or `backlog`.
    pub dataset: &'static str,
    /// First filing day (WIB) counted; for the backlog, the day ages are counted from.
    pub from: String,
    /// Last filing day counted.
    pub to: String,
    /// The group-by keys: each row has them as members.
    pub group_by: Vec<&'static str>,
    /// The figure names: each row has them as members.
    pub columns: Vec<&'static str>,
    /// One object per group: key values (text) and figures (a number; `"<k"` for a
    /// suppressed count; `"withheld"` for a count hidden so that a `"<k"` beside it cannot be
    /// worked out from a total; `null` for a rate withheld or without a denominator).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// More groups matched than `limit`.
    pub truncated: bool,
    /// Counts from 1 to this minus one are shown as `"<k"` (absent: exact figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_below: Option<i64>,
}

/// How a count withheld by complementary suppression is written (JSON and CSV).
pub const WITHHELD: &str = "withheld";

fn value(v: Value) -> serde_json::Value {
    match v {
        Value::Count(n) => n.into(),
        Value::Below(k) => format!("<{k}").into(),
        Value::Withheld => WITHHELD.into(),
        Value::Decimal(d) => d.map_or(serde_json::Value::Null, Into::into),
    }
}

fn render(t: &Table) -> HubTable {
    HubTable {
        dataset: t.dataset.name(),
        from: t.from.to_string(),
        to: t.to.to_string(),
        group_by: t.group_by.clone(),
        columns: t.columns.clone(),
        rows: t
            .rows
            .iter()
            .map(|r| {
                let keys = t
                    .group_by
                    .iter()
                    .zip(&r.keys)
                    .map(|(k, v)| ((*k).to_owned(), v.clone().into()));
                let figures = t
                    .columns
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| ((*c).to_owned(), value(*v)));
                keys.chain(figures).collect()
            })
            .collect(),
        truncated: t.truncated,
        suppressed_below: t.suppressed_below,
    }
}

/// The table as CSV (RFC 4180): a header of keys and figures, one line per row.
fn csv(t: &Table) -> String {
    let cell = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = t
        .group_by
        .iter()
        .chain(&t.columns)
        .map(|s| cell(s))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for r in &t.rows {
        let keys = r.keys.iter().map(|k| cell(k));
        let values = r.values.iter().map(|v| match value(*v) {
            serde_json::Value::String(s) => cell(&s),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        });
        out.push_str(&keys.chain(values).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::UnknownParameter(..) | RequestError::Repeated(_) => {
                Self::BadRequest(e.to_string())
            }
            RequestError::Field { field, message } => Self::invalid(field, message),
        }
    }
}

/// Who asks: no token is the public (where `public` allows it), an analyst or admin sees exact
/// figures, any other role is refused.
async fn audience(state: &ApiState, req: &HttpRequest, public: bool) -> Result<Audience, ApiError> {
    let k = i64::from(state.tickets.statistics_settings().small_cell_k);
    if req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .is_none()
        && public
    {
        return Ok(Audience::Public { k });
    }
    let officer = super::officers::officer(state, req).await?;
    officer.require(&[Role::Analyst, Role::Admin], "read national statistics")?;
    Ok(Audience::Officials)
}

async fn run(
    state: &ApiState,
    dataset: Dataset,
    pairs: Vec<(String, String)>,
    who: Audience,
) -> Result<Table, ApiError> {
    let today = crate::hub::cells::wib_date(Timestamp::now());
    let request = query::parse(dataset, &pairs, today).inspect_err(|e| {
        state.metrics.count_rejection(match e {
            RequestError::Field { .. } => "hub_invalid_field",
            _ => "hub_bad_parameter",
        });
    })?;
    let db = state.tickets.db().clone();
    block(move || {
        let mut c = db.read_statistics()?;
        Ok(report::answer(&mut c, &request, today, who)?)
    })
    .await
}

async fn dataset_handler(
    state: web::Data<ApiState>,
    req: HttpRequest,
    pairs: web::Query<Vec<(String, String)>>,
    dataset: Dataset,
) -> Result<HttpResponse, ApiError> {
    let public = matches!(dataset, Dataset::Stats | Dataset::Sla);
    let who = audience(&state, &req, public).await?;
    let table = run(&state, dataset, pairs.into_inner(), who).await?;
    Ok(HttpResponse::Ok().json(render(&table)))
}

/// Ticket counts by filing day, grouped and filtered by period, province, regency, kind,
/// category, channel, agency and status.
#[utoipa::path(get, path = "/api/v1/hub/stats", tag = "hub",
    params(
        ("group_by" = Option<String>, Query, description = "comma-separated: day, month, province, regency, kind, category, channel, agency, status"),
        ("from" = Option<String>, Query, description = "first filing day, YYYY-MM-DD (WIB); default a year before `to`"),
        ("to" = Option<String>, Query, description = "last filing day; default today"),
        ("limit" = Option<u32>, Query, description = "1–10000 rows, default 1000"),
        ("province" = Option<String>, Query), ("regency" = Option<String>, Query), ("kind" = Option<String>, Query),
        ("category" = Option<String>, Query), ("channel" = Option<String>, Query), ("agency" = Option<String>, Query),
        ("status" = Option<String>, Query)),
    responses((status = 200, body = HubTable), (status = 400, body = ErrorBody, description = "unknown or repeated parameter"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a value breaks its rule; the message names the parameter")))]
pub async fn stats(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    dataset_handler(state, req, q, Dataset::Stats).await
}

/// SLA outcomes by filing period, province and agency: verified, dispatched, responded on
/// time or late, resolved within the completion cap, breaches, ratings.
#[utoipa::path(get, path = "/api/v1/hub/sla", tag = "hub",
    params(("group_by" = Option<String>, Query, description = "day, month, province, agency"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<u32>, Query),
        ("province" = Option<String>, Query), ("agency" = Option<String>, Query)),
    responses((status = 200, body = HubTable), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn sla(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    dataset_handler(state, req, q, Dataset::Sla).await
}

/// Dispatches from a report's province to the node that handles it: counts, returns as "not
/// our authority", the median time to the handler's first action (analysts and admins).
#[utoipa::path(get, path = "/api/v1/hub/flows", tag = "hub", security(("bearer" = [])),
    params(("group_by" = Option<String>, Query, description = "day, month, origin, handler"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<u32>, Query),
        ("origin" = Option<String>, Query), ("handler" = Option<String>, Query)),
    responses((status = 200, body = HubTable), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn flows(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    dataset_handler(state, req, q, Dataset::Flows).await
}

/// Open tickets today by age since filing (analysts and admins).
#[utoipa::path(get, path = "/api/v1/hub/backlog", tag = "hub", security(("bearer" = [])),
    params(("group_by" = Option<String>, Query, description = "province, agency, status"), ("limit" = Option<u32>, Query),
        ("province" = Option<String>, Query), ("agency" = Option<String>, Query), ("status" = Option<String>, Query)),
    responses((status = 200, body = HubTable), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn backlog(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    dataset_handler(state, req, q, Dataset::Backlog).await
}

/// Open data: the aggregates of a dataset (`dataset`, default `stats`, with that dataset's
/// parameters) as CSV or JSON, small cells suppressed whoever asks.
#[utoipa::path(get, path = "/api/v1/hub/export", tag = "hub",
    params(("format" = Option<String>, Query, description = "csv or json (default)"),
        ("dataset" = Option<String>, Query, description = "stats (default), sla, flows or backlog")),
    responses((status = 200, body = HubTable, description = "JSON, or text/csv with a header line"),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export(
    state: web::Data<ApiState>,
    q: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let mut pairs = q.into_inner();
    let mut take = |name: &str| -> Result<Option<String>, ApiError> {
        let found: Vec<usize> = pairs
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n == name)
            .map(|(i, _)| i)
            .collect();
        if found.len() > 1 {
            return Err(RequestError::Repeated(name.to_owned()).into());
        }
        Ok(found.first().map(|i| pairs.remove(*i).1))
    };
    let csv_wanted = match take("format")?.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("`{other}` is not csv or json"),
            ));
        }
    };
    let dataset = match take("dataset")? {
        None => Dataset::Stats,
        Some(d) => Dataset::parse(&d).ok_or_else(|| {
            ApiError::invalid(
                "dataset",
                format!("`{d}` is not stats, sla, flows or backlog"),
            )
        })?,
    };
    let k = i64::from(state.tickets.statistics_settings().small_cell_k);
    let table = run(&state, dataset, pairs, Audience::Public { k }).await?;
    if csv_wanted {
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!(
                    "attachment; filename=\"lapor-{}-{}-{}.csv\"",
                    dataset.name(),
                    table.from,
                    table.to
                ),
            ))
            .body(csv(&table)))
    } else {
        Ok(HttpResponse::Ok().json(render(&table)))
    }
}

/// The federation's health at this node (the hub holds every chain and every member's status).
#[derive(Debug, Serialize, ToSchema)]
pub struct FederationHealth {
    /// Every origin's chain: head held, events held, audit state (`ok`, `gap` with the count
    /// missing, `partial` on a province, `equivocation` with the refused events' ids).
    #[schema(value_type = Vec<Object>)]
    pub chains: Vec<crate::hub::health::ChainHealth>,
    /// At the hub, every member node: last contact, version, clock skew, head reported (by its
    /// signed status) vs held, events missing at the hub, quarantine, its outbox towards each
    /// peer (depth, oldest age), pull cursors, the chain's audit state. Empty on a province.
    #[schema(value_type = Vec<Object>)]
    pub nodes: Vec<crate::hub::health::NodeHealth>,
    /// At the hub, the alerts that hold: `{kind, node, detail, since_ms}` with kind
    /// `equivocation`, `gap`, `silent`, `skew` or `sla_breaches` (a node's repeated SLA
    /// breaches).
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<crate::hub::alerts::Alert>,
    /// Each configured peer: last contact, delivery queue towards it, refusals, quarantine.
    pub peers: Vec<crate::federation::PeerStatus>,
}

/// Whose federation health this node reads (`hub::watch`).
#[must_use]
pub fn health_scope(state: &ApiState) -> crate::hub::watch::Scope {
    crate::hub::watch::Scope {
        me: state.tickets.node().clone(),
        // The hub (no hub above it) receives every event; a province only its tickets'.
        holds_all: state.tickets.hub().is_none(),
        federation: state.federation.as_ref().map(|f| f.settings().clone()),
        members: state.federation.as_ref().map(|f| f.members().clone()),
        escalate: state.tickets.hub_settings().clone(),
    }
}

/// The federation's health (analysts and admins): every origin's chain as held here, every
/// member node's signed status against what the hub holds, the alerts that hold (each logged
/// once as a warning and counted in `lapor_federation_alerts_raised_total{kind}`), and each
/// peer's link.
#[utoipa::path(get, path = "/api/v1/hub/federation", tag = "hub", security(("bearer" = [])),
    responses((status = 200, body = FederationHealth), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn federation(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let officer = super::officers::officer(&state, &req).await?;
    officer.require(
        &[Role::Analyst, Role::Admin],
        "read the federation's health",
    )?;
    let scope = health_scope(&state);
    let (db, metrics) = (state.tickets.db().clone(), state.metrics.clone());
    let h = block(move || {
        crate::hub::watch::read(&db, &scope, Some(&metrics), Timestamp::now())
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(FederationHealth {
        chains: h.chains,
        nodes: h.nodes,
        alerts: h.alerts,
        peers: h.peers,
    }))
}
