//! The endpoint Kannel's `sms-service` calls: `GET` or `POST /sms/kannel` (`get-url` or
//! `post-url`), with `secret`, `from` (`%p`), `to` (`%P`), `text` (`%b`; with `post-url` the body
//! when `text` is absent), `time` (`%T`), `id` (`%I`), `smsc` (`%i`), `coding` (`%c`) and
//! `charset` (`%C`) in the query. The handler parses, checks the caller (gateway address, then
//! the shared secret), calls [`Sms::receive`] off the executor, and answers:
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 200 | | handled, a duplicate of a handled message, or from a blocked number |
//! | 400 | `missing_field` | `from` or `id` absent, or `text` absent from a `GET` |
//! | 401 | `bad_secret` | the shared secret is missing or wrong |
//! | 403 | `gateway_not_allowed` | the caller is not an allowed gateway address |
//! | 422 | `bad_sender` | the sender is not a phone number |
//! | 429 | `number_rate_limited`, `rate_limited` | a flood limit (with `Retry-After`) |
//! | 503 | `unavailable` | the database failed: nothing was recorded; the gateway may resend |

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;

use super::Sms;
use super::inbound::{Inbound, InboundError, Received};
use super::limits::Flood;
use crate::domain::Timestamp;

fn refuse(sms: &Sms, status: StatusCode, code: &'static str, message: &str) -> HttpResponse {
    sms.metrics.count_rejection(code);
    sms.metrics
        .inc("lapor_sms_inbound_total", &[("outcome", code)], 1);
    tracing::warn!(reason = code, status = status.as_u16(), "sms refused");
    HttpResponse::build(status).json(serde_json::json!({"error": code, "message": message}))
}

/// `+` as space and `%XX` as its byte (the query as Kannel encodes it), without assuming UTF-8.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', ..) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 2;
            }
            (c, ..) => out.push(c),
        }
        i += 1;
    }
    out
}

/// Message bytes as text: UTF-16BE for UCS-2 (`coding=2`), else UTF-8 when they are, else
/// Latin-1 (how Kannel hands over GSM text without `mo-recode`).
fn decode(bytes: &[u8], coding: Option<&str>, charset: Option<&str>) -> String {
    let ucs2 = coding == Some("2") || charset.is_some_and(|c| c.eq_ignore_ascii_case("UTF-16BE"));
    if ucs2 {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

/// Whether two secrets are equal, in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET`/`POST /sms/kannel`.
pub async fn kannel(sms: web::Data<Sms>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let allowed = req
        .peer_addr()
        .is_some_and(|a| sms.settings.allowed_gateways.contains(&a.ip()));
    if !allowed {
        return refuse(
            &sms,
            StatusCode::FORBIDDEN,
            "gateway_not_allowed",
            "this address is not an allowed SMS gateway",
        );
    }
    let params: Vec<(Cow<'_, str>, Vec<u8>)> = req
        .query_string()
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (Cow::Borrowed(k), percent_decode(v)))
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    };
    let text_of = |name: &str| get(name).map(|v| String::from_utf8_lossy(v).into_owned());
    let secret = get("secret").unwrap_or_default();
    if !same_secret(
        secret,
        sms.settings.shared_secret.expose_secret().as_bytes(),
    ) {
        return refuse(
            &sms,
            StatusCode::UNAUTHORIZED,
            "bad_secret",
            "the shared secret is missing or wrong",
        );
    }
    let (Some(from), Some(id)) = (text_of("from"), text_of("id")) else {
        return refuse(
            &sms,
            StatusCode::BAD_REQUEST,
            "missing_field",
            "from and id are required",
        );
    };
    let raw = match get("text") {
        Some(t) => t.to_vec(),
        None if req.method() == actix_web::http::Method::POST => body.to_vec(),
        None => {
            return refuse(
                &sms,
                StatusCode::BAD_REQUEST,
                "missing_field",
                "text is required",
            );
        }
    };
    let (coding, charset) = (text_of("coding"), text_of("charset"));
    let text = decode(&raw, coding.as_deref(), charset.as_deref());
    let smsc = text_of("smsc")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kannel".into());
    let msg = Inbound {
        message_key: format!("{smsc}:{id}"),
        from,
        text,
    };
    let worker = sms.clone();
    let result =
        web::block(move || worker.receive(&msg, Timestamp::now(), std::time::Instant::now())).await;
    let result = match result {
        Ok(r) => r,
        Err(e) => Err(InboundError::Unavailable(e.to_string())),
    };
    match result {
        Ok(received) => {
            let outcome = match received {
                Received::Handled(o) => o,
                Received::Duplicate => "duplicate",
                Received::Blocked => "blocked",
            };
            sms.metrics
                .inc("lapor_sms_inbound_total", &[("outcome", outcome)], 1);
            tracing::info!(outcome, "sms received");
            HttpResponse::Ok().json(serde_json::json!({ "outcome": outcome }))
        }
        Err(InboundError::BadSender(e)) => refuse(
            &sms,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_sender",
            &e.to_string(),
        ),
        Err(InboundError::Flood(f)) => {
            let (code, wait) = match f {
                Flood::Number(w) => ("number_rate_limited", w),
                Flood::Global(w) => ("rate_limited", w),
            };
            let mut r = refuse(
                &sms,
                StatusCode::TOO_MANY_REQUESTS,
                code,
                "too many messages; send again later",
            );
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs) {
                r.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            r
        }
        Err(InboundError::Unavailable(cause)) => {
            tracing::error!(error = %cause, "sms not taken: database unavailable");
            refuse(
                &sms,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the node cannot take messages now; send again later",
            )
        }
    }
}

/// The endpoint's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sms/kannel", web::get().to(kannel))
        .route("/sms/kannel", web::post().to(kannel));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kannel_text_decodes_as_utf8_latin1_or_ucs2() {
        assert_eq!(
            decode(
                &percent_decode("LAPOR+jalan%C3%A9"),
                Some("0"),
                Some("UTF-8")
            ),
            "LAPOR jalané"
        );
        assert_eq!(decode(&percent_decode("caf%E9"), Some("0"), None), "café");
        assert_eq!(
            decode(&percent_decode("%00C%00E%00K"), Some("2"), None),
            "CEK"
        );
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
