//! Accounts and sessions against a real SQLite database.

use super::*;
use crate::api::error::ApiError;

const PW: &str = "correct horse battery";
const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn setup() -> (tempfile::TempDir, Auth) {
    let (dir, db) = crate::app::temp_database();
    (dir, Auth::new(db, 60))
}

fn dishub() -> Option<AgencyCode> {
    Some(AgencyCode::parse("DKI-DISHUB").unwrap())
}

fn later(minutes: i64) -> Timestamp {
    Timestamp::from_millis(T0.millis() + minutes * 60_000)
}

#[test]
fn add_login_authenticate() {
    let (_dir, auth) = setup();
    let added = auth.add("budi.s", PW, Role::Liaison, dishub(), T0).unwrap();
    assert_eq!(added.agency, dishub());
    let (token, expires, officer) = auth.login("budi.s", PW, T0).unwrap();
    assert_eq!(officer, added);
    assert_eq!(expires, later(60));
    assert_eq!(token.len(), 43);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(auth.authenticate(&token, later(59)).unwrap(), added);
    assert!(matches!(
        auth.authenticate(&token, later(60)),
        Err(AuthError::Expired)
    ));
    assert!(matches!(
        auth.authenticate("nope", T0),
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        auth.authenticate("", T0),
        Err(AuthError::MissingToken)
    ));
    let (other, _, _) = auth.login("budi.s", PW, T0).unwrap();
    assert_ne!(token, other);
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let (_dir, auth) = setup();
    auth.add("verif", PW, Role::Verifier, None, T0).unwrap();
    let wrong = auth
        .login("verif", "correct horse batterx", T0)
        .unwrap_err();
    let unknown = auth.login("nobody", PW, T0).unwrap_err();
    assert!(matches!(wrong, AuthError::BadCredentials));
    assert!(matches!(unknown, AuthError::BadCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());
    let api = ApiError::from(unknown);
    assert!(matches!(api, ApiError::Unauthorized(_)));
}

#[test]
fn revoke_then_refused() {
    let (_dir, auth) = setup();
    auth.add("verif", PW, Role::Verifier, None, T0).unwrap();
    let (token, _, _) = auth.login("verif", PW, T0).unwrap();
    auth.revoke(&token).unwrap();
    let e = auth.authenticate(&token, T0).unwrap_err();
    assert!(matches!(e, AuthError::Revoked));
    assert_eq!(ApiError::from(e).to_string(), "token revoked");
    assert!(matches!(
        auth.revoke("unknown"),
        Err(AuthError::InvalidToken)
    ));
}

#[test]
fn disable_refuses_login_and_tokens() {
    let (_dir, auth) = setup();
    auth.add("verif", PW, Role::Verifier, None, T0).unwrap();
    auth.add("other", PW, Role::Analyst, None, T0).unwrap();
    let (token, _, _) = auth.login("verif", PW, T0).unwrap();
    let (kept, _, _) = auth.login("other", PW, T0).unwrap();
    auth.disable("verif").unwrap();
    assert!(matches!(
        auth.login("verif", PW, T0),
        Err(AuthError::Disabled)
    ));
    assert!(matches!(
        auth.login("verif", "wrong password!", T0),
        Err(AuthError::BadCredentials)
    ));
    assert!(auth.authenticate(&token, T0).is_err());
    assert!(auth.authenticate(&kept, T0).is_ok());
    assert!(matches!(
        auth.disable("ghost"),
        Err(AuthError::UnknownOfficer(_))
    ));
    let listed = auth.list().unwrap();
    let flags: Vec<(&str, bool)> = listed
        .iter()
        .map(|(o, d)| (o.username.as_str(), *d))
        .collect();
    assert_eq!(flags, [("other", false), ("verif", true)]);
}

#[test]
fn reset_revokes_sessions_and_sets_the_new_password() {
    let (_dir, auth) = setup();
    auth.add("verif", PW, Role::Verifier, None, T0).unwrap();
    let (token, _, _) = auth.login("verif", PW, T0).unwrap();
    auth.reset_password("verif", "a brand new passphrase")
        .unwrap();
    assert!(matches!(
        auth.authenticate(&token, T0),
        Err(AuthError::Revoked)
    ));
    assert!(matches!(
        auth.login("verif", PW, T0),
        Err(AuthError::BadCredentials)
    ));
    let (fresh, _, _) = auth.login("verif", "a brand new passphrase", T0).unwrap();
    assert!(auth.authenticate(&fresh, T0).is_ok());
    assert!(matches!(
        auth.reset_password("verif", "short"),
        Err(AuthError::Invalid { .. })
    ));
    let e = auth.reset_password("ghost", PW).unwrap_err();
    assert!(matches!(ApiError::from(e), ApiError::NotFound(_)));
}

fn field_of(r: Result<Officer, AuthError>) -> &'static str {
    match r {
        Err(AuthError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn bad_accounts_are_refused() {
    let (_dir, auth) = setup();
    let unknown = Some(AgencyCode::parse("NO-SUCH").unwrap());
    assert_eq!(
        field_of(auth.add("liaison1", PW, Role::Liaison, None, T0)),
        "agency"
    );
    assert_eq!(
        field_of(auth.add("liaison1", PW, Role::Liaison, unknown, T0)),
        "agency"
    );
    assert_eq!(
        field_of(auth.add("verif", PW, Role::Verifier, dishub(), T0)),
        "agency"
    );
    assert_eq!(
        field_of(auth.add("verif", "short pw", Role::Verifier, None, T0)),
        "password"
    );
    assert_eq!(
        field_of(auth.add("Verif", PW, Role::Verifier, None, T0)),
        "username"
    );
    assert_eq!(
        field_of(auth.add("ab", PW, Role::Verifier, None, T0)),
        "username"
    );
    assert_eq!(
        field_of(auth.add("citizen", PW, Role::Citizen, None, T0)),
        "role"
    );
    auth.add("verif", PW, Role::Verifier, None, T0).unwrap();
    let dup = auth.add("verif", "another long password", Role::Admin, None, T0);
    assert!(matches!(
        ApiError::from(dup.unwrap_err()),
        ApiError::Unprocessable {
            code: "invalid_field",
            ..
        }
    ));
    assert_eq!(auth.list().unwrap().len(), 1);
}

#[test]
fn sessions_store_only_token_hashes() {
    let (_dir, auth) = setup();
    auth.add("verif", PW, Role::Verifier, None, T0).unwrap();
    let (token, _, _) = auth.login("verif", PW, T0).unwrap();
    let stored = store::token_hashes(&mut auth.db.read().unwrap()).unwrap();
    assert_eq!(stored, [token_hash(&token)]);
    assert!(stored.iter().all(|h| !h.contains(&token) && h.len() == 64));
}

#[test]
fn cli_adds_with_generated_password_and_lists() {
    let (_dir, auth) = setup();
    let add = cli::OfficerCommand::Add {
        username: "adm".into(),
        role: "admin".into(),
        agency: None,
        password_stdin: false,
    };
    let out = cli::run_with_input(&auth, add, &mut std::io::empty()).unwrap();
    let pw = out[1].strip_prefix("password: ").unwrap();
    assert_eq!(pw.len(), 20);
    assert!(auth.login("adm", pw, T0).is_ok());
    let reset = cli::OfficerCommand::Reset {
        username: "adm".into(),
        password_stdin: true,
    };
    let mut input = "typed password 123\n".as_bytes();
    let out = cli::run_with_input(&auth, reset, &mut input).unwrap();
    assert_eq!(out.len(), 1, "a typed password is not echoed");
    assert!(auth.login("adm", "typed password 123", T0).is_ok());
    let listed = cli::run_with_input(&auth, cli::OfficerCommand::List, &mut std::io::empty());
    assert!(listed.unwrap()[0].starts_with("adm "));
}
