//! A small Prometheus registry (text format 0.0.4) and the request-metrics middleware. One lock
//! per observation; allocation only for a new label set. Client-controlled labels are bounded:
//! route = matched pattern or `unmatched`, unknown HTTP methods = `OTHER`.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

/// Upper bounds (seconds) of the request-duration histogram buckets, before `+Inf`.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const REQS: &str = "lapor_http_requests_total";
const HIST: &str = "lapor_http_request_duration_seconds";
const BUCKET: &str = "lapor_http_request_duration_seconds_bucket";
const SUM: &str = "lapor_http_request_duration_seconds_sum";
const COUNT: &str = "lapor_http_request_duration_seconds_count";
/// Standard methods; anything else is recorded as `OTHER` (bounded label cardinality).
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

/// A gauge computed by the caller at scrape time.
#[derive(Debug, Clone)]
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// Samples: label pairs and value.
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// The process-wide metrics registry; share it as `Arc<Metrics>` / `web::Data<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Inner {
    /// method → route → per-route statistics.
    requests: BTreeMap<String, BTreeMap<String, RouteStats>>,
    /// counter name → sorted label pairs → value.
    counters: BTreeMap<&'static str, BTreeMap<Labels, u64>>,
}

#[derive(Debug, Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket, the last is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Metrics {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one finished HTTP request: route = the matched route pattern (e.g.
    /// `/api/v1/reports/{tracking_code}`, or `unmatched`), method, status code, duration.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, duration: Duration) {
        let secs = duration.as_secs_f64();
        let mut inner = self.lock();
        let routes = match inner.requests.get_mut(method) {
            Some(r) => r,
            None => inner.requests.entry(method.to_owned()).or_default(),
        };
        let stats = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *stats.by_status.entry(status).or_default() += 1;
        let i = BUCKETS.iter().position(|le| secs <= *le);
        if let Some(b) = stats.buckets.get_mut(i.unwrap_or(BUCKETS.len())) {
            *b += 1;
        }
        stats.sum += secs;
    }

    /// Counts a refused/invalid input by reason (e.g. `malformed_json`, `rate_limited`) —
    /// metric `lapor_rejected_total{reason}`.
    pub fn count_rejection(&self, reason: &str) {
        self.inc("lapor_rejected_total", &[("reason", reason)], 1);
    }

    /// Increments a named counter with labels (generic), e.g.
    /// `("lapor_sla_breaches_total", &[("step", "response")])`. Label order does not matter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)], by: u64) {
        let mut key: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        key.sort();
        let mut inner = self.lock();
        let counter = inner.counters.entry(name).or_default();
        let value = counter.entry(key).or_default();
        *value = value.saturating_add(by);
    }

    /// Renders all metrics in Prometheus text exposition format 0.0.4, with `# HELP` and
    /// `# TYPE` lines, plus `extra` gauges given by the caller at scrape time. Output order is
    /// deterministic (sorted by name and labels; gauges in the order given).
    pub fn render(&self, extra: &[Gauge]) -> String {
        let (mut out, mut hist) = (String::with_capacity(4096), String::with_capacity(4096));
        let help = "HTTP requests by method, route and status.";
        header(&mut out, REQS, "counter", help);
        let help = "HTTP request duration in seconds by method and route.";
        header(&mut hist, HIST, "histogram", help);
        let inner = self.lock();
        for (method, routes) in &inner.requests {
            for (route, st) in routes {
                let (m, r) = (("method", method.as_str()), ("route", route.as_str()));
                for (status, n) in &st.by_status {
                    let status = status.to_string();
                    sample(&mut out, REQS, &[m, r, ("status", &status)], n);
                }
                let mut cumulative = 0_u64;
                for (le, n) in BUCKETS.iter().chain(&[f64::INFINITY]).zip(st.buckets) {
                    cumulative += n;
                    let le = float(*le);
                    sample(&mut hist, BUCKET, &[m, r, ("le", le.as_str())], cumulative);
                }
                sample(&mut hist, SUM, &[m, r], float(st.sum));
                sample(&mut hist, COUNT, &[m, r], cumulative);
            }
        }
        out.push_str(&hist);
        for (name, series) in &inner.counters {
            header(&mut out, name, "counter", counter_help(name));
            for (labels, n) in series {
                sample(&mut out, name, labels, n);
            }
        }
        for g in extra {
            header(&mut out, g.name, "gauge", g.help);
            for (labels, v) in &g.samples {
                sample(&mut out, g.name, labels, float(*v));
            }
        }
        out
    }
}

