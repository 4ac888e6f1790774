//! Officer accounts and their bearer tokens.
//!
//! Passwords are stored as argon2id hashes ([`password`]). A login returns a random 256-bit
//! token (base64url, no padding); only its SHA-256 is stored in `sessions`, so a copy of the
//! database grants no access. Tokens expire after `auth.token_ttl_minutes` and are revoked by
//! logout, by disabling the account and by a password reset. Accounts are managed with
//! `lapor-node officer ...` ([`cli`]); passwords must pass [`strength`] (length, not the
//! username, not a common password).
//!
//! Login throttling lives beside: [`lockout`] (per-username lock after consecutive failures, in
//! memory) and [`gate`] (argon2 on the blocking pool, a bounded number at once); the API's
//! login handler applies both (`api::limits`).

pub mod accounts;
pub mod cli;
pub mod gate;
pub mod lockout;
pub mod model;
pub mod password;
pub mod store;
pub mod strength;

pub use accounts::{AccountChange, AccountError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::db::{Db, DbError};
use crate::domain::{AgencyCode, Role, Timestamp};
use model::{OfficerRow, SessionRow};

/// An authenticated officer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Officer {
    /// Account name.
    pub username: String,
    /// Role (verifier, liaison, admin or analyst).
    pub role: Role,
    /// The agency a liaison acts for (`None` for every other role).
    pub agency: Option<AgencyCode>,
}

impl Officer {
    /// Whether the officer's role is one of `roles`; `what` names the act for the refusal.
    ///
    /// # Errors
    ///
    /// [`NotAllowed`] for any other role.
    pub fn require(&self, roles: &[Role], what: &'static str) -> Result<(), NotAllowed> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(NotAllowed {
                role: self.role,
                what,
            })
        }
    }
}

/// An officer's role may not do something at all (whatever the ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("role {} may not {what}", role_name(*.role))]
pub struct NotAllowed {
    /// The officer's role.
    pub role: Role,
    /// The act, e.g. `read tickets`.
    pub what: &'static str,
}

fn role_name(role: Role) -> String {
    format!("{role:?}").to_lowercase()
}

