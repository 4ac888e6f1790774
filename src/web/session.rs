//! The officer's browser session and the CSRF tokens of the console's forms.
//!
//! A login opens an ordinary `auth` session (the same table, expiry and revocation as the
//! API's bearer tokens); the browser holds its token in the `lapor_sesi` cookie — `HttpOnly`,
//! `SameSite=Strict`, `Path=/`, `Secure` when the request came over TLS — never in a page.
//! Every form of a signed-in officer carries a CSRF token derived from the session token
//! (`SHA-256("lapor-console-csrf-v1\n" ‖ token)`, cut to 32 hex digits): it needs no storage,
//! changes with every session, and a page of another site can neither read the cookie nor
//! compute it. The login form, before any session, uses a double-submit token: a random value
//! in the `lapor_pra` cookie and in the form.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use rand::RngCore as _;
use sha2::Digest as _;

use crate::api::block;
use crate::auth::{AuthError, Officer};
use crate::domain::Timestamp;

/// The session cookie.
pub const SESSION: &str = "lapor_sesi";
/// The login form's double-submit cookie.
pub const PRE_LOGIN: &str = "lapor_pra";

/// The officer of a request, or why there is none.
#[derive(Debug)]
pub enum Who {
    /// Signed in: the officer and the session token.
    Officer(Officer, String),
    /// No session cookie.
    Nobody,
    /// A session that expired, was revoked or whose account was disabled.
    Ended,
    /// The node could not check (database).
    Failed(AuthError),
}

/// The officer signed in on `req`.
pub async fn who(state: &crate::api::ApiState, req: &HttpRequest) -> Who {
    let Some(token) = req.cookie(SESSION).map(|c| c.value().to_owned()) else {
        return Who::Nobody;
    };
    if token.is_empty() {
        return Who::Nobody;
    }
    let auth = state.auth.clone();
    let t = token.clone();
    match block(move || Ok(auth.authenticate(&t, Timestamp::now()))).await {
        Ok(Ok(officer)) => Who::Officer(officer, token),
        Ok(Err(AuthError::Db(e))) => Who::Failed(AuthError::Db(e)),
        Ok(Err(_)) => Who::Ended,
        Err(e) => Who::Failed(AuthError::Db(crate::db::DbError::Unavailable(
            e.to_string(),
        ))),
    }
}

/// The CSRF token of the session `token`.
#[must_use]
pub fn csrf_of(token: &str) -> String {
    let digest = sha2::Sha256::digest(format!("lapor-console-csrf-v1\n{token}").as_bytes());
    crate::crypto::to_hex(&digest)[..32].to_owned()
}

/// Whether `given` is the expected token (compared in constant time).
#[must_use]
pub fn same(given: Option<&str>, expected: &str) -> bool {
    let Some(given) = given else { return false };
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A fresh random token for the login form.
#[must_use]
pub fn fresh_token() -> String {
    let mut bytes = [0_u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    crate::crypto::to_hex(&bytes)
}

/// Whether the request reached the node over TLS (directly, or as a trusted proxy says).
fn over_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// A cookie of the console: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` over TLS.
#[must_use]
pub fn cookie(req: &HttpRequest, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(over_tls(req))
        .finish()
}

/// The cookie that removes `name`.
#[must_use]
pub fn removal(req: &HttpRequest, name: &'static str) -> Cookie<'static> {
    let mut c = cookie(req, name, String::new());
    c.make_removal();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_by_session_and_compare_exactly() {
        let a = csrf_of("session-a");
        assert_eq!(a.len(), 32);
        assert_ne!(a, csrf_of("session-b"));
        assert!(same(Some(&a), &a));
        assert!(!same(Some(&a[..31]), &a));
        assert!(!same(None, &a));
        assert!(!same(Some(&csrf_of("session-b")), &a));
    }
}