/// The `# HELP` text of the generic counters this crate uses.
fn counter_help(name: &str) -> &'static str {
    match name {
        "lapor_rejected_total" => "Refused or invalid inputs by reason.",
        "lapor_sla_breaches_total" => "SLA breaches recorded, by step.",
        "lapor_sla_escalations_total" => {
            "SLA escalations raised, by level (verifiers: an agency's breach; hub: a node's \
             repeated breaches) and step."
        }
        _ => "Application counter.",
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line: name, labels (values escaped), value.
fn sample<V: AsRef<str>>(out: &mut String, name: &str, labels: &[(&str, V)], value: impl Display) {
    out.push_str(name);
    for (i, (k, v)) in labels.iter().enumerate() {
        let sep = if i == 0 { '{' } else { ',' };
        let _ = write!(out, "{sep}{k}=\"{}\"", escape_label(v.as_ref()));
    }
    let close = if labels.is_empty() { "" } else { "}" };
    let _ = writeln!(out, "{close} {value}");
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: Prometheus spells infinities `+Inf`/`-Inf` (and NaN `NaN`, as Rust does).
fn float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    v.to_string()
}

/// Request-metrics middleware: `.wrap(actix_web::middleware::from_fn(metrics::track))`.
/// Records method, matched route pattern (or `unmatched`), status and duration into the
/// `web::Data<Metrics>` of the app (nothing without it). An `Err` of the inner service is
/// recorded with its response status and passed on unchanged.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(metrics) = req.app_data::<web::Data<Metrics>>().cloned() else {
        return next.call(req).await;
    };
    let known = METHODS.into_iter().find(|k| *k == req.method().as_str());
    let method = known.unwrap_or("OTHER");
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    metrics.observe_request(method, &route, status.as_u16(), start.elapsed());
    result
}

#[cfg(test)]
mod tests {
    use actix_web::dev::Service as _;
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, init_service};
    use actix_web::{App, HttpResponse};

    use super::*;
    use crate::api::error::ApiError;

    fn assert_has(out: &str, line: &str) {
        assert!(out.contains(&format!("{line}\n")), "{line:?} in {out}");
    }

    #[test]
    fn counts_cumulative_buckets_escaping_and_gauges() {
        let m = Metrics::new();
        for ms in [0, 1, 3, 3, 700, 9000] {
            m.observe_request("GET", "/a/{id}", 200, Duration::from_millis(ms));
        }
        m.observe_request("GET", "/a/{id}", 404, Duration::from_millis(1));
        m.count_rejection("bad \"x\"\\\n");
        m.inc("lapor_sla_breaches_total", &[("step", "response")], 2);
        let samples = vec![(vec![("k", "v".to_owned())], 2.5)];
        let out = m.render(&[Gauge {
            name: "lapor_g",
            help: "G.",
            samples,
        }]);
        let ml = r#"{method="GET",route="/a/{id}""#;
        assert_has(&out, &format!("{REQS}{ml},status=\"200\"}} 6"));
        assert_has(&out, &format!("{REQS}{ml},status=\"404\"}} 1"));
        let buckets = "0.001:3 0.0025:3 0.005:5 0.01:5 0.5:5 1:6 5:6 +Inf:7";
        for (le, n) in buckets.split(' ').filter_map(|b| b.split_once(':')) {
            assert_has(&out, &format!("{HIST}_bucket{ml},le=\"{le}\"}} {n}"));
        }
        assert_has(&out, &format!("{HIST}_count{ml}}} 7"));
        assert_has(&out, r#"lapor_rejected_total{reason="bad \"x\"\\\n"} 1"#);
        assert_has(&out, r#"lapor_sla_breaches_total{step="response"} 2"#);
        let gauge = "# HELP lapor_g G.\n# TYPE lapor_g gauge\nlapor_g{k=\"v\"} 2.5\n";
        assert_eq!(out, m.render(&[]) + gauge);
    }

    async fn deny(
        req: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        if req.path() == "/deny" {
            return Err(actix_web::error::ErrorForbidden("no"));
        }
        next.call(req).await
    }

    #[actix_web::test]
    async fn middleware_records_route_pattern_and_status() {
        let m = web::Data::new(Metrics::new());
        let gone = || async { Err::<HttpResponse, _>(ApiError::NotFound("gone".into())) };
        let app = App::new()
            .app_data(m.clone())
            .wrap(from_fn(deny))
            .wrap(from_fn(track))
            .route("/i/{id}", web::get().to(HttpResponse::Ok))
            .route("/g/{id}", web::get().to(gone));
        let app = init_service(app).await;
        for uri in ["/i/1", "/i/2", "/g/7", "/nowhere", "/deny"] {
            let req = TestRequest::get().uri(uri).to_request();
            let _ = app.call(req).await;
        }
        let out = m.render(&[]);
        for want in [
            r#"{method="GET",route="/i/{id}",status="200"} 2"#,
            r#"{method="GET",route="/g/{id}",status="404"} 1"#,
            r#"{method="GET",route="unmatched",status="403"} 1"#,
            r#"{method="GET",route="unmatched",status="404"} 1"#,
        ] {
            assert_has(&out, &format!("{REQS}{want}"));
        }
    }
}