/// Why an account operation or an authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown username or wrong password (deliberately not saying which).
    #[error("wrong username or password")]
    BadCredentials,
    /// The account is disabled.
    #[error("account disabled")]
    Disabled,
    /// No bearer token was given.
    #[error("missing bearer token")]
    MissingToken,
    /// The token is not one this node issued.
    #[error("invalid token")]
    InvalidToken,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token was revoked (logout, account disabled or password reset).
    #[error("token revoked")]
    Revoked,
    /// No officer with this name (account management only, never for login).
    #[error("no officer named {0:?}")]
    UnknownOfficer(String),
    /// A username, password, role or agency that breaks the rules.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending input.
        field: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<DieselError> for AuthError {
    fn from(e: DieselError) -> Self {
        Self::Db(DbError::Query(e))
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_username(username: &str) -> Result<(), AuthError> {
    let ok_chars = username
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if (3..=64).contains(&username.len()) && ok_chars {
        Ok(())
    } else {
        Err(invalid(
            "username",
            "must be 3-64 characters of a-z, 0-9, '.', '_' or '-'",
        ))
    }
}

fn check_password(username: &str, password: &str) -> Result<(), AuthError> {
    strength::check(username, password).map_err(|weak| invalid("password", weak.to_string()))
}

fn hash_password(password: &str) -> Result<String, AuthError> {
    password::hash(password).map_err(|e| AuthError::Db(DbError::Unavailable(e.to_string())))
}

/// Lower-case hex SHA-256 of a token: the form stored in `sessions`.
#[must_use]
pub fn token_hash(token: &str) -> String {
    crate::crypto::to_hex(&Sha256::digest(token.as_bytes()))
}

/// Officer accounts and sessions over the node's database.
#[derive(Debug, Clone)]
pub struct Auth {
    db: Db,
    ttl_ms: i64,
}

impl Auth {
    /// Accounts on `db`; tokens live `token_ttl_minutes`.
    #[must_use]
    pub fn new(db: Db, token_ttl_minutes: u32) -> Self {
        Self {
            db,
            ttl_ms: i64::from(token_ttl_minutes) * 60_000,
        }
    }

    /// Creates an account. A liaison needs a known agency; other roles must have none.
    pub fn add(
        &self,
        username: &str,
        password: &str,
        role: Role,
        agency: Option<AgencyCode>,
        now: Timestamp,
    ) -> Result<Officer, AuthError> {
        check_username(username)?;
        let name = model::role_name(role)
            .ok_or_else(|| invalid("role", "must be verifier, liaison, admin or analyst"))?;
        match (role, &agency) {
            (Role::Liaison, None) => return Err(invalid("agency", "a liaison needs an agency")),
            (Role::Liaison, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(invalid("agency", format!("a {name} has no agency"))),
        }
        check_password(username, password)?;
        let row = OfficerRow {
            username: username.to_owned(),
            password_hash: hash_password(password)?,
            role: name.to_owned(),
            agency: agency.as_ref().map(ToString::to_string),
            disabled: false,
            created_at_ms: now.millis(),
        };
        self.db.write(move |conn| {
            if let Some(code) = &row.agency {
                if !store::agency_exists(conn, code)? {
                    return Err(invalid("agency", format!("unknown agency {code}")));
                }
            }
            if store::officer(conn, &row.username)?.is_some() {
                return Err(invalid("username", "already taken"));
            }
            store::insert_officer(conn, &row).map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    invalid("username", "already taken")
                }
                other => other.into(),
            })
        })?;
        Ok(Officer {
            username: username.to_owned(),
            role,
            agency,
        })
    }

    /// Checks a password and opens a session: returns the token, its expiry and the officer.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<(String, Timestamp, Officer), AuthError> {
        let row = store::officer(&mut *self.db.read()?, username)?;
        let stored = row
            .as_ref()
            .map_or(password::DUMMY_HASH, |r| &r.password_hash);
        let matches = password::verify(password, stored);
        let row = row.filter(|_| matches).ok_or(AuthError::BadCredentials)?;
        if row.disabled {
            return Err(AuthError::Disabled);
        }
        let officer = row.to_officer()?;
        let mut bytes = [0_u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let expires = Timestamp::from_millis(now.millis().saturating_add(self.ttl_ms));
        let session = SessionRow {
            token_hash: token_hash(&token),
            username: row.username,
            created_at_ms: now.millis(),
            expires_at_ms: expires.millis(),
            revoked: false,
        };
        self.db
            .write(move |conn| store::insert_session(conn, &session).map_err(AuthError::from))?;
        Ok((token, expires, officer))
    }

    /// The officer a token belongs to, if the token is live and the account enabled.
    pub fn authenticate(&self, token: &str, now: Timestamp) -> Result<Officer, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        let found = store::session_with_officer(&mut *self.db.read()?, &token_hash(token))?;
        let (session, officer) = found.ok_or(AuthError::InvalidToken)?;
        if officer.disabled {
            Err(AuthError::Disabled)
        } else if session.revoked {
            Err(AuthError::Revoked)
        } else if now.millis() >= session.expires_at_ms {
            Err(AuthError::Expired)
        } else {
            Ok(officer.to_officer()?)
        }
    }

    /// Revokes a token (logout).
    pub fn revoke(&self, token: &str) -> Result<(), AuthError> {
        let hash = token_hash(token);
        self.db.write(move |conn| {
            if store::revoke_session(conn, &hash)? {
                Ok(())
            } else {
                Err(AuthError::InvalidToken)
            }
        })
    }

    /// Disables an account and revokes all its sessions, in one transaction.
    pub fn disable(&self, username: &str) -> Result<(), AuthError> {
        let username = username.to_owned();
        self.db.write(move |conn| {
            if !store::set_disabled(conn, &username, true)? {
                return Err(AuthError::UnknownOfficer(username));
            }
            store::revoke_all(conn, &username)?;
            Ok(())
        })
    }

    /// Sets a new password and revokes all sessions; the disabled flag is left as it is.
    pub fn reset_password(&self, username: &str, password: &str) -> Result<(), AuthError> {
        check_password(username, password)?;
        let hash = hash_password(password)?;
        let username = username.to_owned();
        self.db.write(move |conn| {
            if !store::set_password_hash(conn, &username, &hash)? {
                return Err(AuthError::UnknownOfficer(username));
            }
            store::revoke_all(conn, &username)?;
            Ok(())
        })
    }

    /// Every account, by name, with its disabled flag.
    pub fn list(&self) -> Result<Vec<(Officer, bool)>, AuthError> {
        store::officers(&mut *self.db.read()?)?
            .iter()
            .map(|r| Ok((r.to_officer()?, r.disabled)))
            .collect()
    }
}

#[cfg(test)]
mod tests;
